"""Apple and Google on one outbox: a till purchase reaches both wallets, and a failing Google
never holds up Apple pushes, nor the reverse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_apns import FakeAPNs
from fake_google_wallet import FakeGoogleWallet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes import create_app
from passes.accounts.api_keys import issue_key
from passes.jobs import deliver_wallet_updates, google_service, push_service
from passes.loyalty.models import Card, WalletUpdate
from passes.state import AppState
from passes.wallet.apple.devcerts import DevChain
from support import (
    PASS_TYPE_IDENTIFIER,
    apns_settings,
    app_config,
    google_settings,
    join_test_transaction,
)

RULES = {"currency": "RUB", "earning": {"points": 1, "per_amount": 100}}


@pytest.fixture
def wallets_app(
    dev_chain: DevChain,
    database_url: str,
    connection: Connection,
    tmp_path: Path,
    apns: FakeAPNs,
) -> Iterator[tuple[Flask, FakeGoogleWallet]]:
    with FakeGoogleWallet() as google:
        settings = {
            **apns_settings(apns),
            **google_settings(google, tmp_path / "service-account.json"),
        }
        app = create_app(app_config(dev_chain, database_url, **settings))
        app.instance_path = str(tmp_path)
        state: AppState = app.extensions["passes"]
        join_test_transaction(state, connection)
        yield app, google
        for service in (push_service(app), google_service(app)):
            if service is not None:
                service.close()
        assert google.errors == []


def card_in_both_wallets(app: Flask, session: Session) -> tuple[Card, str, str, FlaskClient]:
    """A card registered by an iPhone and saved to Google Wallet:
    (card, push token, store key, client)."""
    program = make_program(session, rules=RULES, tiers=False)
    card = make_card(session, program)
    key = issue_key(session, program, role="store", name="till", store=program.stores[0]).token
    session.commit()
    client = app.test_client()
    push_token = uuid.uuid4().hex * 2
    response = client.post(
        f"/passkit/v1/devices/{uuid.uuid4().hex}/registrations/{PASS_TYPE_IDENTIFIER}/"
        f"{card.serial_number}",
        json={"pushToken": push_token},
        headers={"Authorization": f"ApplePass {card.authentication_token}"},
    )
    assert response.status_code == 201
    assert client.get(f"/c/{card.page_token}/google-wallet").status_code == 303
    return card, push_token, key, client


def buy(client: FlaskClient, card: Card, key: str) -> None:
    response = client.post(
        "/api/v1/purchases",
        json={"card": card.barcode_payload, "amount": 50_000, "currency": "RUB"},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def outbox(session: Session, card: Card) -> WalletUpdate:
    session.expire_all()
    row = session.get(WalletUpdate, card.id)
    assert row is not None
    return row


def test_a_purchase_reaches_both_wallets(
    wallets_app: tuple[Flask, FakeGoogleWallet], apns: FakeAPNs, db_session: Session
) -> None:
    app, google = wallets_app
    card, push_token, key, client = card_in_both_wallets(app, db_session)
    google.requests.clear()
    buy(client, card, key)
    deliver_wallet_updates(app)
    assert apns.delivered() == [push_token]
    (patch,) = google.recorded(action="patch", kind="loyaltyObject")
    assert patch.body.keys() == {"loyaltyPoints"}  # only what changed, silently
    assert patch.body["loyaltyPoints"]["balance"] == {"int": 500}
    row = outbox(db_session, card)
    assert not row.apple_pending and not row.google_pending


def test_a_google_outage_does_not_hold_up_apple(
    wallets_app: tuple[Flask, FakeGoogleWallet], apns: FakeAPNs, db_session: Session
) -> None:
    app, google = wallets_app
    card, push_token, key, client = card_in_both_wallets(app, db_session)
    google.answer(500, times=None)
    buy(client, card, key)
    deliver_wallet_updates(app)
    assert apns.delivered() == [push_token]
    row = outbox(db_session, card)
    assert not row.apple_pending and row.google_pending and row.google_attempts == 1


def test_an_apns_outage_does_not_hold_up_google(
    wallets_app: tuple[Flask, FakeGoogleWallet], apns: FakeAPNs, db_session: Session
) -> None:
    app, google = wallets_app
    card, _push_token, key, client = card_in_both_wallets(app, db_session)
    apns.answer_all(503, "ServiceUnavailable", times=None)
    buy(client, card, key)
    deliver_wallet_updates(app)
    assert apns.delivered() == []
    assert google.objects[f"{google.issuer_id}.{card.serial_number}"]["loyaltyPoints"][
        "balance"
    ] == {"int": 500}
    row = outbox(db_session, card)
    assert row.apple_pending and row.apple_attempts == 1 and not row.google_pending
