"""programs, stores, tiers, members and cards

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passes.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("organization_name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("card_prefix", sa.String(length=6), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("points_label", sa.String(length=40), nullable=False),
        sa.Column("background_color", sa.String(length=7), nullable=False),
        sa.Column("foreground_color", sa.String(length=7), nullable=False),
        sa.Column("label_color", sa.String(length=7), nullable=False),
        sa.Column("logo_image", sa.LargeBinary(), nullable=True),
        sa.Column("icon_image", sa.LargeBinary(), nullable=True),
        sa.Column("strip_image", sa.LargeBinary(), nullable=True),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("support_email", sa.String(length=254), nullable=True),
        sa.Column("support_phone", sa.String(length=32), nullable=True),
        sa.Column("website", sa.String(length=200), nullable=True),
        sa.Column("design_version", sa.Integer(), nullable=False),
        sa.Column("design_updated_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("design_version > 0", name=op.f("ck_programs_design_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("card_prefix", name=op.f("uq_programs_card_prefix")),
        sa.UniqueConstraint("slug", name=op.f("uq_programs_slug")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("consent_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_members_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "program_id", "email_key", name=op.f("uq_members_program_id_email_key")
        ),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=240), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("relevant_text", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_stores_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("program_id", "name", name=op.f("uq_stores_program_id_name")),
    )
    op.create_table(
        "tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_tiers_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiers")),
        sa.UniqueConstraint("program_id", "name", name=op.f("uq_tiers_program_id_name")),
        sa.UniqueConstraint("program_id", "position", name=op.f("uq_tiers_program_id_position")),
    )
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=19), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("authentication_token", sa.String(length=64), nullable=False),
        sa.Column("page_token", sa.String(length=64), nullable=False),
        sa.Column("barcode_payload", sa.String(length=64), nullable=False),
        sa.Column("points_balance", sa.Integer(), nullable=False),
        sa.Column("lifetime_spend", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=True),
        sa.Column("content_version", sa.Integer(), nullable=False),
        sa.Column("pass_updated_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("link_sent_at", passes.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", passes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("content_version > 0", name=op.f("ck_cards_content_version_positive")),
        sa.CheckConstraint(
            "points_balance >= 0", name=op.f("ck_cards_points_balance_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_cards_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_cards_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"], ["tiers.id"], name=op.f("fk_cards_tier_id_tiers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("member_id", name=op.f("uq_cards_member_id")),
        sa.UniqueConstraint("number", name=op.f("uq_cards_number")),
        sa.UniqueConstraint("page_token", name=op.f("uq_cards_page_token")),
        sa.UniqueConstraint("serial_number", name=op.f("uq_cards_serial_number")),
    )


def downgrade() -> None:
    op.drop_table("cards")
    op.drop_table("tiers")
    op.drop_table("stores")
    op.drop_table("members")
    op.drop_table("programs")
