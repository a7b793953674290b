"""Google Wallet save and delete callbacks

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from passes.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("google_objects", sa.Column("in_wallet", sa.Boolean(), nullable=True))
    for name in ("saved_at", "deleted_at", "event_expires_at"):
        op.add_column("google_objects", sa.Column(name, UTCDateTime(), nullable=True))
    op.create_table(
        "google_callback_nonces",
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_google_callback_nonces")),
    )
    op.create_index(
        op.f("ix_google_callback_nonces_expires_at"), "google_callback_nonces", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_google_callback_nonces_expires_at"), "google_callback_nonces")
    op.drop_table("google_callback_nonces")
    for name in ("event_expires_at", "deleted_at", "saved_at", "in_wallet"):
        op.execute(f"ALTER TABLE google_objects DROP COLUMN {name}")
