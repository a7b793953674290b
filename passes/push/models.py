"""What the wallets hold: Apple devices that asked for pass updates and which passes they hold
(PassKit web service); Google Wallet classes and objects we created, with what we last sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from passes.db import Base, UTCDateTime, utcnow


class AppleDevice(Base):
    """A device that registered for pass updates (PassKit web service). Apple gives one push
    token per device; ``registered_at`` is when it last (re-)registered, which decides whether an
    APNs 410 (with its own timestamp) still applies."""

    __tablename__ = "apple_devices"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    library_identifier: Mapped[str] = mapped_column(String(128), unique=True)
    push_token: Mapped[str] = mapped_column(String(200), index=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppleRegistration(Base):
    """A pass on a device: the device gets a push when the card changes."""

    __tablename__ = "apple_registrations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("apple_devices.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("device_id", "card_id", name="uq_apple_registration"),)


class GoogleClass(Base):
    """A program's ``loyaltyClass`` at Google, as last written (PATCHes send only what changed)."""

    __tablename__ = "google_classes"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    class_id: Mapped[str] = mapped_column(String(200), unique=True)
    sent_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GoogleObject(Base):
    """A card's ``loyaltyObject`` at Google, as last written. A card has one once its member
    asked for the "Add to Google Wallet" link; only such cards are kept current at Google."""

    __tablename__ = "google_objects"

    card_id: Mapped[int] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    object_id: Mapped[str] = mapped_column(String(200), unique=True)
    sent_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What Google's save/delete callbacks last said: True saved, False deleted, None no word
    # yet (callbacks need an https PUBLIC_URL). ``event_expires_at`` is that callback's expiry,
    # which orders callbacks that arrive out of order.
    in_wallet: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GoogleCallbackNonce(Base):
    """A save/delete callback already applied: Google may deliver one twice. Kept until the
    message expires (a replay after that fails its expiry check anyway)."""

    __tablename__ = "google_callback_nonces"

    nonce: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class GoogleNotification(Base):
    """A notifying update sent to a card's Google object: Google allows three per pass in any
    24 hours and refuses the fourth, so we count them and send the rest silently."""

    __tablename__ = "google_notifications"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_google_notifications_card_sent", "card_id", "sent_at"),)


class RateBucket(Base):
    """A token bucket shared by every worker process (one row per limited API)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
