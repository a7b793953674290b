"""Finding members and reading one member's record, for the console.

Plain Python on a session, no Flask. Everything is scoped to one program: a card number of
another program is simply not found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from passes.loyalty.card_numbers import normalize_typed_number
from passes.loyalty.enrollment import email_key
from passes.loyalty.models import Card, LedgerEntry, Member, Program
from passes.push.models import AppleDevice, AppleRegistration, GoogleObject

PAGE_SIZE = 50
LEDGER_SHOWN = 100


def search(
    session: Session, program: Program, query: str, *, after_id: int | None = None
) -> list[Card]:
    """Up to PAGE_SIZE of the program's cards, newest first, matching ``query`` (empty: all).

    A query matches a card number (digits, typed with or without spaces), an e-mail (any case),
    a phone number (its digits) or a name. Names match as typed, in lower case, and capitalised
    ("анна" finds "Анна"): neither SQLite nor PostgreSQL's C collation fold non-ASCII case.
    ``after_id`` continues a listing after the last card of the previous page.
    """
    statement = (
        select(Card)
        .join(Card.member)
        .options(contains_eager(Card.member))
        .where(Card.program_id == program.id)
        .order_by(Card.id.desc())
        .limit(PAGE_SIZE)
    )
    if after_id is not None:
        statement = statement.where(Card.id < after_id)
    text = " ".join(query.split())
    if text:
        statement = statement.where(or_(*_conditions(text)))
    return list(session.scalars(statement))


def _conditions(text: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Member.name.contains(variant, autoescape=True)
        for variant in dict.fromkeys((text, text.lower(), text.title(), text.upper()))
    ]
    conditions.append(Member.email_key.contains(email_key(text), autoescape=True))
    number = normalize_typed_number(text)
    if number.isdigit():
        conditions.append(Card.number.contains(number, autoescape=True))
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4:
        conditions.append(Member.phone.contains(digits, autoescape=True))
    return conditions


@dataclass(frozen=True)
class Device:
    registered_at: datetime
    library_identifier: str


@dataclass(frozen=True)
class GoogleStatus:
    """The card's Google Wallet object, and what Google's callbacks last said of it."""

    object_id: str
    in_wallet: bool | None  # True saved, False deleted, None no word from Google
    saved_at: datetime | None
    deleted_at: datetime | None


@dataclass(frozen=True)
class MemberRecord:
    card: Card
    ledger: list[LedgerEntry]  # newest first, at most LEDGER_SHOWN
    entries: int  # all of them
    apple_devices: list[Device]
    google: GoogleStatus | None  # None: the card was never offered to Google Wallet


def find_card(session: Session, program: Program, number: str) -> Card | None:
    return session.scalar(
        select(Card)
        .join(Card.member)
        .options(contains_eager(Card.member))
        .where(Card.program_id == program.id, Card.number == normalize_typed_number(number))
    )


def record(session: Session, card: Card) -> MemberRecord:
    ledger = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.card_id == card.id)
            .order_by(LedgerEntry.id.desc())
            .limit(LEDGER_SHOWN)
        )
    )
    entries = session.scalar(
        select(func.count()).select_from(LedgerEntry).where(LedgerEntry.card_id == card.id)
    )
    devices = [
        Device(registered_at, identifier)
        for registered_at, identifier in session.execute(
            select(AppleRegistration.created_at, AppleDevice.library_identifier)
            .join(AppleDevice, AppleDevice.id == AppleRegistration.device_id)
            .where(AppleRegistration.card_id == card.id)
            .order_by(AppleRegistration.created_at)
        )
    ]
    known = session.get(GoogleObject, card.id)
    google = (
        GoogleStatus(known.object_id, known.in_wallet, known.saved_at, known.deleted_at)
        if known is not None
        else None
    )
    return MemberRecord(card, ledger, entries or 0, devices, google)
