"""Property: whatever sequence of operations runs, every balance equals the sum of its ledger
entries and of its lots, and is never negative; refused operations change nothing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.db import utcnow
from passes.loyalty import ledger
from passes.loyalty.ledger import LedgerError, check_ledger
from passes.loyalty.models import Purchase

RULES = {
    "currency": "RUB",
    "earning": {"points": 3, "per_amount": 1000, "threshold": 500},
    "points_as_money": {"point_value": 100, "max_share": 5000},
    "rewards": [{"key": "gift", "name": "Gift", "cost": 7, "stock": 3}],
    "expiry": {"mode": "lifetime", "days": 30, "warn_days": 5},
    "transfers": {"enabled": True, "min_points": 1, "max_points": 1000, "max_per_day": 100},
}

operation = st.one_of(
    st.tuples(st.just("purchase"), st.integers(0, 1), st.integers(1, 200_000)),
    st.tuples(st.just("pay"), st.integers(0, 1), st.integers(1, 100_000)),
    st.tuples(st.just("reward"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.integers(1, 200_000)),
    st.tuples(st.just("transfer"), st.integers(0, 1), st.integers(1, 300)),
    st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-200, 200)),
    st.tuples(st.just("expire"), st.integers(0, 1), st.integers(0, 60)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_balance_is_the_sum_of_the_ledger_and_never_negative(
    db_session: Session, operations: list[tuple[str, int, int]]
) -> None:
    program = make_program(db_session, rules=RULES)
    ledger.sync_reward_stock(db_session, program)
    cards = [make_card(db_session, program), make_card(db_session, program)]
    db_session.flush()
    clock = utcnow()
    for kind, who, number in operations:
        card = cards[who]
        clock += timedelta(days=1)
        savepoint = db_session.begin_nested()
        before = (cards[0].points_balance, cards[1].points_balance)
        try:
            if kind == "purchase":
                ledger.record_purchase(
                    db_session,
                    card,
                    amount=number,
                    currency="RUB",
                    lines=None,
                    store_id=None,
                    receipt=None,
                    source="test",
                    now=clock,
                )
            elif kind == "pay":
                ledger.redeem_as_money(
                    db_session, card, receipt_amount=number, points=None, source="test", now=clock
                )
            elif kind == "reward":
                ledger.redeem_reward(db_session, card, reward_key="gift", source="test", now=clock)
            elif kind == "refund":
                purchase = db_session.query(Purchase).filter_by(card_id=card.id).first()
                if purchase is None:
                    savepoint.rollback()
                    continue
                ledger.refund_purchase(
                    db_session,
                    card,
                    purchase,
                    amount=min(number, purchase.amount - purchase.refunded_amount) or 1,
                    source="test",
                    now=clock,
                )
            elif kind == "transfer":
                ledger.transfer(
                    db_session, card, cards[1 - who], points=number, source="t", now=clock
                )
            elif kind == "adjust":
                if number:
                    ledger.adjust(db_session, card, points=number, reason="r", actor="t", now=clock)
            else:
                ledger.expire_due(db_session, now=clock + timedelta(days=number))
            db_session.flush()
            savepoint.commit()
        except LedgerError:
            savepoint.rollback()
            db_session.expire_all()
            assert (cards[0].points_balance, cards[1].points_balance) == before
        for each in cards:
            assert each.points_balance >= 0
        assert [d for d in check_ledger(db_session) if d.card_id in {c.id for c in cards}] == []
    db_session.rollback()  # the next example starts from the fixture's clean transaction
