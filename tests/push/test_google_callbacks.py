"""Google Wallet's save/delete callbacks end to end: the class we write names our callback URL,
the fake signs the callback as Google does, and our endpoint records who keeps the card in
Google Wallet: once per event, in order, with webhooks, and with deleted cards no longer synced."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fake_google_wallet import FakeGoogleWallet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import make_card, make_program
from passes.analytics.figures import overview
from passes.db import utcnow
from passes.jobs import forget_callback_nonces, google_service
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.marketing.campaigns import reach
from passes.members.csv_io import export_rows
from passes.push.models import GoogleCallbackNonce, GoogleObject
from passes.state import AppState
from passes.webhooks.endpoints import add_endpoint
from passes.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.usefixtures("loopback_only")

CALLBACK_PATH = "/google/callbacks"


@pytest.fixture
def session(google_app: Flask) -> Iterator[Session]:
    state: AppState = google_app.extensions["passes"]
    with state.sessionmaker() as session:
        yield session


@pytest.fixture
def saved_card(google_app: Flask, session: Session) -> tuple[Program, Card, str]:
    """A card whose member asked for the save link (class and object are at Google), with a
    webhook endpoint listening for cards installed and removed. Returns the object id."""
    program = make_program(session)
    card = make_card(session, program)
    add_endpoint(
        session,
        program,
        url="http://127.0.0.1:9/loyalty",  # queued only: these tests deliver nothing
        events=["card.installed", "card.removed"],
        created_by="admin@example.com",
        allow_private=True,
    )
    session.commit()
    response = google_app.test_client().get(f"/c/{card.page_token}/google-wallet")
    assert response.status_code == 303
    known = session.get(GoogleObject, card.id)
    assert known is not None and known.in_wallet is None
    return program, card, known.object_id


def post(client: FlaskClient, url: str, body: bytes) -> TestResponse:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "loyalpass.test", CALLBACK_PATH)
    return client.post(parts.path, data=body, content_type="application/json")


def hooks(session: Session) -> list[tuple[str, str]]:
    return [
        (delivery.event_type, delivery.payload["data"]["wallet"])
        for delivery in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
    ]


def in_segment(session: Session, program: Program, wallet: str) -> int:
    """The campaign dry run's count for the "wallet" segment."""
    return reach(session, program, {"kind": "wallet", "wallet": wallet}, utcnow())


def state_of(session: Session, card: Card) -> bool | None:
    session.expire_all()
    known = session.get(GoogleObject, card.id)
    assert known is not None
    return known.in_wallet


def test_the_class_names_our_callback_url(
    google: FakeGoogleWallet, saved_card: tuple[Program, Card, str]
) -> None:
    _program, _card, object_id = saved_card
    klass = google.classes[google.objects[object_id]["classId"]]
    assert klass["callbackOptions"] == {"url": f"https://loyalpass.test{CALLBACK_PATH}"}


