"""What a shop's loyalty program is made of, as stored."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
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
    points_label: Mapped[str] = mapped_column(String(40), default="Points")
    background_color: Mapped[str] = mapped_column(String(7), default="#3b2a20")
    foreground_color: Mapped[str] = mapped_column(String(7), default="#ffffff")
    label_color: Mapped[str] = mapped_column(String(7), default="#e8d5b5")
    logo_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    icon_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    strip_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    terms: Mapped[str] = mapped_column(Text, default="")
    # The shop's own fixed labels on the cards: {"tier"|"member"|"card_number": text}.
    field_labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    support_email: Mapped[str | None] = mapped_column(String(254))
    support_phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(200))
    # The loyalty rules document (loyalty.rules.parse_rules validates it): earning, tiers, rewards…
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped by loyalty.pass_versions on any change to what all of its passes show.
    design_version: Mapped[int] = mapped_column(Integer, default=1)
    design_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    design_change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    stores: Mapped[list[Store]] = relationship(
        back_populates="program", order_by="Store.id", cascade="all, delete-orphan"
    )
    __table_args__ = (CheckConstraint("design_version > 0", name="design_version_positive"),)

    def tier_levels(self) -> list[dict[str, Any]]:
        """The tier levels of the rules document, lowest first (empty without tiers)."""
        tiers = (self.rules or {}).get("tiers") or {}
        levels: list[dict[str, Any]] = tiers.get("levels") or []
        return levels

    def entry_tier(self) -> str | None:
        """The tier a new card starts in: the lowest level (None without tiers)."""
        levels = self.tier_levels()
        return levels[0].get("key") if levels else None

    def tier_name(self, key: str | None) -> str | None:
        """The display name of tier ``key`` (None for no tier or a tier since removed)."""
        for level in self.tier_levels():
            if key is not None and level.get("key") == key:
                return str(level.get("name", key))
        return None


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
    # The language of the join page they used ("en", "ru"): what the card says to them in words
    # of ours (the expiry notice). None: joined elsewhere (import, API); English.
    language: Mapped[str | None] = mapped_column(String(8))

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
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_key: Mapped[str | None] = mapped_column(String(40))
    # Bumped with pass_updated_at by loyalty.pass_versions when anything its pass shows changes.
    content_version: Mapped[int] = mapped_column(Integer, default=1)
    pass_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Change stamp for the PassKit web service's update tag (see loyalty.pass_versions): on
    # PostgreSQL the writing transaction's id, on SQLite a counter; never wall-clock time.
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    link_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "120 points expire at the end of 20 Dec 2026": on the card (both wallets) from the
    # warning until the points expire.
    expiry_notice: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    program: Mapped[Program] = relationship()
    member: Mapped[Member] = relationship(back_populates="card")

    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="points_balance_not_negative"),
        CheckConstraint("content_version > 0", name="content_version_positive"),
    )


class LedgerEntry(Base):
    """One change of a card's points, append-only (database triggers refuse UPDATE and DELETE).

    The card's balance always equals the sum of its entries' ``points``; ``flask passes
    check-ledger`` proves it. ``money`` is the amount in minor units the entry relates to (a
    purchase amount, a refunded amount, the value of points paid with), when there is one.
    """

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    points: Mapped[int] = mapped_column(BigInteger)
    money: Mapped[int | None] = mapped_column(BigInteger)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id", ondelete="CASCADE"))
    counterpart_card_id: Mapped[int | None] = mapped_column(
        ForeignKey("cards.id", ondelete="SET NULL")
    )
    # Who caused it: "store:<name>", "partner:<name>", "admin:<name>", "system".
    source: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purchase: Mapped[Purchase | None] = relationship()

    __table_args__ = (
        Index("ix_ledger_entries_card_created", "card_id", "created_at"),
        Index("ix_ledger_entries_program_created", "program_id", "created_at"),
    )


class PointLot(Base):
    """Points credited together, spent oldest first and expired together.

    ``remaining`` is the only mutable number here; the ledger holds the history.
    """

    __tablename__ = "point_lots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id", ondelete="CASCADE"))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id", ondelete="CASCADE"))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remaining: Mapped[int] = mapped_column(BigInteger)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    entry: Mapped[LedgerEntry] = relationship()
    purchase: Mapped[Purchase | None] = relationship()

    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_point_lots_card_earned", "card_id", "earned_at"),
        Index("ix_point_lots_expires_at", "expires_at"),
    )


class Purchase(Base):
    """A purchase recorded at a till, with what the rules gave for it and what was refunded."""

    __tablename__ = "purchases"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    paid: Mapped[int] = mapped_column(BigInteger)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    cashback_points: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    receipt: Mapped[str | None] = mapped_column(String(120))
    lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_bounds"),
        Index("ix_purchases_card_created", "card_id", "created_at"),
    )


class RewardStock(Base):
    """Units left of a stocked reward (the catalogue itself is in the rules document)."""

    __tablename__ = "reward_stock"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    reward_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("remaining >= 0", name="stock_not_negative"),)


class ActionCount(Base):
    """How often a member got an action's bonus, for per-member limits."""

    __tablename__ = "action_counts"

    card_id: Mapped[int] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    action_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ApiKey(Base):
    """A credential for the till API. Only a SHA-256 of the secret is stored (secrets are 256-bit
    random, so a slow hash adds nothing); the prefix finds the row, the hash is compared in
    constant time."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    # "store" (a till), "partner" (credits/honours points, shown as the source), "admin".
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    program: Mapped[Program] = relationship()
    store: Mapped[Store | None] = relationship()


class IdempotencyRecord(Base):
    """The first answer to a request made with an ``Idempotency-Key``, replayed on retries.

    Written in the same transaction as the operation it answers, so either both exist or neither.
    """

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("api_key_id", "key"),)


class WalletUpdate(Base):
    """Outbox: a card whose wallet passes must be refreshed. One row per card (coalesced); written
    in the transaction that changed the card; senders (issues 4 and 5) clear the flags."""

    __tablename__ = "wallet_updates"

    card_id: Mapped[int] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    # Incremented (in SQL) by every change; a sender clears the row only if it is unchanged.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    apple_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    google_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The Apple sender's lease and retry clock: rows are claimed by setting it (a crashed sender's
    # claim lapses), and backoff after 429/5xx pushes it forward.
    apple_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    apple_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The same for the Google sender, which works independently: neither blocks the other.
    google_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    google_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # And for the webhooks: which changes of the card the shop's endpoints have not heard of.
    hooks_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    hooks_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hooks_attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index(
            "ix_wallet_updates_apple_due",
            "requested_at",
            postgresql_where=text("apple_pending"),
            sqlite_where=text("apple_pending"),
        ),
        Index(
            "ix_wallet_updates_google_due",
            "requested_at",
            postgresql_where=text("google_pending"),
            sqlite_where=text("google_pending"),
        ),
        Index(
            "ix_wallet_updates_hooks_due",
            "requested_at",
            postgresql_where=text("hooks_pending"),
            sqlite_where=text("hooks_pending"),
        ),
    )


class PassChangeCounter(Base):
    """SQLite's change stamp source (one row). Writers are serialised there, so a counter bumped
    inside the writing transaction is in commit order; PostgreSQL uses transaction ids instead."""

    __tablename__ = "pass_change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
