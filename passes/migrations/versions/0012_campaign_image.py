"""an optional picture with a campaign's offer

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("image", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE campaigns DROP COLUMN image")
