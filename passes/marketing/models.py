"""Campaigns and the offers they put on cards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from passes.db import Base, UTCDateTime, utcnow
from passes.loyalty.models import Program

STATUSES = ("scheduled", "sending", "sent", "cancelled", "ended")


class Campaign(Base):
    """An offer (title and text, valid from/until) for the members a segment selects, sent at
    ``send_at``. ``scheduled`` → ``sending`` (claimed by one worker) → ``sent``; ``cancelled``
    before it starts; ``ended`` once its offers have left the cards."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(String(300))
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    targeted: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An optional picture (PNG, re-encoded from the upload): Google Wallet shows it with the
    # offer; Apple's pass back has no room for pictures.
    image: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    program: Mapped[Program] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('scheduled', 'sending', 'sent', 'cancelled', 'ended')",
            name="status_known",
        ),
        CheckConstraint("valid_until > valid_from", name="valid_period"),
        Index("ix_campaigns_status_send_at", "status", "send_at"),
    )


class CardOffer(Base):
    """A campaign's offer on one card (one row per card and campaign: sent once)."""

    __tablename__ = "card_offers"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    card_id: Mapped[int] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_card_offers_card_id", "card_id"),)
