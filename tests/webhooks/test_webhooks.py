"""Webhooks end to end against a real HTTP receiver on loopback: which events are produced
(card installed and removed through the PassKit web service, balance and tier changes found
from the outbox, a campaign sent), how they are signed, retried, given up on, and refused for
addresses a shop's endpoint may not have."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.db import utcnow
from passes.jobs import send_webhooks
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.marketing.campaigns import Draft, schedule, send_due
from passes.webhooks.delivery import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    AddressRefused,
    check_url,
    deliver_due,
)
from passes.webhooks.endpoints import EndpointError, add_endpoint
from passes.webhooks.events import detect_changes
from passes.webhooks.models import EVENT_TYPES, WebhookCardState, WebhookDelivery
from support import PASS_TYPE_IDENTIFIER


@dataclass
class Receiver:
    """An HTTP server on loopback that records each POST and answers from ``statuses``."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def hooks_app(app: Flask) -> Flask:
    app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = True  # the receiver is on loopback
    return app


def endpoint_for(
    session: Session, program: Program, url: str, events: list[str] | None = None
) -> str:
    created = add_endpoint(
        session,
        program,
        url=url,
        events=events or list(EVENT_TYPES),
        created_by="admin@example.com",
        allow_private=True,
    )
    session.commit()
    return created.secret


def changed(session: Session, card: Card) -> None:
    """A balance change (a new card is no change: it has no outbox row)."""
    adjust(session, card, points=3, reason="test", actor="t")
    session.commit()


def one_pending_delivery(session: Session, receiver: Receiver) -> tuple[Program, datetime]:
    """A program whose endpoint wants balance changes, one card changed, its delivery queued."""
    program = make_program(session)
    changed(session, make_card(session, program))
    endpoint_for(session, program, receiver.url, ["balance.changed"])
    now = utcnow()
    detect_changes(session, now=now)
    return program, now


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """What a receiver does with the signature header."""
    parts = dict(item.split("=", 1) for item in headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())
    assert abs(int(parts["t"]) - int(utcnow().timestamp())) < 300


def test_balance_and_tier_changes_reach_the_endpoint_signed(
    hooks_app: Flask, db_session: Session, receiver: Receiver
) -> None:
    program = make_program(db_session)
    card = make_card(db_session, program)
    secret = endpoint_for(db_session, program, receiver.url, ["balance.changed", "tier.changed"])
    other = make_program(db_session)
    make_card(db_session, other)  # its changes reach nobody
    db_session.commit()
    assert send_webhooks(hooks_app) == "0 events, 0 delivered, 0 failed"  # nothing changed
    adjust(db_session, card, points=7, reason="first", actor="t")
    db_session.commit()
    send_webhooks(hooks_app)  # the first the endpoint hears of this card
    [first] = receiver.events()
    assert (first["type"], first["data"]["previous_balance"]) == ("balance.changed", None)
    receiver.received.clear()

    balance = card.points_balance
    adjust(db_session, card, points=50, reason="goodwill", actor="t")
    card.tier_key = "gourmet"
    db_session.commit()
    assert send_webhooks(hooks_app) == "2 events, 2 delivered, 0 failed"
    events = {event["type"]: event for event in receiver.events()}
    assert set(events) == {"balance.changed", "tier.changed"}
    moved = events["balance.changed"]
    assert moved["program"] == program.slug and moved["data"]["previous_balance"] == balance
    assert moved["data"]["card"]["points_balance"] == balance + 50
    assert moved["data"]["card"]["number"] == card.number
    assert events["tier.changed"]["data"]["previous_tier"] == "lover"
    for headers, body in receiver.received:
        verify(secret, headers, body)
        assert headers["Content-Type"] == "application/json"
        assert headers["Loyalpass-Event"] == json.loads(body)["type"]
    with pytest.raises(AssertionError):
        verify("whsec_not_it", *receiver.received[0])

    receiver.received.clear()
    assert send_webhooks(hooks_app) == "0 events, 0 delivered, 0 failed"  # nothing new
    assert receiver.received == []


def test_installing_and_removing_a_pass_and_a_sent_campaign(
    hooks_app: Flask, db_session: Session, receiver: Receiver
) -> None:
    program = make_program(db_session)
    card = make_card(db_session, program)
    endpoint_for(
        db_session, program, receiver.url, ["card.installed", "card.removed", "campaign.finished"]
    )
    client = hooks_app.test_client()
    path = (
        f"/passkit/v1/devices/a1b2c3d4e5f60718293a4b5c6d7e8f90/registrations/"
        f"{PASS_TYPE_IDENTIFIER}/{card.serial_number}"
    )
    headers = {"Authorization": f"ApplePass {card.authentication_token}"}
    assert client.post(path, json={"pushToken": "ab" * 32}, headers=headers).status_code == 201
    assert client.post(path, json={"pushToken": "ab" * 32}, headers=headers).status_code == 200
    assert client.delete(path, headers=headers).status_code == 200
    assert client.delete(path, headers=headers).status_code == 200  # already gone: no event
    now = utcnow()
    draft = Draft("Offer", "Text", {"kind": "all"}, now, now + timedelta(days=1), now)
    campaign = schedule(db_session, program, draft, "m@example.com", now)
    db_session.commit()
    assert send_due(db_session, now) == [campaign.id]
    send_webhooks(hooks_app)
    kinds = [(event["type"], event["data"].get("wallet")) for event in receiver.events()]
    assert kinds == [
        ("card.installed", "apple"),
        ("card.removed", "apple"),
        ("campaign.finished", None),
    ]
    finished = receiver.events()[2]["data"]["campaign"]
    assert (finished["id"], finished["targeted"]) == (campaign.id, 1)


