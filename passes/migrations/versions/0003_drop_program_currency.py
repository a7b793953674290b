"""drop programs.currency: the rules document holds the currency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The column was written but never read; programs.rules holds the currency the ledger checks.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain column: both engines drop it in place (SQLite >= 3.35). A batch rebuild would
    # rename the programs table, which the ledger's append-only trigger refers to.
    op.execute("ALTER TABLE programs DROP COLUMN currency")


def downgrade() -> None:
    op.add_column(
        "programs",
        sa.Column("currency", sa.String(length=3), nullable=False, server_default="RUB"),
    )
