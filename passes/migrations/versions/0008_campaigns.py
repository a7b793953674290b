"""campaigns and the offers they put on cards

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passes.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("valid_from", passes.db.UTCDateTime(), nullable=False),
        sa.Column("valid_until", passes.db.UTCDateTime(), nullable=False),
        sa.Column("send_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("targeted", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", passes.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sending', 'sent', 'cancelled', 'ended')",
            name=op.f("ck_campaigns_status_known"),
        ),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_campaigns_valid_period")),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_campaigns_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_status_send_at", "campaigns", ["status", "send_at"])
    op.create_table(
        "card_offers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_card_offers_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_offers_card_id_cards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("campaign_id", "card_id", name=op.f("pk_card_offers")),
    )
    op.create_index("ix_card_offers_card_id", "card_offers", ["card_id"])


def downgrade() -> None:
    op.drop_index("ix_card_offers_card_id", table_name="card_offers")
    op.drop_table("card_offers")
    op.drop_index("ix_campaigns_status_send_at", table_name="campaigns")
    op.drop_table("campaigns")