def test_failures_are_retried_with_backoff_then_given_up(
    hooks_app: Flask, db_session: Session, receiver: Receiver
) -> None:
    program, now = one_pending_delivery(db_session, receiver)
    receiver.statuses = [500, 200]
    with requests.Session() as http:
        report = deliver_due(db_session, http, allow_private=True, now=now)
        assert (report.attempted, report.retrying) == (1, 1)
        delivery = db_session.scalar(select(WebhookDelivery))
        assert delivery is not None
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending",
            1,
            500,
        )
        wait = delivery.next_attempt_at - now
        assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)  # 30 s, jittered
        assert deliver_due(db_session, http, allow_private=True, now=now).attempted == 0
        later = delivery.next_attempt_at
        assert deliver_due(db_session, http, allow_private=True, now=later).delivered == 1
        db_session.refresh(delivery)
        assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
            "delivered",
            2,
            later,
        )
        first, second = (json.loads(body) for _h, body in receiver.received)
        assert first["id"] == second["id"]  # the same event, delivered again

        # An endpoint that never answers 2xx: given up after MAX_ATTEMPTS.
        card = db_session.scalar(select(Card).where(Card.program_id == program.id))
        assert card is not None
        adjust(db_session, card, points=5, reason="x", actor="t")
        db_session.commit()
        detect_changes(db_session, now=later)
        receiver.statuses = [503] * MAX_ATTEMPTS
        moment = later
        for attempt in range(MAX_ATTEMPTS):
            assert deliver_due(db_session, http, allow_private=True, now=moment).attempted == 1
            failing = db_session.scalar(
                select(WebhookDelivery)
                .order_by(WebhookDelivery.id.desc())
                .execution_options(populate_existing=True)
            )
            assert failing is not None and failing.attempts == attempt + 1
            moment = failing.next_attempt_at
        assert (failing.status, failing.last_error) == ("failed", "answered 503")


def test_endpoints_must_be_public_https_addresses(db_session: Session) -> None:
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://user:pass@example.com/x",
        "https://[64:ff9b::a00:1]/x",  # NAT64 for 10.0.0.1
        "https://[2002:a00:1::1]/x",  # 6to4 for 10.0.0.1
        "ftp://example.com/x",
    ]:
        with pytest.raises(AddressRefused):
            check_url(url, allow_private=False)
    check_url("https://93.184.215.14/hooks", allow_private=False)  # public: no DNS needed
    program = make_program(db_session)
    for url, events, wrong in [
        ("https://127.0.0.1/h", ["tier.changed"], "url"),
        ("https://93.184.215.14/h", ["nope"], "events"),
    ]:
        with pytest.raises(EndpointError) as refused:
            add_endpoint(
                db_session, program, url=url, events=events, created_by="a", allow_private=False
            )
        assert refused.value.field == wrong


def test_a_private_address_is_not_reached_when_not_allowed(
    hooks_app: Flask, db_session: Session, receiver: Receiver
) -> None:
    program = make_program(db_session)
    changed(db_session, make_card(db_session, program))
    endpoint_for(db_session, program, receiver.url, ["balance.changed"])
    detect_changes(db_session)
    with requests.Session() as http:
        report = deliver_due(db_session, http, allow_private=False)
    assert report.retrying == 1 and receiver.received == []
    delivery = db_session.scalar(select(WebhookDelivery))
    assert delivery is not None and "URL must start with https" in (delivery.last_error or "")


def test_programs_without_card_endpoints_only_have_their_flags_cleared(
    db_session: Session, receiver: Receiver
) -> None:
    quiet = make_program(db_session)
    card = make_card(db_session, quiet)
    endpoint_for(db_session, quiet, receiver.url, ["campaign.finished"])  # not card changes
    changed(db_session, card)
    report = detect_changes(db_session)
    assert (report.cards, report.events) == (1, 0)
    assert db_session.get(WebhookCardState, card.id) is None
    row = db_session.get(WalletUpdate, card.id)
    assert row is not None
    db_session.refresh(row)
    assert not row.hooks_pending and row.apple_pending  # the wallets still have it to do
    assert detect_changes(db_session).cards == 0


def test_a_worker_whose_lease_lapsed_does_not_overwrite_the_new_holder(
    hooks_app: Flask, db_session: Session, receiver: Receiver
) -> None:
    from passes.webhooks.delivery import LEASE, _Leased, _Outcome, _record

    _program, now = one_pending_delivery(db_session, receiver)
    delivery = db_session.scalar(select(WebhookDelivery))
    assert delivery is not None
    # Another worker re-leased it after our lease (now + LEASE) ran out.
    theirs = now + LEASE + LEASE
    delivery.next_attempt_at = theirs
    db_session.commit()
    mine = _Leased(
        delivery.id, delivery.event_id, delivery.event_type, {}, 0, receiver.url, "s", False
    )
    assert _record(db_session, mine, _Outcome(500, "answered 500"), now, now + LEASE, None) is None
    db_session.commit()
    db_session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, theirs)