def test_a_save_then_a_delete_are_recorded_once_each_with_webhooks(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    program, card, object_id = saved_card
    client = google_app.test_client()
    url, save = google.callback(object_id, "save")
    response = post(client, url, save)
    assert response.status_code == 200 and response.json == {"outcome": "applied"}
    assert state_of(session, card) is True
    assert post(client, url, save).json == {"outcome": "duplicate"}  # Google delivered it twice
    figures = dict(overview(session, program).rows)
    assert (figures["cards_in_google_wallet"], figures["cards_offered_to_google_wallet"]) == (1, 1)

    url, delete = google.callback(object_id, "del", expires_in=3700)
    assert post(client, url, delete).json == {"outcome": "applied"}
    assert state_of(session, card) is False
    assert hooks(session) == [("card.installed", "google"), ("card.removed", "google")]
    figures = dict(overview(session, program).rows)
    assert (figures["cards_in_google_wallet"], figures["cards_offered_to_google_wallet"]) == (0, 1)
    known = session.get(GoogleObject, card.id)
    assert known is not None and known.saved_at is not None and known.deleted_at is not None


def test_a_late_older_callback_does_not_undo_a_newer_one(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    _program, card, object_id = saved_card
    client = google_app.test_client()
    url, older_save = google.callback(object_id, "save", expires_in=3600)
    _url, newer_delete = google.callback(object_id, "del", expires_in=3700)
    assert post(client, url, newer_delete).json == {"outcome": "applied"}
    assert post(client, url, older_save).json == {"outcome": "stale"}
    assert state_of(session, card) is False
    assert hooks(session) == [("card.removed", "google")]


def test_a_card_deleted_from_google_wallet_is_no_longer_synced_until_saved_again(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    program, card, object_id = saved_card
    service = google_service(google_app)
    assert service is not None
    service.run_once()
    client = google_app.test_client()
    url, delete = google.callback(object_id, "del")
    assert post(client, url, delete).status_code == 200
    patches = len(google.recorded(action="patch", kind="loyaltyObject"))

    adjust(session, card, points=40, reason="goodwill", actor="admin@example.com")
    session.commit()
    service.run_once()
    assert len(google.recorded(action="patch", kind="loyaltyObject")) == patches
    update = session.get(WalletUpdate, card.id)
    assert update is not None and not update.google_pending  # settled, not retried
    assert in_segment(session, program, "google") == 0
    assert in_segment(session, program, "none") == 1

    # The member saves it again from an old link (not asking us for a new one): the object is
    # brought up to date by the next sync.
    url, save = google.callback(object_id, "save", expires_in=3700)
    assert post(client, url, save).json == {"outcome": "applied"}
    service.run_once()
    assert google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 40}
    assert in_segment(session, program, "google") == 1
    rows = list(export_rows(session, program))
    assert rows[1][rows[0].index("google_wallet")] == "saved"


def test_a_card_saved_from_a_fallback_link_then_deleted_is_written_whole_when_asked_again(
    google_app: Flask, google: FakeGoogleWallet, session: Session
) -> None:
    """Google was down when the member asked: the link carried the essentials (and the class,
    with its callback URL), Google created them as the member saved; the member deleted the
    card before the sync completed it. Asking again writes the whole object over REST."""
    program = make_program(session, tiers=False)  # short enough for the callback URL to fit
    card = make_card(session, program)
    session.commit()
    client = google_app.test_client()
    google.answer(503, times=None)
    response = client.get(f"/c/{card.page_token}/google-wallet")
    token = response.headers["Location"].rsplit("/", 1)[1]
    claims = google.decode_save_jwt(token, require_stored=False)
    google.reset()
    ((klass,), (essentials,)) = (
        claims["payload"]["loyaltyClasses"],
        claims["payload"]["loyaltyObjects"],
    )
    assert klass["callbackOptions"] == {"url": f"https://loyalpass.test{CALLBACK_PATH}"}
    google.classes[klass["id"]] = klass  # as Google creates them when the member saves
    google.objects[essentials["id"]] = essentials
    url, save = google.callback(essentials["id"], "save")
    assert post(client, url, save).json == {"outcome": "applied"}
    _url, delete = google.callback(essentials["id"], "del", expires_in=3700)
    assert post(client, url, delete).json == {"outcome": "applied"}
    google_service_ran = google_service(google_app)
    assert google_service_ran is not None
    google_service_ran.run_once()  # the card is deleted: nothing is completed
    assert "messages" not in google.objects[essentials["id"]]

    response = client.get(f"/c/{card.page_token}/google-wallet")
    claims = google.decode_save_jwt(response.headers["Location"].rsplit("/", 1)[1])
    assert claims["payload"]["loyaltyObjects"] == [
        {"id": essentials["id"], "classId": klass["id"]}
    ]  # the REST write worked: the link names the ids only
    assert "messages" in google.objects[essentials["id"]]  # the whole object now
    known = session.get(GoogleObject, card.id)
    assert known is not None and "_unconfirmed" not in known.sent_body


@pytest.mark.parametrize("deletion_first", [True, False])
def test_a_save_and_a_delete_of_the_same_millisecond_end_deleted_in_either_order(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
    deletion_first: bool,
) -> None:
    _program, card, object_id = saved_card
    stamp = {"expTimeMillis": int(utcnow().timestamp() * 1000) + 3_600_000}
    url, save = google.callback(object_id, "save", message_fields=stamp)
    _url, delete = google.callback(object_id, "del", message_fields=stamp)
    client = google_app.test_client()
    first, second = (delete, save) if deletion_first else (save, delete)
    post(client, url, first)
    outcome = post(client, url, second).json
    assert outcome == {"outcome": "stale" if deletion_first else "applied"}
    assert state_of(session, card) is False


def test_expired_nonces_are_forgotten_by_the_hourly_job(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    _program, _card, object_id = saved_card
    client = google_app.test_client()
    url, soon = google.callback(object_id, "save", expires_in=60)
    _url, later = google.callback(object_id, "del", expires_in=7200)
    post(client, url, soon)
    post(client, url, later)
    assert forget_callback_nonces(google_app, now=utcnow() + timedelta(hours=1)) == (
        "1 nonces forgotten"
    )
    session.expire_all()
    assert session.scalars(select(GoogleCallbackNonce.nonce)).all() == [
        json.loads(json.loads(later)["signedMessage"])["nonce"]
    ]


def test_forged_callbacks_change_nothing_and_say_why(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    _program, card, object_id = saved_card
    client = google_app.test_client()
    url, body = google.callback(object_id, "save")
    envelope = json.loads(body)
    envelope["signedMessage"] = envelope["signedMessage"].replace("save", "del")
    for forged in (json.dumps(envelope).encode(), b"{}", b"not json"):
        response = post(client, url, forged)
        assert response.status_code == 400
        assert response.mimetype == "application/problem+json"
        assert response.json is not None
        assert response.json["detail"].startswith("not a valid Google Wallet callback: ")
    assert state_of(session, card) is None
    assert hooks(session) == []
    assert session.scalar(select(GoogleCallbackNonce)) is None
    too_big = client.post(CALLBACK_PATH, data=b" " * 20000, content_type="application/json")
    assert too_big.status_code == 413
    chunked = client.post(
        CALLBACK_PATH,
        input_stream=io.BytesIO(b" " * 20000),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},  # as a server that de-chunks says
    )
    assert chunked.status_code == 413


def test_forged_callbacks_cannot_make_us_hammer_google_for_keys(
    google_app: Flask, google: FakeGoogleWallet, saved_card: tuple[Program, Card, str]
) -> None:
    """A callback signed by an unknown root makes us refetch Google's keys, at most once a
    minute, however many arrive."""
    _program, _card, object_id = saved_card
    impostor = ec.generate_private_key(ec.SECP256R1())
    client = google_app.test_client()
    for _ in range(5):
        url, forged = google.callback(object_id, "save", root_key=impostor)
        response = post(client, url, forged)
        assert response.status_code == 400
        assert response.json is not None and "root signing key" in response.json["detail"]
    assert google.callback_key_requests == 1  # the first fetch only: it was under a minute ago


def test_a_rotated_root_key_is_fetched_when_a_callback_needs_it(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    _program, card, object_id = saved_card
    client = google_app.test_client()
    url, first = google.callback(object_id, "save")
    assert post(client, url, first).status_code == 200
    assert google.callback_key_requests == 1
    # Google rotates: the new root signs from now on; our cached list does not hold it yet.
    rotated = ec.generate_private_key(ec.SECP256R1())
    google.callback_root_keys.append((rotated, google.callback_root_keys[0][1]))
    state: AppState = google_app.extensions["passes"]
    assert state.google is not None
    state.google.callback_keys._fetched_at -= 60  # the last fetch was a minute ago
    _url, second = google.callback(object_id, "del", root_key=rotated, expires_in=3700)
    assert post(client, url, second).json == {"outcome": "applied"}
    assert google.callback_key_requests == 2
    assert state_of(session, card) is False


def test_no_keys_from_google_asks_google_to_retry(
    google_app: Flask, google: FakeGoogleWallet, saved_card: tuple[Program, Card, str]
) -> None:
    _program, _card, object_id = saved_card
    url, body = google.callback(object_id, "save")
    google.callback_root_keys = []  # Google's key list answers, empty
    response = post(google_app.test_client(), url, body)
    assert response.status_code == 503
    assert response.json is not None and response.json["code"] == "keys_unavailable"


def test_a_callback_about_an_object_we_do_not_have_is_acknowledged(
    google_app: Flask,
    google: FakeGoogleWallet,
    session: Session,
    saved_card: tuple[Program, Card, str],
) -> None:
    _program, card, object_id = saved_card
    google.objects[f"{google.issuer_id}.gone"] = {**google.objects[object_id], "id": "x"}
    url, body = google.callback(f"{google.issuer_id}.gone", "save")
    assert post(google_app.test_client(), url, body).json == {"outcome": "unknown_object"}
    assert state_of(session, card) is None


def test_without_google_wallet_the_callback_url_does_not_exist(client: FlaskClient) -> None:
    response = client.post(CALLBACK_PATH, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
