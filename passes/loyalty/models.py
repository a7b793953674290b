"""What a shop's loyalty program is made of, as stored."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from passes.db import Base, UTCDateTime, utcnow


class Program(Base):
    """A shop's loyalty program: its branding, its stores and (later) its rules."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    organization_name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(200))
    card_prefix: Mapped[str] = mapped_column(String(6), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    points_label: Mapped[str] = mapped_column(String(40), default="Points")
    background_color: Mapped[str] = mapped_column(String(7), default="#3b2a20")
    foreground_color: Mapped[str] = mapped_column(String(7), default="#ffffff")
    label_color: Mapped[str] = mapped_column(String(7), default="#e8d5b5")
    logo_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    icon_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    strip_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    terms: Mapped[str] = mapped_column(Text, default="")
    support_email: Mapped[str | None] = mapped_column(String(254))
    support_phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(200))
    # Bumped by loyalty.pass_versions on any change to what all of its passes show.
    design_version: Mapped[int] = mapped_column(Integer, default=1)
    design_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    stores: Mapped[list[Store]] = relationship(
        back_populates="program", order_by="Store.id", cascade="all, delete-orphan"
    )
    tiers: Mapped[list[Tier]] = relationship(
        back_populates="program", order_by="Tier.position", cascade="all, delete-orphan"
    )

    __table_args__ = (CheckConstraint("design_version > 0", name="design_version_positive"),)


class Store(Base):
    """A shop location; becomes a lock-screen relevance location on the pass."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(240), default="")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    relevant_text: Mapped[str | None] = mapped_column(String(120))

    program: Mapped[Program] = relationship(back_populates="stores")

    __table_args__ = (UniqueConstraint("program_id", "name"),)


class Tier(Base):
    """A named level of a program, ordered by ``position`` (0 = entry tier)."""

    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(60))

    program: Mapped[Program] = relationship(back_populates="tiers")

    __table_args__ = (
        UniqueConstraint("program_id", "position"),
        UniqueConstraint("program_id", "name"),
    )


class Member(Base):
    """A person enrolled in one program. The e-mail is unique per program (case-insensitively)."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    # Lower-cased e-mail: the uniqueness key, so "Anna@Mail.ru" and "anna@mail.ru" are one person.
    email_key: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    birthday: Mapped[date | None] = mapped_column(Date)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    card: Mapped[Card] = relationship(back_populates="member", uselist=False)

    __table_args__ = (UniqueConstraint("program_id", "email_key"),)


class Card(Base):
    """A member's loyalty card, the thing both wallets show.

    ``serial_number`` and ``authentication_token`` are Apple's pass identity and credential;
    ``page_token`` is the opaque credential of the card's web page. None of them is derivable from
    the card number, which is printed on the pass and typed at tills.
    """

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    number: Mapped[str] = mapped_column(String(19), unique=True)
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    authentication_token: Mapped[str] = mapped_column(String(64))
    page_token: Mapped[str] = mapped_column(String(64), unique=True)
    barcode_payload: Mapped[str] = mapped_column(String(64))
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_spend: Mapped[int] = mapped_column(Integer, default=0)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="SET NULL"))
    # Bumped with pass_updated_at by loyalty.pass_versions when anything its pass shows changes.
    content_version: Mapped[int] = mapped_column(Integer, default=1)
    pass_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    link_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    program: Mapped[Program] = relationship()
    member: Mapped[Member] = relationship(back_populates="card")
    tier: Mapped[Tier | None] = relationship()

    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="points_balance_not_negative"),
        CheckConstraint("content_version > 0", name="content_version_positive"),
    )
