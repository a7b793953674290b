"""The staff scanner page and its session: sign-in with an API key, the page, sign-out, and the till
API used with the session (CSRF header on writes), on both engines."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import BARCODE_KEY, TIERS, make_card, make_program
from passes.accounts.api_keys import issue_key
from passes.db import utcnow
from passes.loyalty.barcode import barcode_payload
from passes.loyalty.models import ApiKey, Card, Program
from passes.web.api.till import STAFF_SESSION_KEY
from support import csrf_token

RULES: dict[str, Any] = {
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 1000},
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "rewards": [{"key": "free-coffee", "name": "Free coffee", "cost": 150}],
    "tiers": TIERS,
}
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Shop:
    program: Program
    card: Card
    store_key: ApiKey
    store_token: str
    admin_token: str
    partner_token: str


@pytest.fixture
def shop(app: Flask, db_session: Session) -> Shop:
    program = make_program(db_session, name="Зерно", rules=RULES)
    card = make_card(db_session, program, name="Анна Смирнова")
    store = issue_key(db_session, program, role="store", name="till 1", store=program.stores[1])
    admin = issue_key(db_session, program, role="admin", name="owner").token
    partner = issue_key(db_session, program, role="partner", name="Bakery").token
    db_session.commit()
    return Shop(program, card, store.record, store.token, admin, partner)


def sign_in(client: FlaskClient, token: str) -> TestResponse:
    return client.post(
        "/store/login", data={"csrf_token": csrf_token(client, "/store/login"), "api_key": token}
    )


def staff_id(client: FlaskClient) -> Any:
    with client.session_transaction() as session:
        return session.get(STAFF_SESSION_KEY)


def page_csrf(client: FlaskClient) -> str:
    response = client.get("/store")
    assert response.status_code == 200
    match = META_CSRF.search(response.get_data(as_text=True))
    assert match, "no csrf-token meta tag on the scanner page"
    return match.group(1)


def purchase(client: FlaskClient, card: Card, csrf: str | None) -> TestResponse:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if csrf is not None:
        headers["X-CSRFToken"] = csrf
    return client.post(
        "/api/v1/purchases",
        json={"card": card.number, "amount": 12_345, "currency": "RUB", "receipt": "A-17"},
        headers=headers,
    )


# --------------------------------------------------------------------------- sign-in


def test_login_page_is_an_accessible_form(client: FlaskClient) -> None:
    response = client.get("/store/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert '<label for="api_key">API key</label>' in html and 'id="api_key"' in html
    assert 'name="csrf_token"' in html and 'type="password"' in html
    assert 'href="/static/css/store.css"' in html
    assert "<script" not in html and "style=" not in html


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "Enter the API key"),
        ("not-a-key", "malformed"),
        ("lp_000000000000_wrong", "not valid"),
    ],
)
def test_a_bad_key_is_refused_without_a_session(
    client: FlaskClient, shop: Shop, token: str, message: str
) -> None:
    response = sign_in(client, token)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'role="alert"' in html and 'aria-invalid="true"' in html
    assert staff_id(client) is None
    assert client.get("/store").status_code == 303


def test_revoked_and_expired_keys_are_refused(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    revoked = issue_key(
        db_session, shop.program, role="store", name="old", store=shop.program.stores[0]
    )
    revoked.record.revoked_at = utcnow()
    expired = issue_key(
        db_session,
        shop.program,
        role="admin",
        name="temp",
        expires_at=utcnow() - timedelta(minutes=1),
    )
    db_session.commit()
    response = sign_in(client, revoked.token)
    assert response.status_code == 422 and "has been revoked" in response.get_data(as_text=True)
    response = sign_in(client, expired.token)
    assert response.status_code == 422 and "expired" in response.get_data(as_text=True)
    assert staff_id(client) is None


def test_a_partner_key_is_refused(client: FlaskClient, shop: Shop) -> None:
    response = sign_in(client, shop.partner_token)
    assert response.status_code == 422
    assert "A partner key cannot open the scanner page" in response.get_data(as_text=True)
    assert staff_id(client) is None


def test_sign_in_needs_the_forms_csrf_token(client: FlaskClient, shop: Shop) -> None:
    response = client.post("/store/login", data={"api_key": shop.store_token})
    assert response.status_code == 400
    assert "expired or came from another site" in response.get_data(as_text=True)
    assert staff_id(client) is None


def test_a_store_key_signs_in_and_opens_the_scanner(client: FlaskClient, shop: Shop) -> None:
    response = sign_in(client, shop.store_token)
    assert response.status_code == 303 and response.headers["Location"] == "/store"
    assert staff_id(client) == shop.store_key.id
    with client.session_transaction() as session:
        assert session.permanent is False
    page = client.get("/store")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Зерно" in html and "Store 1" in html
    assert META_CSRF.search(html)
    assert 'src="/static/js/scanner.js"' in html and 'href="/static/css/store.css"' in html
    assert 'data-currency="RUB"' in html and 'data-minor-digits="2"' in html
    assert 'data-jsqr="/static/vendor/jsqr/jsQR.js"' in html
    assert 'role="alert"' in html and 'aria-live="polite"' in html
    assert 'inputmode="decimal"' in html and "Scan a card" in html
    assert "style=" not in html and "onclick" not in html
    assert "<script>" not in html  # only external scripts under script-src 'self'
    # Signed in: the sign-in page sends the person to the scanner.
    assert client.get("/store/login").headers["Location"] == "/store"


def test_an_admin_key_signs_in_for_all_stores(client: FlaskClient, shop: Shop) -> None:
    assert sign_in(client, shop.admin_token).status_code == 303
    html = client.get("/store").get_data(as_text=True)
    assert "Зерно" in html and "All stores (admin key)" in html


def test_signing_in_starts_a_fresh_session(client: FlaskClient, shop: Shop) -> None:
    with client.session_transaction() as session:
        session["left_over"] = "from before"
    assert sign_in(client, shop.store_token).status_code == 303
    with client.session_transaction() as session:
        assert "left_over" not in session


def test_the_scanner_needs_a_session(client: FlaskClient) -> None:
    response = client.get("/store")
    assert response.status_code == 303 and response.headers["Location"] == "/store/login"


def test_sign_out_clears_the_session(client: FlaskClient, shop: Shop) -> None:
    sign_in(client, shop.store_token)
    csrf = page_csrf(client)
    refused = client.post("/store/logout")  # no CSRF token: a foreign page cannot sign us out
    assert refused.status_code == 400 and staff_id(client) == shop.store_key.id
    response = client.post("/store/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/store/login"
    assert staff_id(client) is None
    assert client.get("/store").status_code == 303
    looked_up = client.get(f"/api/v1/cards/{shop.card.number}")
    assert looked_up.status_code == 401


# --------------------------------------------------------------------------- the API by session


def test_session_writes_need_the_csrf_header(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    sign_in(client, shop.store_token)
    csrf = page_csrf(client)

    refused = purchase(client, shop.card, None)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert refused.get_json(force=True)["code"] == "csrf_failed"
    wrong = purchase(client, shop.card, csrf[:-4] + "AAAA")
    assert wrong.status_code == 403 and wrong.get_json(force=True)["code"] == "csrf_failed"

    recorded = purchase(client, shop.card, csrf)
    assert recorded.status_code == 201, recorded.get_data(as_text=True)
    body = recorded.get_json()
    assert body["amount"] == 12_345 and body["points_earned"] == 12
    assert body["card"]["balance"] == 12 and body["card"]["lookup"] == "typed"
    db_session.expire_all()
    assert db_session.get(Card, shop.card.id).points_balance == 12  # type: ignore[union-attr]


def test_session_redemptions_work_with_the_csrf_header(client: FlaskClient, shop: Shop) -> None:
    sign_in(client, shop.store_token)
    csrf = page_csrf(client)
    headers = {"X-CSRFToken": csrf}
    scan = barcode_payload(BARCODE_KEY, shop.card.number)
    bought = client.post(
        "/api/v1/purchases",
        json={"card": scan, "amount": 200_000, "currency": "RUB"},
        headers={**headers, "Idempotency-Key": "p-1"},
    )
    assert bought.status_code == 201 and bought.get_json()["card"]["balance"] == 200
    assert [r["key"] for r in bought.get_json()["card"]["rewards_available"]] == ["free-coffee"]
    reward = client.post(
        "/api/v1/redemptions",
        json={"card": scan, "reward": "free-coffee"},
        headers={**headers, "Idempotency-Key": "r-1"},
    )
    assert reward.status_code == 201 and reward.get_json()["card"]["balance"] == 50
    paid = client.post(
        "/api/v1/redemptions",
        json={"card": scan, "receipt_amount": 10_000},
        headers={**headers, "Idempotency-Key": "r-2"},
    )
    assert paid.status_code == 201
    assert paid.get_json()["points"] == 30 and paid.get_json()["money"] == 3_000


def test_session_lookup_works(client: FlaskClient, shop: Shop) -> None:
    sign_in(client, shop.store_token)
    scan = barcode_payload(BARCODE_KEY, shop.card.number)
    response = client.get(f"/api/v1/cards/{scan}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["member_name"] == "Анна Смирнова" and body["lookup"] == "scan"
    typed = client.get(f"/api/v1/cards/{shop.card.number}").get_json()
    assert typed["lookup"] == "typed" and typed["balance"] == 0


def test_a_revoked_keys_session_ends(client: FlaskClient, shop: Shop, db_session: Session) -> None:
    sign_in(client, shop.store_token)
    assert client.get(f"/api/v1/cards/{shop.card.number}").status_code == 200
    shop.store_key.revoked_at = utcnow()
    db_session.commit()
    response = client.get(f"/api/v1/cards/{shop.card.number}")
    assert response.status_code == 401 and response.get_json(force=True)["code"] == "unauthorized"
    assert staff_id(client) is None
    assert client.get("/store").status_code == 303


def test_the_page_drops_a_revoked_keys_session(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    sign_in(client, shop.store_token)
    shop.store_key.revoked_at = utcnow()
    db_session.commit()
    response = client.get("/store")
    assert response.status_code == 303 and response.headers["Location"] == "/store/login"
    assert staff_id(client) is None
