"""Expiry warnings as a notice on the card (both wallets, Apple on the lock screen) until the
points expire, and birthday gifts: once a year, on the program's day, 29 February included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import buy, make_card, make_program
from passes.db import utcnow
from passes.loyalty import ledger
from passes.loyalty.models import Card, LedgerEntry, PointLot, WalletUpdate
from passes.loyalty.view import EXPIRY_NOTICE_TITLE, card_view
from passes.wallet.apple.pass_json import PassIdentity, pass_dict

EXPIRING = {
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 100},
    "points_as_money": {"point_value": 100, "max_share": 10000},
    "expiry": {"mode": "lifetime", "days": 30, "warn_days": 7},
}
GIFTS = {
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "earning": {"points": 1, "per_amount": 100, "birthday": {"multiplier": 10000, "gift": 150}},
}


def last_day(program: object, lot_expires: datetime) -> str:
    day = ledger.local_date(ledger.rules_of(program), lot_expires - timedelta(microseconds=1))  # type: ignore[arg-type]
    return f"{day.day} {day:%b %Y}"


def notice_on(card: Card) -> str | None:
    offers = [offer for offer in card_view(card).offers if offer.key == "expiry"]
    return offers[0].text if offers else None


def test_an_expiry_warning_stays_true_until_the_points_expire(db_session: Session) -> None:
    program = make_program(db_session, rules=EXPIRING, points_label="Beans")
    card = make_card(db_session, program)
    now = utcnow()
    buy(db_session, card, 12_000, now - timedelta(days=28))  # 120 points, expire in ~2 days
    buy(db_session, card, 5_000, now - timedelta(days=26))  # 50 points, ~2 days later
    db_session.commit()
    lots = db_session.scalars(
        select(PointLot).where(PointLot.card_id == card.id).order_by(PointLot.id)
    ).all()
    first, second = (lot.expires_at for lot in lots)
    assert first is not None and second is not None
    assert ledger.warn_expiring(db_session, now=now - timedelta(days=10)) == 0  # not yet
    db_session.execute(WalletUpdate.__table__.delete())
    db_session.commit()

    assert ledger.warn_expiring(db_session, now=now) == 1
    db_session.commit()
    expected = f"170 Beans expire at the end of {last_day(program, first)}"
    assert card.expiry_notice == expected == notice_on(card)
    assert db_session.get(WalletUpdate, card.id) is not None  # both wallets will show it
    view = card_view(card)
    back = pass_dict(view, PassIdentity("pass.x", "TEAM", None))["storeCard"]["backFields"]
    announced = next(field for field in back if field["key"] == "offer")
    assert (announced["value"], announced["changeMessage"]) == (expected, "%@")
    assert view.offers[0].title == EXPIRY_NOTICE_TITLE
    assert ledger.warn_expiring(db_session, now=now + timedelta(hours=1)) == 0  # once

    # Spending some of the warned points: the notice says what is left.
    ledger.redeem_as_money(
        db_session, card, receipt_amount=100_000, points=100, source="t", now=now
    )
    db_session.commit()
    assert notice_on(card) == f"70 Beans expire at the end of {last_day(program, first)}"

    # The first lot expires: the notice moves on to the second, it is not cleared.
    ledger.expire_due(db_session, now=first + timedelta(hours=1))
    db_session.commit()
    assert card.expiry_notice == f"50 Beans expire at the end of {last_day(program, second)}"
    ledger.expire_due(db_session, now=second + timedelta(hours=1))
    db_session.commit()
    assert card.expiry_notice is None and card.points_balance == 0
    assert notice_on(card) is None


def test_the_notice_speaks_the_language_the_member_joined_in(db_session: Session) -> None:
    """The notice is written by a scheduled job for one member: in the words of the page they
    joined on, the date as their language writes it; the shop's points label as the shop wrote
    it. Apple's label ("Points expiring") comes translated by the device itself; Google's
    message carries its Russian header beside the English."""
    from passes.wallet.google.objects import loyalty_object

    program = make_program(db_session, rules=EXPIRING, points_label="Зёрна")
    russian, unknown = make_card(db_session, program), make_card(db_session, program)
    russian.member.language = "ru"  # joined on the Russian page; the other was imported
    now = utcnow()
    for card in (russian, unknown):
        buy(db_session, card, 12_000, now - timedelta(days=28))
    db_session.commit()
    assert ledger.warn_expiring(db_session, now=now) == 2
    db_session.commit()
    lot = db_session.scalar(select(PointLot).where(PointLot.card_id == russian.id))
    assert lot is not None and lot.expires_at is not None
    day = ledger.local_date(ledger.rules_of(program), lot.expires_at - timedelta(microseconds=1))
    months = ["янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"]
    said = notice_on(russian)
    assert said is not None and said.startswith("Зёрна: 120 сгорят в конце дня ")
    assert f"{day.day} {months[day.month - 1]}" in said and str(day.year) in said
    assert (
        notice_on(unknown) == f"120 Зёрна expire at the end of {last_day(program, lot.expires_at)}"
    )
    (message,) = loyalty_object(card_view(russian), issuer_id="1")["messages"]
    assert (message["header"], message["body"]) == (EXPIRY_NOTICE_TITLE, said)
    assert message["localizedHeader"]["translatedValues"] == [
        {"language": "ru", "value": "Баллы сгорают"}
    ]


def birthday_card(session: Session, program: object, born: date) -> Card:
    card = make_card(session, program)  # type: ignore[arg-type]
    card.member.birthday = born
    return card


def gifts(session: Session, program: object, now: datetime) -> list[int]:
    given = []
    for card_id in ledger.birthday_gift_candidates(session, program, now=now):  # type: ignore[arg-type]
        if ledger.give_birthday_gift(session, card_id, now=now) is not None:
            given.append(card_id)
    session.commit()
    return given


def test_birthday_gifts_once_a_year_on_the_programs_day(db_session: Session) -> None:
    program = make_program(db_session, rules=GIFTS)
    today = birthday_card(db_session, program, date(1990, 6, 15))
    tomorrow = birthday_card(db_session, program, date(1985, 6, 16))
    birthday_card(db_session, program, date(1991, 2, 28))
    make_card(db_session, program)  # no birthday given
    plain = make_program(db_session, rules={"currency": "RUB"})
    birthday_card(db_session, plain, date(1990, 6, 15))  # a program without gifts
    db_session.commit()
    balance = today.points_balance

    # 22:30 UTC on 14 June is 01:30 on 15 June in Moscow: the program's day counts.
    night = datetime(2026, 6, 14, 22, 30, tzinfo=UTC)
    assert gifts(db_session, program, night) == [today.id]
    assert gifts(db_session, plain, night) == []
    assert gifts(db_session, program, night + timedelta(hours=5)) == []  # once
    assert ledger.give_birthday_gift(db_session, today.id, now=night) is None  # even if asked
    assert ledger.give_birthday_gift(db_session, tomorrow.id, now=night) is None  # not theirs yet
    db_session.refresh(today)
    assert today.points_balance == balance + 150
    entry = db_session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.card_id == today.id, LedgerEntry.kind == "birthday_gift"
        )
    ).one()
    assert (entry.points, entry.reason, entry.source) == (150, "birthday gift 2026", "system")
    assert gifts(db_session, program, night + timedelta(days=1)) == [tomorrow.id]
    assert today.id in gifts(db_session, program, night + timedelta(days=365))  # next year


def test_a_29_february_birthday_is_celebrated_on_the_28th_in_other_years(
    db_session: Session,
) -> None:
    program = make_program(db_session, rules=GIFTS)
    leap = birthday_card(db_session, program, date(2000, 2, 29))
    db_session.commit()
    assert gifts(db_session, program, datetime(2027, 2, 28, 9, tzinfo=UTC)) == [leap.id]
    assert gifts(db_session, program, datetime(2028, 2, 28, 9, tzinfo=UTC)) == []  # 2028 has it
    assert gifts(db_session, program, datetime(2028, 2, 29, 9, tzinfo=UTC)) == [leap.id]
