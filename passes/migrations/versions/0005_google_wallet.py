"""Google Wallet: classes and objects we created, notifications sent, a shared rate limit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passes.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "google_classes",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.String(length=200), nullable=False),
        sa.Column("sent_body", sa.JSON(), nullable=False),
        sa.Column("updated_at", passes.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_google_classes_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_google_classes")),
        sa.UniqueConstraint("class_id", name=op.f("uq_google_classes_class_id")),
    )
    op.create_table(
        "google_objects",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("sent_body", sa.JSON(), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", passes.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_google_objects_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_google_objects")),
        sa.UniqueConstraint("object_id", name=op.f("uq_google_objects_object_id")),
    )

    op.create_table(
        "google_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", passes.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_google_notifications_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_notifications")),
    )
    op.create_index(
        "ix_google_notifications_card_sent", "google_notifications", ["card_id", "sent_at"]
    )
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_buckets")),
    )
    op.add_column(
        "wallet_updates",
        sa.Column("google_not_before", passes.db.UTCDateTime(), nullable=True),
    )
    op.add_column(
        "wallet_updates",
        sa.Column("google_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_wallet_updates_google_due",
        "wallet_updates",
        ["requested_at"],
        postgresql_where=sa.text("google_pending"),
        sqlite_where=sa.text("google_pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_wallet_updates_google_due", table_name="wallet_updates")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN google_attempts")
    op.execute("ALTER TABLE wallet_updates DROP COLUMN google_not_before")
    op.drop_table("rate_buckets")
    op.drop_index("ix_google_notifications_card_sent", table_name="google_notifications")
    op.drop_table("google_notifications")
    op.drop_table("google_objects")
    op.drop_table("google_classes")
