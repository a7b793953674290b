"""Devices that asked for pass updates, and which passes they hold (PassKit web service)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
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
