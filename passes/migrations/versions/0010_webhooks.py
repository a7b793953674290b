"""webhooks: endpoints, deliveries, the card state endpoints last heard of, and the outbox flag

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passes.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing outbox rows were changes before webhooks existed: nothing to tell.
    op.add_column(
        "wallet_updates",
        sa.Column("hooks_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "wallet_updates", sa.Column("hooks_not_before", passes.db.UTCDateTime(), nullable=True)
    )
    op.add_column(
        "wallet_updates",
        sa.Column("hooks_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_wallet_updates_hooks_due",
        "wallet_updates",
        ["requested_at"],
        postgresql_where=sa.text("hooks_pending"),
        sqlite_where=sa.text("hooks_pending"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("disabled_at", passes.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_webhook_endpoints_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index("ix_webhook_endpoints_program", "webhook_endpoints", ["program_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", passes.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_table(
        "webhook_card_states",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("points_balance", sa.BigInteger(), nullable=False),
        sa.Column("tier_key", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_webhook_card_states_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_webhook_card_states")),
    )


def downgrade() -> None:
    op.drop_table("webhook_card_states")
    op.drop_index("ix_webhook_deliveries_endpoint", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_program", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_wallet_updates_hooks_due", table_name="wallet_updates")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN hooks_attempts")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN hooks_not_before")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN hooks_pending")
