"""Apple pushes end to end against the fake APNs (HTTP/2, TLS, client certificate), on both
engines: what is pushed, when rows are cleared, and every APNs answer the sender must handle."""

from __future__ import annotations

import io
import json
import logging
import random
import uuid
import zipfile
from datetime import timedelta

import pytest
from fake_apns import FakeAPNs
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.accounts.api_keys import issue_key
from passes.db import utcnow
from passes.jobs import push_service
from passes.loyalty.ledger import adjust, lock_card
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.push.apns import BlockingApnsClient, PushResult
from passes.push.apple_sender import LEASE, deliver_apple_updates
from passes.push.models import AppleDevice
from passes.push.service import ApplePushService, apns_client_factory
from passes.webhooks.endpoints import add_endpoint
from passes.webhooks.models import WebhookDelivery
from support import PASS_TYPE_IDENTIFIER

RULES = {"currency": "RUB", "earning": {"points": 1, "per_amount": 100}}


def token_hex() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def register(client: FlaskClient, card: Card, device: str, push_token: str) -> None:
    response = client.post(
        f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_IDENTIFIER}/{card.serial_number}",
        json={"pushToken": push_token},
        headers={"Authorization": f"ApplePass {card.authentication_token}"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def touch(session: Session, *cards: Card) -> None:
    """A committed balance change on each card: what queues a wallet update."""
    for card in cards:
        adjust(session, card, points=1, reason="test", actor="test")
    session.commit()


def service(app: Flask) -> ApplePushService:
    found = push_service(app)
    assert found is not None
    return found


def pending(session: Session) -> dict[int, WalletUpdate]:
    session.expire_all()
    return {row.card_id: row for row in session.scalars(select(WalletUpdate)) if row.apple_pending}


@pytest.fixture
def program(db_session: Session) -> Program:
    program = make_program(db_session, rules=RULES)
    db_session.commit()
    return program


def test_purchase_to_push_to_download_end_to_end(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    card = make_card(db_session, program)
    store_key = issue_key(db_session, program, role="store", name="till", store=program.stores[0])
    db_session.commit()
    device, push_token = uuid.uuid4().hex, token_hex()
    register(client, card, device, push_token)
    listing_path = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_IDENTIFIER}"
    tag = client.get(listing_path).get_json()["lastUpdated"]
    assert service(push_app).run_once() is not None
    assert apns.pushes == []  # nothing changed yet

    purchase = client.post(
        "/api/v1/purchases",
        json={"card": card.number, "amount": 50_000, "currency": "RUB"},
        headers={"Authorization": f"Bearer {store_key.token}", "Idempotency-Key": "e2e-1"},
    )
    assert purchase.status_code == 201
    report = service(push_app).run_once()
    assert report is not None and report.delivered == 1
    assert apns.delivered() == [push_token]  # exactly one push, to this device
    push = apns.pushes[0]
    assert push.topic == PASS_TYPE_IDENTIFIER and push.body == b"{}"

    # The device wakes, asks what changed since its tag, and downloads it.
    listing = client.get(listing_path, query_string={"passesUpdatedSince": tag})
    assert listing.get_json()["serialNumbers"] == [card.serial_number]
    auth = {"Authorization": f"ApplePass {card.authentication_token}"}
    download = client.get(
        f"/passkit/v1/passes/{PASS_TYPE_IDENTIFIER}/{card.serial_number}", headers=auth
    )
    assert download.status_code == 200
    fields = json.loads(zipfile.ZipFile(io.BytesIO(download.data)).read("pass.json"))["storeCard"]
    balance = next(f for group in fields.values() for f in group if f["key"] == "balance")
    assert balance["value"] == 500 and "%@" in balance["changeMessage"]
    again = client.get(
        f"/passkit/v1/passes/{PASS_TYPE_IDENTIFIER}/{card.serial_number}",
        headers={**auth, "If-Modified-Since": download.headers["Last-Modified"]},
    )
    assert again.status_code == 304
    assert pending(db_session) == {}


def test_one_push_per_device_however_many_of_its_cards_changed(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    cards = [make_card(db_session, program) for _ in range(5)]
    db_session.commit()
    device, push_token = uuid.uuid4().hex, token_hex()
    other_device, other_token = uuid.uuid4().hex, token_hex()
    for card in cards:
        register(client, card, device, push_token)
    register(client, cards[0], other_device, other_token)
    touch(db_session, *cards)
    report = service(push_app).run_once()
    assert report is not None and report.claimed == 5 and report.delivered == 5
    assert sorted(apns.delivered()) == sorted([push_token, other_token])
    assert pending(db_session) == {}
    assert apns.connections_accepted == 2  # the pool, opened once

    touch(db_session, *cards)
    service(push_app).run_once()
    assert sorted(apns.delivered()) == sorted([push_token, other_token, push_token, other_token])
    assert apns.connections_accepted == 2  # reused, not reconnected


def test_cards_without_devices_are_cleared_without_pushing(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    touch(db_session, make_card(db_session, program))
    report = service(push_app).run_once()
    assert report is not None and report.delivered == 1 and apns.pushes == []
    assert pending(db_session) == {}


def test_a_change_during_the_push_keeps_the_row_pending(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    card = make_card(db_session, program)
    db_session.commit()
    register(client, card, uuid.uuid4().hex, token_hex())
    touch(db_session, card)
    state = push_app.extensions["passes"]
    real = BlockingApnsClient(apns_client_factory(push_app.config, state.apple))

    class ChangingPusher:
        def send(self, tokens: list[str]) -> list[PushResult]:
            results = real.send(tokens)
            with state.sessionmaker() as session:  # a till, while the push is in flight
                adjust(session, lock_card(session, card.id), points=3, reason="t", actor="t")
                session.commit()
            return results

    try:
        deliver_apple_updates(state.sessionmaker, ChangingPusher())
        assert card.id in pending(db_session)
        deliver_apple_updates(state.sessionmaker, real)
        assert pending(db_session) == {}
        assert len(apns.delivered()) == 2
    finally:
        real.close()


def test_410_removes_the_device_unless_it_registered_again_later(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    old, fresh = make_card(db_session, program), make_card(db_session, program)
    add_endpoint(
        db_session,
        program,
        url="http://127.0.0.1:9/hooks",  # queued only
        events=["card.removed"],
        created_by="admin@example.com",
        allow_private=True,
    )
    db_session.commit()
    old_token, fresh_token = token_hex(), token_hex()
    register(client, old, "device-old", old_token)
    register(client, fresh, "device-fresh", fresh_token)
    touch(db_session, old, fresh)
    now_ms = int(utcnow().timestamp() * 1000)
    apns.answer(old_token, 410, "Unregistered", timestamp_ms=now_ms + 60_000)
    apns.answer(fresh_token, 410, "Unregistered", timestamp_ms=now_ms - 3_600_000)
    report = service(push_app).run_once()
    assert report is not None and report.removed_devices == 1 and report.delivered == 2
    devices = db_session.scalars(select(AppleDevice.library_identifier)).all()
    assert devices == ["device-fresh"]
    assert pending(db_session) == {}
    # The shop hears of it as if the device had unregistered: once, for the old card only.
    removed = db_session.scalars(select(WebhookDelivery)).all()
    assert [(d.event_type, d.payload["data"]["card"]["number"]) for d in removed] == [
        ("card.removed", old.number)
    ]
    assert removed[0].payload["data"]["wallet"] == "apple"


def test_bad_device_token_removes_the_device(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    card = make_card(db_session, program)
    db_session.commit()
    bad = token_hex()
    register(client, card, "device-bad", bad)
    touch(db_session, card)
    apns.answer(bad, 400, "BadDeviceToken")
    report = service(push_app).run_once()
    assert report is not None and report.removed_devices == 1
    assert db_session.scalar(select(func.count()).select_from(AppleDevice)) == 0
    assert pending(db_session) == {}


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "TooManyRequests"), (500, "InternalServerError"), (503, "ServiceUnavailable")],
)
def test_429_and_5xx_are_retried_with_backoff(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program, status: int, reason: str
) -> None:
    client = push_app.test_client()
    card = make_card(db_session, program)
    db_session.commit()
    push_token = token_hex()
    register(client, card, "device-1", push_token)
    touch(db_session, card)
    state = push_app.extensions["passes"]
    pusher = BlockingApnsClient(apns_client_factory(push_app.config, state.apple))
    try:
        apns.answer(push_token, status, reason, times=2)
        start = utcnow()
        first = deliver_apple_updates(state.sessionmaker, pusher, now=start, rng=random.Random(1))
        assert first.retrying == 1 and first.delivered == 0
        row = pending(db_session)[card.id]
        assert row.apple_attempts == 1
        assert start + timedelta(seconds=1) <= row.apple_not_before <= start + timedelta(seconds=2)
        # Not due yet: nothing is claimed before the backoff ends.
        assert deliver_apple_updates(state.sessionmaker, pusher, now=start).claimed == 0
        second = deliver_apple_updates(
            state.sessionmaker, pusher, now=row.apple_not_before, rng=random.Random(1)
        )
        assert second.retrying == 1
        row = pending(db_session)[card.id]
        assert row.apple_attempts == 2 and row.apple_not_before > start + timedelta(seconds=2)
        third = deliver_apple_updates(state.sessionmaker, pusher, now=row.apple_not_before)
        assert third.delivered == 1 and pending(db_session) == {}
        assert [p.status for p in apns.pushes] == [status, status, 200]
        if status >= 500:  # a 5xx asks for a fresh connection
            assert apns.connections_accepted > 2
    finally:
        pusher.close()


def test_403_stops_sending_keeps_everything_and_logs_once(
    push_app: Flask,
    apns: FakeAPNs,
    db_session: Session,
    program: Program,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = push_app.test_client()
    card = make_card(db_session, program)
    db_session.commit()
    register(client, card, "device-1", token_hex())
    touch(db_session, card)
    apns.answer_all(403, "BadCertificate", times=None)
    caplog.set_level(logging.ERROR, logger="passes.push.service")
    sender = service(push_app)
    report = sender.run_once()
    assert report is not None and report.stopped == "403 BadCertificate"
    assert sender.run_once() is None  # paused
    assert card.id in pending(db_session)
    assert len([r for r in caplog.records if "APNs refused" in r.getMessage()]) == 1

    apns.reset()
    later = utcnow() + timedelta(minutes=6)
    resumed = sender.run_once(now=later)
    assert resumed is not None and resumed.delivered == 1 and pending(db_session) == {}


def test_crash_between_push_and_acknowledgement_resends_that_batch_only(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    cards = [make_card(db_session, program) for _ in range(3)]
    db_session.commit()
    tokens = [token_hex() for _ in cards]
    for index, card in enumerate(cards):
        register(client, card, f"device-{index}", tokens[index])
    touch(db_session, *cards)
    state = push_app.extensions["passes"]
    real = BlockingApnsClient(apns_client_factory(push_app.config, state.apple))

    class CrashAfterSending:
        def send(self, batch: list[str]) -> list[PushResult]:
            real.send(batch)
            raise SystemExit("killed between send and acknowledge")

    try:
        start = utcnow()
        with pytest.raises(SystemExit):
            deliver_apple_updates(state.sessionmaker, CrashAfterSending(), limit=2, now=start)
        assert len(apns.delivered()) == 2
        assert len(pending(db_session)) == 3  # nothing acknowledged
        # A restarted sender takes the unclaimed row now, and the crashed batch once its lease
        # lapses: at most that batch is pushed twice.
        assert deliver_apple_updates(state.sessionmaker, real, now=start).delivered == 1
        assert deliver_apple_updates(state.sessionmaker, real, now=start + LEASE).delivered == 2
        assert pending(db_session) == {}
        assert sorted(apns.delivered()) == sorted(tokens + apns.delivered()[:2])
    finally:
        real.close()


def test_a_stream_limit_of_one_is_respected(
    push_app: Flask, apns: FakeAPNs, db_session: Session, program: Program
) -> None:
    client = push_app.test_client()
    cards = [make_card(db_session, program) for _ in range(12)]
    db_session.commit()
    for index, card in enumerate(cards):
        register(client, card, f"device-{index}", token_hex())
    touch(db_session, *cards)
    apns.set_max_concurrent_streams(1)
    apns.response_delay = 0.005
    report = service(push_app).run_once()
    assert report is not None and report.delivered == 12
    assert apns.max_observed_concurrency == 1 and apns.refused_streams == 0
