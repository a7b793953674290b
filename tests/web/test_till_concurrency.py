"""Tills racing on one card, through HTTP, with real commits (no rolled-back test transaction):
no overspending, and one Idempotency-Key means one purchase however many retries race."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, delete, func, select

from factories import make_card, make_program
from passes import create_app
from passes.accounts.api_keys import issue_key
from passes.db import make_sessionmaker
from passes.loyalty.ledger import adjust, check_ledger
from passes.loyalty.models import Card, LedgerEntry, Program, Purchase
from passes.wallet.apple.devcerts import DevChain
from passes.web.api import till as till_api
from support import app_config

THREADS = 8
RULES = {
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 1000},
    "points_as_money": {"point_value": 100, "max_share": 10000},
}


@pytest.fixture
def committed_app(
    dev_chain: DevChain, database_url: str, engine: Engine
) -> Iterator[tuple[Flask, str, int, str]]:
    """An app on the real database; yields (app, store key, card id, card number)."""
    app = create_app(app_config(dev_chain, database_url))
    maker = make_sessionmaker(engine)
    slug = f"race-{uuid.uuid4().hex[:8]}"
    with maker() as session:
        program = make_program(session, slug=slug, rules=RULES)
        card = make_card(session, program)
        adjust(session, card, points=100, reason="starting balance", actor="test")
        token = issue_key(
            session, program, role="store", name="till", store=program.stores[0]
        ).token
        session.commit()
        card_id, number = card.id, card.number
    yield app, token, card_id, number
    state = app.extensions["passes"]
    if state.thread_connections is not None:
        state.thread_connections.dispose()
    state.engine.dispose()
    with maker() as session:
        session.execute(delete(Program).where(Program.slug == slug))
        session.commit()


def race(app: Flask, request: Callable[[Any, int], Any]) -> list[Any]:
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(index: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        results[index] = request(client, index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_redemptions_cannot_overspend(
    committed_app: tuple[Flask, str, int, str], engine: Engine
) -> None:
    app, token, card_id, number = committed_app

    def redeem(client: Any, index: int) -> Any:
        return client.post(
            "/api/v1/redemptions",
            json={"card": number, "receipt_amount": 1_000_000, "points": 60},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"r-{index}"},
        )

    responses = race(app, redeem)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [422] * (THREADS - 1), statuses
    assert all(
        r.get_json()["code"] == "insufficient_points" for r in responses if r.status_code == 422
    )
    with make_sessionmaker(engine)() as session:
        card = session.get(Card, card_id)
        assert card is not None and card.points_balance == 40
        assert [d for d in check_ledger(session) if d.card_id == card_id] == []


def test_racing_retries_of_one_purchase_record_it_once(
    committed_app: tuple[Flask, str, int, str], engine: Engine
) -> None:
    app, token, card_id, number = committed_app

    def buy(client: Any, _index: int) -> Any:
        return client.post(
            "/api/v1/purchases",
            json={"card": number, "amount": 55_000, "currency": "RUB"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "receipt-7"},
        )

    responses = race(app, buy)
    assert {response.status_code for response in responses} == {201}
    assert len({response.get_data() for response in responses}) == 1  # everyone got the same answer
    with make_sessionmaker(engine)() as session:
        purchases = session.scalar(
            select(func.count()).select_from(Purchase).where(Purchase.card_id == card_id)
        )
        accruals = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.card_id == card_id, LedgerEntry.kind == "accrual")
        )
        card = session.get(Card, card_id)
        assert purchases == 1 and accruals == 1
        assert card is not None and card.points_balance == 155


def test_racing_retries_of_a_redemption_that_spends_everything_all_get_the_first_answer(
    committed_app: tuple[Flask, str, int, str], engine: Engine
) -> None:
    """The retries wait for the first attempt's row lock and would then find no points left:
    they must still get the first answer, not 'insufficient points'."""
    app, token, card_id, number = committed_app

    def redeem(client: Any, _index: int) -> Any:
        return client.post(
            "/api/v1/redemptions",
            json={"card": number, "receipt_amount": 1_000_000, "points": 100},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "spend-all"},
        )

    responses = race(app, redeem)
    assert [response.status_code for response in responses] == [201] * THREADS
    assert len({response.get_data() for response in responses}) == 1
    assert sum("Idempotent-Replayed" in response.headers for response in responses) == THREADS - 1
    with make_sessionmaker(engine)() as session:
        card = session.get(Card, card_id)
        redemptions = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.card_id == card_id, LedgerEntry.kind == "redemption")
        )
        assert card is not None and card.points_balance == 0 and redemptions == 1


def test_racing_full_refunds_under_different_keys_refund_once(
    committed_app: tuple[Flask, str, int, str], engine: Engine
) -> None:
    """Each refund waits for the card's lock; the ones after the first must see the purchase
    already refunded (a stale read refunded it eight times on PostgreSQL)."""
    app, token, card_id, number = committed_app
    bought = app.test_client().post(
        "/api/v1/purchases",
        json={"card": number, "amount": 10_000, "currency": "RUB"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "to-refund"},
    )
    assert bought.status_code == 201, bought.get_data(as_text=True)
    purchase_id = bought.get_json()["id"]

    def refund(client: Any, index: int) -> Any:
        return client.post(
            f"/api/v1/purchases/{purchase_id}/refund",
            json={"amount": 10_000},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"refund-{index}"},
        )

    statuses = sorted(response.status_code for response in race(app, refund))
    assert statuses == [200] + [422] * (THREADS - 1), statuses
    with make_sessionmaker(engine)() as session:
        purchase = session.get(Purchase, purchase_id)
        assert purchase is not None and purchase.refunded_amount == 10_000
        assert [d for d in check_ledger(session) if d.card_id == card_id] == []


def test_tills_buying_on_one_card_at_once_all_get_their_points(
    committed_app: tuple[Flask, str, int, str], engine: Engine
) -> None:
    """Purchases on one card read it without a lock and write only if it did not change since;
    colliding ones price again, and the last attempt locks the card: none fails, none is lost."""
    app, token, card_id, number = committed_app
    rounds = 5

    def buy(client: Any, index: int) -> Any:
        return [
            client.post(
                "/api/v1/purchases",
                json={"card": number, "amount": 55_000, "currency": "RUB"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{index}-{n}"},
            )
            for n in range(rounds)
        ]

    responses = [response for batch in race(app, buy) for response in batch]
    assert [response.status_code for response in responses] == [201] * THREADS * rounds
    balances = sorted(response.get_json()["card"]["balance"] for response in responses)
    assert balances == [100 + 55 * n for n in range(1, THREADS * rounds + 1)]  # each saw its own
    with make_sessionmaker(engine)() as session:
        card = session.get(Card, card_id)
        assert card is not None and card.points_balance == 100 + 55 * THREADS * rounds
        purchases = session.scalar(
            select(func.count()).select_from(Purchase).where(Purchase.card_id == card_id)
        )
        assert purchases == THREADS * rounds
        assert [d for d in check_ledger(session) if d.card_id == card_id] == []


def test_the_locking_attempt_commits_and_leaves_the_connection_clean(
    committed_app: tuple[Flask, str, int, str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one attempt only, every purchase takes the path a collision ends on: the card locked
    in a transaction of its own (on the thread's autocommit connection), committed or, on an
    error, rolled back, leaving the connection ready for the next request."""
    app, token, card_id, number = committed_app
    monkeypatch.setattr(till_api, "PURCHASE_ATTEMPTS", 1)
    client = app.test_client()

    def buy(currency: str, key: str) -> Any:
        return client.post(
            "/api/v1/purchases",
            json={"card": number, "amount": 55_000, "currency": currency},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )

    assert buy("RUB", "locked-1").status_code == 201
    refused = buy("EUR", "locked-2")  # refused inside the locking transaction
    assert refused.status_code == 422 and refused.get_json()["code"] == "wrong_currency"
    threads = app.extensions["passes"].thread_connections
    if threads is not None:  # PostgreSQL: nothing left open on this thread's connection
        driver = threads.request().connection().connection.driver_connection
        assert driver.info.transaction_status == TransactionStatus.IDLE
    assert buy("RUB", "locked-3").status_code == 201
    with make_sessionmaker(engine)() as session:
        card = session.get(Card, card_id)
        assert card is not None and card.points_balance == 100 + 55 * 2
        assert [d for d in check_ledger(session) if d.card_id == card_id] == []
