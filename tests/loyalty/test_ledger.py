"""Ledger behaviour the API tests do not reach directly: lots, expiry, warnings, tier evaluation,
welcome bonus."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import BARCODE_KEY, buy, make_card, make_program
from passes.db import utcnow
from passes.loyalty import ledger
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.ledger_sql import CardState, read_card_state, write_purchase_rows
from passes.loyalty.models import LedgerEntry, PointLot, Purchase

EXPIRING = {
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 100},
    "points_as_money": {"point_value": 100, "max_share": 10000},
    "expiry": {"mode": "lifetime", "days": 30, "warn_days": 7},
    "tiers": {
        "metric": "spend",
        "window_days": 365,
        "levels": [
            {"key": "lover", "name": "Любитель", "threshold": 0},
            {"key": "gourmet", "name": "Гурман", "threshold": 100_000},
        ],
    },
}


def test_spending_takes_the_oldest_points_and_expiry_only_what_is_left(db_session: Session) -> None:
    card = make_card(db_session, make_program(db_session, rules=EXPIRING))
    start = utcnow() - timedelta(days=60)
    buy(db_session, card, 10_000, start)  # 100 points, expire after 30 days
    buy(db_session, card, 5_000, start + timedelta(days=20))  # 50 points, 20 days younger
    ledger.redeem_as_money(
        db_session,
        card,
        receipt_amount=100_000,
        points=80,
        source="t",
        now=start + timedelta(days=25),
    )
    lots = db_session.scalars(
        select(PointLot).where(PointLot.card_id == card.id).order_by(PointLot.id)
    ).all()
    assert [lot.remaining for lot in lots] == [20, 50]  # the older lot paid first
    report = ledger.expire_due(db_session, now=start + timedelta(days=32))
    assert report.expired == [(card.id, 20)]
    assert card.points_balance == 50
    assert ledger.expire_due(db_session, now=start + timedelta(days=32)).points == 0  # idempotent
    entry = db_session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "expiry")).one()
    assert entry.points == -20 and entry.source == "system"
    assert ledger.check_ledger(db_session) == []


def test_expiry_warnings_are_given_once(db_session: Session) -> None:
    card = make_card(db_session, make_program(db_session, rules=EXPIRING))
    earned = utcnow() - timedelta(days=25)
    buy(db_session, card, 10_000, earned)
    assert ledger.expiring_soon(db_session, now=earned + timedelta(days=10)) == []  # not yet
    warned = ledger.expiring_soon(db_session, now=utcnow())
    assert [(card_id, points) for card_id, points, _ in warned] == [(card.id, 100)]
    assert ledger.expiring_soon(db_session, now=utcnow()) == []


def test_tiers_go_up_at_once_and_down_only_at_evaluation(db_session: Session) -> None:
    program = make_program(db_session, rules=EXPIRING)
    card = make_card(db_session, program)
    long_ago = utcnow() - timedelta(days=400)
    buy(db_session, card, 100_000, long_ago)
    assert card.tier_key == "gourmet"  # upgraded immediately
    buy(db_session, card, 100, utcnow())
    assert card.tier_key == "gourmet"  # purchases never downgrade
    changes = ledger.evaluate_tiers(db_session, program)
    assert [(c.card_id, c.old, c.new) for c in changes] == [(card.id, "gourmet", "lover")]
    assert card.tier_key == "lover"
    assert ledger.evaluate_tiers(db_session, program) == []


def test_tier_evaluation_counts_a_purchase_made_after_it_read_the_candidates(
    db_session: Session,
) -> None:
    """The nightly pass reads every card's metric at once, while tills keep selling: a card it
    would downgrade is checked again, under its lock, on its metric as it is then."""
    program = make_program(db_session, rules=EXPIRING)
    card = make_card(db_session, program)
    buy(db_session, card, 100_000, utcnow() - timedelta(days=400))  # gourmet, out of the window
    assert ledger.tier_candidates(db_session, program, now=utcnow()) == [card.id]
    buy(db_session, card, 100_000, utcnow())  # meanwhile: qualifies again
    assert ledger.retier(db_session, card.id, program, now=utcnow()) is None
    assert card.tier_key == "gourmet"
    assert ledger.evaluate_tiers(db_session, program) == []


def test_welcome_bonus_on_joining_is_credited_once(db_session: Session) -> None:
    rules = {"currency": "RUB", "earning": {"welcome_bonus": {"points": 75, "on": "join"}}}
    program = make_program(db_session, rules=rules)
    applicant = Applicant("Анна", "anna@example.com", None, None)
    card = enroll(db_session, program, applicant, barcode_key=BARCODE_KEY).card
    again = enroll(db_session, program, applicant, barcode_key=BARCODE_KEY)
    assert not again.created and card.points_balance == 75
    entry = db_session.scalars(select(LedgerEntry).where(LedgerEntry.card_id == card.id)).one()
    assert entry.kind == "welcome_bonus" and entry.points == 75


def test_credit_and_debit_refuse_what_the_rules_forbid(db_session: Session) -> None:
    card = make_card(db_session, make_program(db_session, rules=EXPIRING))
    with pytest.raises(ledger.LedgerError, match="has 0 points"):
        ledger.debit(db_session, card, kind="redemption", points=1, source="t", now=utcnow())
    with pytest.raises(ledger.LedgerError, match="reason"):
        ledger.adjust(db_session, card, points=5, reason="  ", actor="t")
    assert (
        ledger.credit(
            db_session,
            card,
            ledger.rules_of(card.program),
            kind="adjustment",
            points=0,
            source="t",
            now=utcnow(),
        )
        is None
    )
    assert card.points_balance == 0


def price(session: Session, state: CardState, amount: int) -> ledger.PurchasePlan:
    return ledger.plan_purchase(
        session.connection(),
        state,
        amount=amount,
        currency="RUB",
        lines=None,
        store_id=None,
        receipt=None,
        source="test",
        now=utcnow(),
    )


def test_a_purchase_priced_from_a_card_that_changed_since_is_not_written(
    db_session: Session,
) -> None:
    card = make_card(db_session, make_program(db_session, rules=EXPIRING))
    db_session.flush()
    connection = db_session.connection()
    stale = read_card_state(connection, card.number, for_purchase=True)
    assert stale is not None and stale.content_version == card.content_version
    ledger.adjust(db_session, card, points=7, reason="goodwill", actor="test")  # a version bump
    db_session.flush()

    assert write_purchase_rows(connection, stale, price(db_session, stale, 10_000).rows) is None
    purchases = db_session.scalars(select(Purchase).where(Purchase.card_id == card.id)).all()
    assert purchases == []
    db_session.refresh(card)
    assert card.points_balance == 7  # the stale balance (0 + 100) was not written over it

    fresh = read_card_state(connection, card.number, for_purchase=True)
    assert fresh is not None and fresh.points_balance == 7
    purchase_id = write_purchase_rows(connection, fresh, price(db_session, fresh, 10_000).rows)
    assert purchase_id is not None
    db_session.refresh(card)
    assert card.points_balance == 107 and card.content_version == fresh.content_version + 1
    assert ledger.check_ledger(db_session) == []


def test_a_card_read_for_a_purchase_names_its_program_rules_and_version(
    db_session: Session,
) -> None:
    card = make_card(db_session, make_program(db_session, rules=EXPIRING))
    db_session.flush()
    state = read_card_state(db_session.connection(), card.number)
    assert state is not None
    assert (state.id, state.program_id, state.member_name) == (
        card.id,
        card.program_id,
        card.member.name,
    )
    assert state.rules.tier_level("gourmet") is not None
    assert state.pass_updated_at.tzinfo is not None
    assert read_card_state(db_session.connection(), "0000000000000000") is None
