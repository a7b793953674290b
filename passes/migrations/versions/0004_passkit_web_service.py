"""PassKit web service: devices, registrations, change stamps; Apple sender lease on the outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Cards and programs get a change stamp for the update tag of "passes updated since" (PostgreSQL:
the writing transaction's id; SQLite: a counter, one row). The outbox gets the Apple sender's
lease/backoff clock and a partial index over pending rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passes.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cards", sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_index("ix_cards_change_seq", "cards", ["change_seq"])
    op.add_column(
        "programs",
        sa.Column("design_change_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "pass_change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_change_counter")),
    )
    op.execute("INSERT INTO pass_change_counter (id, value) VALUES (1, 0)")
    op.add_column(
        "wallet_updates",
        sa.Column("apple_not_before", passes.db.UTCDateTime(), nullable=True),
    )
    op.add_column(
        "wallet_updates",
        sa.Column("apple_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_wallet_updates_apple_due",
        "wallet_updates",
        ["requested_at"],
        postgresql_where=sa.text("apple_pending"),
        sqlite_where=sa.text("apple_pending"),
    )
    op.create_table(
        "apple_devices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("library_identifier", sa.String(length=128), nullable=False),
        sa.Column("push_token", sa.String(length=200), nullable=False),
        sa.Column("registered_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apple_devices")),
        sa.UniqueConstraint("library_identifier", name=op.f("uq_apple_devices_library_identifier")),
    )
    op.create_index("ix_apple_devices_push_token", "apple_devices", ["push_token"])
    op.create_table(
        "apple_registrations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["apple_devices.id"],
            name=op.f("fk_apple_registrations_device_id_apple_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_apple_registrations_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apple_registrations")),
        sa.UniqueConstraint("device_id", "card_id", name="uq_apple_registration"),
    )
    op.create_index("ix_apple_registrations_card_id", "apple_registrations", ["card_id"])


def downgrade() -> None:
    op.drop_index("ix_apple_registrations_card_id", table_name="apple_registrations")
    op.drop_table("apple_registrations")
    op.drop_index("ix_apple_devices_push_token", table_name="apple_devices")
    op.drop_table("apple_devices")
    op.drop_index("ix_wallet_updates_apple_due", table_name="wallet_updates")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN apple_attempts")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN apple_not_before")
    op.drop_table("pass_change_counter")
    op.execute("ALTER TABLE programs DROP COLUMN design_change_seq")
    op.drop_index("ix_cards_change_seq", table_name="cards")
    op.execute("ALTER TABLE cards DROP COLUMN change_seq")
