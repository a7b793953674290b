"""The till API through HTTP, on both engines: lookups, writes, idempotency, every error."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import BARCODE_KEY, make_card, make_program
from passes.accounts.api_keys import issue_key
from passes.db import utcnow
from passes.loyalty.barcode import barcode_payload
from passes.loyalty.ledger import check_ledger, sync_reward_stock
from passes.loyalty.models import (
    Card,
    IdempotencyRecord,
    LedgerEntry,
    Program,
    Purchase,
    WalletUpdate,
)

RULES: dict[str, Any] = {
    "timezone": "Europe/Moscow",
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 1000},
    "actions": [{"key": "review", "name": "Review", "points": 50, "limit_per_member": 1}],
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "rewards": [
        {"key": "free-coffee", "name": "Free coffee", "cost": 150, "stock": None},
        {"key": "mug", "name": "Mug", "cost": 100, "stock": 1},
    ],
    "tiers": {
        "metric": "spend",
        "window_days": 365,
        "levels": [
            {
                "key": "lover",
                "name": "Любитель",
                "threshold": 0,
                "multiplier": 10000,
                "discount": 0,
            },
            {
                "key": "gourmet",
                "name": "Гурман",
                "threshold": 1000000,
                "multiplier": 10000,
                "discount": 300,
            },
        ],
    },
    "expiry": {"mode": "none"},
    "transfers": {"enabled": True, "min_points": 10, "max_points": 500, "max_per_day": 2},
}


@dataclass
class Till:
    client: FlaskClient
    session: Session
    program: Program
    card: Card
    other: Card
    token: str
    partner: str
    admin: str

    def headers(self, token: str | None = None, key: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token or self.token}",
            "Idempotency-Key": key or str(uuid.uuid4()),
        }

    def post(
        self, path: str, body: Any, token: str | None = None, key: str | None = None
    ) -> TestResponse:
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers(token, key))

    def get(self, path: str, token: str | None = None) -> TestResponse:
        return self.client.get(
            f"/api/v1{path}", headers={"Authorization": f"Bearer {token or self.token}"}
        )

    def scan(self, card: Card | None = None) -> str:
        return barcode_payload(BARCODE_KEY, (card or self.card).number)

    def entries(self) -> int:
        return self.session.scalar(select(func.count()).select_from(LedgerEntry)) or 0

    def balance(self, card: Card | None = None) -> int:
        self.session.expire_all()
        return self.session.get(Card, (card or self.card).id).points_balance  # type: ignore[union-attr]


@pytest.fixture
def till(app: Flask, client: FlaskClient, db_session: Session) -> Till:
    program = make_program(db_session, rules=RULES)
    sync_reward_stock(db_session, program)
    card = make_card(db_session, program, name="Анна")
    other = make_card(db_session, program, name="Борис")
    store = program.stores[0]
    token = issue_key(db_session, program, role="store", name="till 1", store=store).token
    partner = issue_key(db_session, program, role="partner", name="Bakery").token
    admin = issue_key(db_session, program, role="admin", name="owner").token
    db_session.commit()
    return Till(client, db_session, program, card, other, token, partner, admin)


def assert_problem(
    response: TestResponse, status: int, code: str, text: str = ""
) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code) and body["title"]
    assert text in body["detail"], body["detail"]
    return body


# --------------------------------------------------------------------------- lookup


def test_lookup_by_scan_and_by_typed_number(till: Till) -> None:
    scanned = till.get(f"/cards/{till.scan()}")
    assert scanned.status_code == 200
    body = scanned.get_json()
    assert body["lookup"] == "scan" and body["number"] == till.card.number
    assert body["member_name"] == "Анна" and body["balance"] == 0
    assert body["tier"] == {"key": "lover", "name": "Любитель"}
    spaced = " ".join(till.card.number[i : i + 4] for i in range(0, 16, 4))
    assert till.get(f"/cards/{spaced}").get_json()["lookup"] == "typed"


def test_lookup_errors(till: Till, db_session: Session) -> None:
    assert_problem(till.get("/cards/hello"), 404, "unknown_card", "neither a card number")
    forged = till.scan()[:-2] + ("AA" if not till.scan().endswith("AA") else "BB")
    assert_problem(till.get(f"/cards/{forged}"), 404, "unknown_card")
    stranger = make_card(db_session, make_program(db_session))
    db_session.commit()
    assert_problem(till.get(f"/cards/{stranger.number}"), 403, "other_program")


@pytest.mark.parametrize(
    ("header", "text"),
    [
        (None, "Authorization: Bearer"),
        ("Basic abc", "Authorization: Bearer"),
        ("Bearer nonsense", "malformed"),
        ("Bearer lp_abcdef123456_wrongsecret", "not valid"),
    ],
)
def test_requests_without_a_valid_key_are_401(till: Till, header: str | None, text: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = till.client.get(f"/api/v1/cards/{till.card.number}", headers=headers)
    assert_problem(response, 401, "unauthorized", text)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_and_expired_keys_are_401(till: Till, db_session: Session) -> None:
    revoked = issue_key(db_session, till.program, role="admin", name="old")
    revoked.record.revoked_at = utcnow()
    expired = issue_key(db_session, till.program, role="admin", name="temp")
    expired.record.expires_at = utcnow() - timedelta(days=1)
    db_session.commit()
    assert_problem(
        till.get(f"/cards/{till.card.number}", revoked.token), 401, "unauthorized", "revoked"
    )
    assert_problem(
        till.get(f"/cards/{till.card.number}", expired.token), 401, "unauthorized", "expired"
    )


# --------------------------------------------------------------------------- purchases


def test_purchase_earns_points_and_queues_a_wallet_update(till: Till) -> None:
    response = till.post("/purchases", {"card": till.scan(), "amount": 12_345, "currency": "RUB"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["points_earned"] == 12  # 123.45 ₽ at 1 point per 10 ₽, rounded down
    assert body["paid"] == 12_345 and body["discount"] == 0
    assert body["card"]["balance"] == 12 and body["card"]["lookup"] == "scan"
    assert any(row["points"] == 12 for row in body["breakdown"])
    assert till.balance() == 12
    purchase = till.session.get(Purchase, body["id"])
    assert purchase is not None and purchase.source == "store:Store 0"
    pending = till.session.get(WalletUpdate, till.card.id)
    assert pending is not None and pending.apple_pending
    assert check_ledger(till.session) == []


def test_retry_with_the_same_key_replays_and_writes_nothing(till: Till) -> None:
    body = {"card": till.card.number, "amount": 50_000, "currency": "RUB"}
    first = till.post("/purchases", body, key="till-1-receipt-42")
    entries = till.entries()
    again = till.post("/purchases", body, key="till-1-receipt-42")
    assert again.status_code == first.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert till.entries() == entries and till.balance() == 50
    reordered = {"currency": "RUB", "amount": 50_000, "card": till.card.number}
    assert (
        till.post("/purchases", reordered, key="till-1-receipt-42").get_json() == first.get_json()
    )


def test_same_key_with_another_body_is_409_and_writes_nothing(till: Till) -> None:
    till.post("/purchases", {"card": till.card.number, "amount": 1000, "currency": "RUB"}, key="k1")
    entries = till.entries()
    response = till.post(
        "/purchases", {"card": till.card.number, "amount": 2000, "currency": "RUB"}, key="k1"
    )
    assert_problem(response, 409, "idempotency_key_reused")
    assert till.entries() == entries


def test_keys_are_scoped_to_the_api_key(till: Till) -> None:
    body = {"card": till.card.number, "amount": 10_000, "currency": "RUB"}
    till.post("/purchases", body, key="shared")
    other = till.post("/purchases", body, token=till.admin, key="shared")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert till.balance() == 20


@pytest.mark.parametrize(
    ("body", "status", "code", "text"),
    [
        ({"amount": -100, "currency": "RUB"}, 422, "invalid_amount", "positive"),
        ({"amount": 0, "currency": "RUB"}, 422, "invalid_amount", "positive"),
        ({"amount": 10**13, "currency": "RUB"}, 422, "invalid_amount", "beyond"),
        ({"amount": 12.5, "currency": "RUB"}, 422, "validation_failed", "amount"),
        ({"amount": "1250", "currency": "RUB"}, 422, "validation_failed", "amount"),
        ({"amount": True, "currency": "RUB"}, 422, "validation_failed", "amount"),
        ({"amount": 1000, "currency": "EUR"}, 422, "wrong_currency", "RUB"),
        ({"amount": 1000, "currency": "rub"}, 422, "validation_failed", "currency"),
        ({"amount": 1000}, 422, "validation_failed", "currency"),
        ({"amount": 1000, "currency": "RUB", "tip": 5}, 422, "validation_failed", "tip"),
        (
            {"amount": 1000, "currency": "RUB", "lines": [{"amount": 400}, {"amount": 500}]},
            422,
            "lines_mismatch",
            "add up",
        ),
        (
            {"amount": 1000, "currency": "RUB", "lines": [{"amount": -1}, {"amount": 1001}]},
            422,
            "invalid_amount",
            "line amount",
        ),
        ({"amount": 1000, "currency": "RUB", "store": "Nowhere"}, 422, "unknown_store", "Nowhere"),
    ],
)
def test_bad_purchases_are_refused_and_write_nothing(
    till: Till, body: dict[str, Any], status: int, code: str, text: str
) -> None:
    response = till.post("/purchases", {"card": till.card.number, **body})
    assert_problem(response, status, code, text)
    assert till.entries() == 0
    assert till.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_malformed_and_non_json_bodies(till: Till) -> None:
    headers = till.headers()
    bad_json = till.client.post(
        "/api/v1/purchases",
        data="{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_problem(bad_json, 400, "malformed_json")
    form = till.client.post("/api/v1/purchases", data={"amount": "1"}, headers=till.headers())
    assert_problem(form, 415, "unsupported_media_type")


def test_writes_need_an_idempotency_key(till: Till) -> None:
    response = till.client.post(
        "/api/v1/purchases",
        json={"card": till.card.number, "amount": 1000, "currency": "RUB"},
        headers={"Authorization": f"Bearer {till.token}"},
    )
    assert_problem(response, 428, "idempotency_key_required")
    long_key = till.post(
        "/purchases", {"card": till.card.number, "amount": 1, "currency": "RUB"}, key="k" * 300
    )
    assert_problem(long_key, 400, "idempotency_key_too_long")


def test_partner_keys_cannot_record_purchases(till: Till) -> None:
    response = till.post(
        "/purchases",
        {"card": till.card.number, "amount": 1000, "currency": "RUB"},
        token=till.partner,
    )
    assert_problem(response, 403, "forbidden", "partner")


def test_a_purchase_asks_who_is_calling_before_judging_the_request(
    till: Till, db_session: Session
) -> None:
    """The purchase reads the key and the card in one statement, yet answers in the order every
    route does: a bad key is 401 and a key of the wrong role 403, whatever the body or headers."""
    store = till.program.stores[0]
    revoked = issue_key(db_session, till.program, role="store", name="old", store=store)
    revoked.record.revoked_at = utcnow()
    db_session.commit()
    entries, balance = till.entries(), till.balance()
    good = {"card": till.card.number, "amount": 1000, "currency": "RUB"}
    bad_body = {"card": till.card.number, "amount": "lots"}
    unknown_card = {"card": "4111111111111111", "amount": 1000, "currency": "RUB"}
    for token, text in [
        ("lp_abcdef123456_wrongsecret", "not valid"),
        ("nonsense", "malformed"),
        (revoked.token, "revoked"),
    ]:
        for body in (good, bad_body, unknown_card):
            assert_problem(till.post("/purchases", body, token=token), 401, "unauthorized", text)
        without_key = till.client.post(
            "/api/v1/purchases", json=good, headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(without_key, 401, "unauthorized", text)
    for body in (good, bad_body, unknown_card):
        assert_problem(till.post("/purchases", body, token=till.partner), 403, "forbidden")
    assert_problem(till.post("/purchases", bad_body), 422, "validation_failed", "amount")
    assert_problem(till.post("/purchases", unknown_card), 404, "unknown_card")
    assert_problem(  # the card is answered for before the store
        till.post("/purchases", {**unknown_card, "store": "Nowhere"}, token=till.admin),
        404,
        "unknown_card",
    )
    assert_problem(
        till.post("/purchases", {**good, "store": "Nowhere"}, token=till.admin),
        422,
        "unknown_store",
    )
    oversized = {**good, "receipt": "x" * 5000}  # read only after the key: still 401 first
    assert_problem(
        till.post("/purchases", oversized, token="lp_abcdef123456_wrongsecret"), 401, "unauthorized"
    )
    assert (till.entries(), till.balance()) == (entries, balance)  # nothing was written


def test_reaching_a_tier_threshold_upgrades_at_once(till: Till) -> None:
    body = till.post(
        "/purchases", {"card": till.card.number, "amount": 1_000_000, "currency": "RUB"}
    ).get_json()
    assert body["tier_changed"] is True
    assert body["card"]["tier"] == {"key": "gourmet", "name": "Гурман"}
    assert body["card"]["discount_rate"] == 300


# --------------------------------------------------------------------------- spending


def fund(till: Till, points: int, card: Card | None = None) -> None:
    response = till.post(
        "/adjustments",
        {"card": (card or till.card).number, "points": points, "reason": "test"},
        token=till.admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_points_pay_up_to_the_cap(till: Till) -> None:
    fund(till, 1000)
    body = till.post("/redemptions", {"card": till.scan(), "receipt_amount": 100_000}).get_json()
    assert body["points"] == 300 and body["money"] == 30_000  # 30 % of 1,000.00 ₽
    assert till.balance() == 700
    over = till.post("/redemptions", {"card": till.scan(), "receipt_amount": 10_000, "points": 31})
    assert_problem(over, 422, "over_limit", "at most 30")
    assert till.balance() == 700


def test_insufficient_points_are_refused(till: Till) -> None:
    fund(till, 20)
    response = till.post(
        "/redemptions", {"card": till.scan(), "receipt_amount": 100_000, "points": 25}
    )
    assert_problem(response, 422, "insufficient_points", "has 20")
    assert_problem(
        till.post("/redemptions", {"card": till.scan(), "reward": "free-coffee"}),
        422,
        "insufficient_points",
        "150",
    )


def test_rewards_and_stock(till: Till) -> None:
    fund(till, 400)
    fund(till, 400, till.other)
    mug = till.post("/redemptions", {"card": till.scan(), "reward": "mug"}).get_json()
    assert mug["reward"] == "mug" and mug["points"] == 100 and till.balance() == 300
    gone = till.post("/redemptions", {"card": till.scan(till.other), "reward": "mug"})
    assert_problem(gone, 409, "out_of_stock")
    assert till.balance(till.other) == 400
    assert_problem(
        till.post("/redemptions", {"card": till.scan(), "reward": "yacht"}), 404, "unknown_reward"
    )
    both = till.post("/redemptions", {"card": till.scan(), "reward": "mug", "receipt_amount": 10})
    assert_problem(both, 422, "validation_failed", "either reward or receipt_amount")


def test_programs_can_require_a_scan_for_redemptions(till: Till) -> None:
    till.program.rules = {**RULES, "require_scan_for_redemption": True}
    till.session.commit()
    fund(till, 500)
    typed = till.post("/redemptions", {"card": till.card.number, "receipt_amount": 10_000})
    assert_problem(typed, 403, "scan_required")
    assert (
        till.post("/redemptions", {"card": till.scan(), "receipt_amount": 10_000}).status_code
        == 201
    )


# --------------------------------------------------------------------------- refunds


def test_full_and_partial_refunds_reverse_points_in_proportion(till: Till) -> None:
    purchase = till.post(
        "/purchases", {"card": till.card.number, "amount": 100_000, "currency": "RUB"}
    ).get_json()
    assert purchase["points_earned"] == 100
    half = till.post(f"/purchases/{purchase['id']}/refund", {"amount": 50_000}).get_json()
    assert half["points_reversed"] == 50 and half["shortfall"] == 0 and till.balance() == 50
    rest = till.post(f"/purchases/{purchase['id']}/refund", {}).get_json()
    assert rest["refunded"] == 50_000 and rest["refunded_total"] == 100_000
    assert rest["points_reversed"] == 50 and till.balance() == 0
    again = till.post(f"/purchases/{purchase['id']}/refund", {"amount": 1})
    assert_problem(again, 422, "refund_too_large", "at most 0")


def test_refund_after_spending_claws_back_what_is_there(till: Till) -> None:
    purchase = till.post(
        "/purchases", {"card": till.card.number, "amount": 100_000, "currency": "RUB"}
    ).get_json()
    till.post("/redemptions", {"card": till.scan(), "receipt_amount": 100_000, "points": 80})
    assert till.balance() == 20
    refund = till.post(f"/purchases/{purchase['id']}/refund", {}).get_json()
    assert refund["points_reversed"] == 100
    assert refund["points_clawed_back"] == 20 and refund["shortfall"] == 80
    assert till.balance() == 0
    assert check_ledger(till.session) == []


def test_refund_errors(till: Till, db_session: Session) -> None:
    assert_problem(till.post("/purchases/999999/refund", {}), 404, "unknown_purchase")
    purchase = till.post(
        "/purchases", {"card": till.card.number, "amount": 1000, "currency": "RUB"}
    ).get_json()
    assert_problem(
        till.post(f"/purchases/{purchase['id']}/refund", {"amount": 5000}), 422, "refund_too_large"
    )
    assert_problem(
        till.post(f"/purchases/{purchase['id']}/refund", {"amount": -5}), 422, "invalid_amount"
    )
    stranger = make_program(db_session)
    key = issue_key(db_session, stranger, role="admin", name="x").token
    db_session.commit()
    assert_problem(
        till.post(f"/purchases/{purchase['id']}/refund", {}, token=key), 404, "unknown_purchase"
    )


# --------------------------------------------------------------------------- transfers, actions


def test_transfer_moves_points_and_shows_both_sides(till: Till) -> None:
    fund(till, 300)
    body = till.post(
        "/transfers", {"from": till.card.number, "to": till.other.number, "points": 120}
    ).get_json()
    assert body["sender"]["balance"] == 180 and body["receiver"]["balance"] == 120
    kinds = dict(
        till.session.execute(
            select(LedgerEntry.kind, LedgerEntry.points).where(LedgerEntry.kind.like("transfer%"))
        ).all()
    )
    assert kinds == {"transfer_out": -120, "transfer_in": 120}


def test_transfer_limits(till: Till, db_session: Session) -> None:
    fund(till, 2000)
    move = {"from": till.card.number, "to": till.other.number}
    assert_problem(
        till.post("/transfers", {**move, "points": 5}), 422, "over_limit", "between 10 and 500"
    )
    assert_problem(till.post("/transfers", {**move, "points": 501}), 422, "over_limit")
    assert_problem(
        till.post("/transfers", {**move, "to": till.card.number, "points": 50}), 422, "same_card"
    )
    for _ in range(2):
        assert till.post("/transfers", {**move, "points": 10}).status_code == 201
    assert_problem(
        till.post("/transfers", {**move, "points": 10}), 409, "limit_reached", "2 transfers"
    )
    stranger = make_card(db_session, make_program(db_session))
    db_session.commit()
    assert_problem(
        till.post("/transfers", {**move, "to": stranger.number, "points": 10}), 403, "other_program"
    )


def test_actions_respect_per_member_limits(till: Till) -> None:
    first = till.post("/actions", {"card": till.card.number, "action": "review"})
    assert first.status_code == 201 and first.get_json()["points"] == 50
    assert_problem(
        till.post("/actions", {"card": till.card.number, "action": "review"}), 409, "limit_reached"
    )
    assert_problem(
        till.post("/actions", {"card": till.card.number, "action": "dance"}), 404, "unknown_action"
    )
    assert till.balance() == 50


def test_partner_credit_is_recorded_with_the_partner_as_source(till: Till) -> None:
    response = till.post(
        "/credits", {"card": till.card.number, "points": 40, "reason": "bread"}, token=till.partner
    )
    assert response.status_code == 201
    entry = till.session.scalars(select(LedgerEntry)).one()
    assert entry.source == "partner:Bakery" and entry.reason == "bread" and entry.points == 40
    assert_problem(
        till.post("/credits", {"card": till.card.number, "points": 40, "reason": "x"}),
        403,
        "forbidden",
    )


def test_adjustments_need_an_admin_key_and_a_reason(till: Till) -> None:
    assert_problem(
        till.post("/adjustments", {"card": till.card.number, "points": 5, "reason": "x"}),
        403,
        "forbidden",
    )
    assert_problem(
        till.post(
            "/adjustments", {"card": till.card.number, "points": 5, "reason": ""}, token=till.admin
        ),
        422,
        "validation_failed",
        "reason",
    )
    fund(till, 10)
    assert_problem(
        till.post(
            "/adjustments",
            {"card": till.card.number, "points": -11, "reason": "oops"},
            token=till.admin,
        ),
        422,
        "insufficient_points",
    )
    assert (
        till.post(
            "/adjustments",
            {"card": till.card.number, "points": -10, "reason": "oops"},
            token=till.admin,
        ).status_code
        == 201
    )
    assert till.balance() == 0


def test_unknown_api_urls_and_methods_answer_with_problems(till: Till) -> None:
    assert_problem(till.get("/nothing-here"), 404, "http_404")
    wrong_method = till.client.delete(f"/api/v1/cards/{till.card.number}")
    assert_problem(wrong_method, 405, "http_405")
    page = till.client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
