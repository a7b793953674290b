"""the notice of points about to expire, on the card

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cards", sa.Column("expiry_notice", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE cards DROP COLUMN expiry_notice")
