"""Staff users of a program, and failed sign-ins (the rate limit's memory)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from passes.db import Base, UTCDateTime, utcnow
from passes.loyalty.models import ApiKey, Program

ROLES = ("admin", "marketer", "clerk")


class StaffUser(Base):
    """A person who runs a program: ``admin`` (everything), ``marketer`` (everything but users
    and keys) or ``clerk`` (the scanner only, through a store key of their own)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    # A clerk's scanner acts through this store key (revoked when the clerk is disabled).
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    program: Mapped[Program] = relationship()
    api_key: Mapped[ApiKey | None] = relationship()

    __table_args__ = (CheckConstraint("role IN ('admin', 'marketer', 'clerk')", name="role_known"),)


class SignInFailure(Base):
    """One failed sign-in, kept for the rate limit's window (by e-mail and by address)."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_sign_in_failures_email_at", "email", "at"),
        Index("ix_sign_in_failures_address_at", "address", "at"),
    )
