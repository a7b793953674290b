"""Google Wallet end to end against the fake API (which validates every body against Google's
discovery document): the save link, then balance, tier and offer changes reaching the object."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fake_google_wallet import FakeGoogleWallet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.db import utcnow
from passes.jobs import google_service
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, WalletUpdate
from passes.loyalty.view import card_view
from passes.push.google_sender import GoogleSender
from passes.push.models import GoogleNotification, GoogleObject
from passes.state import AppState
from passes.wallet.google.save_link import SAVE_URL
from passes.wallet.view import CardView, Offer

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def session(google_app: Flask) -> Iterator[Session]:
    state: AppState = google_app.extensions["passes"]
    with state.sessionmaker() as session:
        yield session


def save(client: FlaskClient, card: Card) -> str:
    """Follow the card page's Google button; the JWT of the save link."""
    response = client.get(f"/c/{card.page_token}/google-wallet")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(SAVE_URL)
    return location[len(SAVE_URL) :]


def object_of(google: FakeGoogleWallet, card: Card) -> dict[str, Any]:
    return google.objects[f"{google.issuer_id}.{card.serial_number}"]


def sync(app: Flask) -> Any:
    service = google_service(app)
    assert service is not None
    return service.run_once()


def test_the_save_link_inserts_class_and_object_and_names_only_their_ids(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    program = make_program(session, name="Зерно", organization_name="Кофейня «Зерно»")
    card = make_card(session, program)
    session.commit()
    claims = google.decode_save_jwt(save(google_app.test_client(), card))
    stored = object_of(google, card)
    assert claims["payload"]["loyaltyObjects"] == [
        {"id": stored["id"], "classId": stored["classId"]}
    ]
    assert stored["accountName"] == "Анна Смирнова"
    assert stored["barcode"]["value"] == card.barcode_payload
    klass = google.classes[stored["classId"]]
    assert klass["programName"] == "Зерно" and klass["reviewStatus"] == "UNDER_REVIEW"
    logo = urlsplit(klass["programLogo"]["sourceUri"]["uri"])
    image = google_app.test_client().get(f"{logo.path}?{logo.query}")
    assert image.status_code == 200 and image.mimetype == "image/png"
    # A second click writes nothing new: the object is up to date.
    writes = len(google.recorded())
    save(google_app.test_client(), card)
    assert len(google.recorded()) == writes


def test_edge_cases_pass_googles_schema(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    """Long Cyrillic names, no stores, no website: still valid (the fixture checks errors)."""
    program = make_program(
        session,
        stores=0,
        name="Клуб друзей кофейни «Зерно и Хлеб» на Покровке",
        organization_name="Сеть кофеен и пекарен «Зерно и Хлеб» на Покровке и у Патриарших",
        website=None,
        terms="",
    )
    card = make_card(session, program, name="Констанция-Александра Вольдемаровна Римская-Корсакова")
    session.commit()
    google.decode_save_jwt(save(google_app.test_client(), card))
    assert object_of(google, card)["accountName"].startswith("Констанция")


def test_the_demo_program_passes_googles_schema(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    from passes.demo import load_demo

    state: AppState = google_app.extensions["passes"]
    _program, cards = load_demo(session, barcode_key=state.barcode_key)
    session.commit()
    for card in cards[:3]:
        google.decode_save_jwt(save(google_app.test_client(), card))
    assert len(google.objects) == 3


def test_without_the_api_the_link_carries_the_whole_object(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    program = make_program(session, stores=0, website=None, terms="")
    card = make_card(session, program, name="Ян")
    session.commit()
    google.answer(503, times=None)
    claims = google.decode_save_jwt(save(google_app.test_client(), card), require_stored=False)
    (carried,) = claims["payload"]["loyaltyObjects"]
    assert carried["loyaltyPoints"]["balance"] == {"int": 0}
    assert session.get(GoogleObject, card.id) is not None  # kept current once it exists


def test_a_balance_change_leads_to_exactly_one_silent_patch(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    program = make_program(session, tiers=False)
    card = make_card(session, program)
    session.commit()
    save(google_app.test_client(), card)
    adjust(session, card, points=250, reason="correction", actor="test")
    session.commit()
    google.requests.clear()
    report = sync(google_app)
    patches = google.recorded(action="patch", kind="loyaltyObject")
    assert len(patches) == 1 and report.delivered == 1
    assert patches[0].body == {"loyaltyPoints": object_of(google, card)["loyaltyPoints"]}
    assert object_of(google, card)["loyaltyPoints"]["balance"] == {"int": 250}
    assert google.recorded(action="addMessage") == []
    assert session.get(WalletUpdate, card.id).google_pending is False  # type: ignore[union-attr]
    assert sync(google_app).claimed == 0  # nothing left


def test_cards_nobody_saved_to_google_wallet_are_not_sent(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session))
    adjust(session, card, points=5, reason="test", actor="test")
    session.commit()
    assert sync(google_app).claimed == 0
    assert google.recorded() == []
    assert session.get(WalletUpdate, card.id).google_pending is False  # type: ignore[union-attr]


def sender_with_offers(app: Flask, offers: list[Offer]) -> GoogleSender:
    """The real sender, with cards showing ``offers`` (campaigns, which fill them, are issue 6)."""
    state: AppState = app.extensions["passes"]
    assert state.google is not None

    def view_of(card: Card) -> CardView:
        return replace(card_view(card), offers=tuple(offers))

    return GoogleSender(state.sessionmaker, state.google, None, threads=1, view_of=view_of)


def test_an_offer_leads_to_one_add_message_and_the_fourth_in_a_day_goes_silently(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    object_id = object_of(google, card)["id"]
    offers: list[Offer] = []
    for number in range(1, 5):
        offers.append(Offer(f"offer-{number}", f"Offer {number}", f"Coffee -{number * 10} %"))
        adjust(session, card, points=1, reason="new offer", actor="test")
        session.commit()
        google.requests.clear()
        report = sender_with_offers(google_app, offers).deliver()
        messages = google.recorded(action="addMessage")
        if number <= 3:
            assert len(messages) == 1 and report.notified == 1
            assert messages[0].body["message"]["messageType"] == "TEXT_AND_NOTIFY"
            assert google.recorded(action="patch")[0].body.keys() == {"loyaltyPoints"}
        else:  # over the budget: the offer still arrives, in a silent PATCH
            assert messages == [] and report.silenced == 1 and report.notified == 0
            (patch,) = google.recorded(action="patch")
            assert [m["id"] for m in patch.body["messages"]][-1] == "offer-offer-4"
            assert "notifyPreference" not in patch.body
    assert len(google.notifications_for(object_id)) == 3
    assert [m["header"] for m in object_of(google, card)["messages"]] == [
        f"Offer {n}" for n in range(1, 5)
    ]
    assert session.scalar(select(GoogleNotification.id).limit(1)) is not None


def test_the_budget_is_a_rolling_day(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    for _ in range(3):  # three notifications, a day and a minute ago
        session.add(
            GoogleNotification(card_id=card.id, sent_at=utcnow() - timedelta(days=1, minutes=1))
        )
    adjust(session, card, points=1, reason="new offer", actor="test")
    session.commit()
    report = sender_with_offers(google_app, [Offer("x", "Fresh", "Fresh offer")]).deliver()
    assert report.notified == 1 and len(google.recorded(action="addMessage")) == 1


def test_a_tier_change_notifies_a_balance_change_does_not(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session))
    session.commit()
    save(google_app.test_client(), card)
    card.tier_key = "gourmet"
    session.commit()
    google.requests.clear()
    sync(google_app)
    (patch,) = google.recorded(action="patch")
    assert patch.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert patch.body["secondaryLoyaltyPoints"]["balance"] == {"string": "Гурман"}


def test_429_and_5xx_are_retried_and_a_lasting_outage_keeps_the_update(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    adjust(session, card, points=7, reason="test", actor="test")
    session.commit()
    google.answer(429, action="patch")
    google.answer(500, action="patch")
    report = sync(google_app)  # the client retried twice and got through
    assert report.delivered == 1
    assert [r.status for r in google.recorded(action="patch")] == [429, 500, 200]

    adjust(session, card, points=1, reason="test", actor="test")
    session.commit()
    google.answer(503, times=None, action="patch")
    service = google_service(google_app)
    assert service is not None
    outage = utcnow()
    report = service.run_once(now=outage)
    assert report is not None and report.retrying == 1 and report.delivered == 0
    pending = session.get(WalletUpdate, card.id)
    session.refresh(pending)  # type: ignore[arg-type]
    assert pending is not None and pending.google_pending and pending.google_attempts == 1
    assert pending.google_not_before is not None
    assert pending.google_not_before >= outage + timedelta(seconds=1)  # backoff: 1-2 s at first
    assert service.run_once(now=outage).claimed == 0  # type: ignore[union-attr]  # not yet due
    google.reset()  # Google is back, with nothing stored: class and object are created again
    report = service.run_once(now=pending.google_not_before + timedelta(seconds=1))
    assert report is not None and report.delivered == 1
    assert object_of(google, card)["loyaltyPoints"]["balance"] == {"int": 8}


def test_403_pauses_sending_keeps_updates_and_logs_once(
    google_app: Flask,
    session: Session,
    google: FakeGoogleWallet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    adjust(session, card, points=7, reason="test", actor="test")
    session.commit()
    google.answer(403, reason="permissionDenied", times=None)
    with caplog.at_level(logging.ERROR):
        report = sync(google_app)
        assert report.stopped == "403 permissionDenied" and report.delivered == 0
        assert sync(google_app) is None  # paused: no request, no second error
    assert len([r for r in caplog.records if "Pay & Wallet Console" in r.message]) == 1
    pending = session.get(WalletUpdate, card.id)
    session.refresh(pending)  # type: ignore[arg-type]
    assert pending is not None and pending.google_pending


def test_an_object_google_already_holds_is_patched_not_replaced(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    """A restored database, or a second install: insert answers 409, and a PATCH of our fields
    follows (never a PUT, which would wipe what others set)."""
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    object_id = f"{google.issuer_id}.{card.serial_number}"
    save(google_app.test_client(), card)
    google.objects[object_id]["accountName"] = "Someone Else"
    google.objects[object_id]["hasUsers"] = True  # a field we never send
    session.execute(delete(GoogleObject).where(GoogleObject.card_id == card.id))
    session.commit()
    google.requests.clear()
    save(google_app.test_client(), card)
    actions = [(r.kind, r.action, r.status) for r in google.recorded(kind="loyaltyObject")]
    assert actions == [("loyaltyObject", "insert", 409), ("loyaltyObject", "patch", 200)]
    assert google.recorded(action="update") == []
    assert object_of(google, card)["accountName"] == card.member.name
    assert object_of(google, card)["hasUsers"] is True


def make_due(session: Session, card: Card) -> None:
    """Skip the backoff of a failed sync."""
    session.expire_all()
    row = session.get(WalletUpdate, card.id)
    assert row is not None
    row.google_not_before = None
    session.commit()


def test_a_notification_is_counted_even_when_a_later_call_fails(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    adjust(session, card, points=1, reason="new offer", actor="test")
    session.commit()
    google.answer(500, times=None, action="patch")
    report = sender_with_offers(google_app, [Offer("a", "A", "Offer A")]).deliver()
    assert report.retrying == 1 and report.messages == 1
    ours = session.scalar(select(func.count()).select_from(GoogleNotification))
    assert ours == len(google.notifications_for(object_of(google, card)["id"])) == 1


def test_a_message_is_not_sent_twice_when_the_patch_after_it_failed(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    adjust(session, card, points=1, reason="new offer", actor="test")
    session.commit()
    google.answer(500, times=3, action="patch")  # the client's three tries all fail
    sender = sender_with_offers(google_app, [Offer("a", "A", "Offer A")])
    assert sender.deliver().retrying == 1
    make_due(session, card)
    assert sender.deliver().delivered == 1
    assert len(google.recorded(action="addMessage")) == 1
    assert [m["id"] for m in object_of(google, card)["messages"]] == ["offer-a"]


def test_a_fallback_link_does_not_make_offers_on_the_pass_look_new(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    client = google_app.test_client()
    save(client, card)
    sender = sender_with_offers(google_app, [Offer("a", "A", "Offer A")])
    adjust(session, card, points=1, reason="new offer", actor="test")
    session.commit()
    sender.deliver()
    adjust(session, card, points=1, reason="test", actor="test")
    session.commit()
    google.answer(503, times=None)
    save(client, card)  # the member taps again while Google is down: a full-JWT link
    google.reset()
    google.classes.clear()
    make_due(session, card)
    sender.deliver()
    assert google.recorded(action="addMessage") == []


def test_a_class_google_refuses_holds_back_only_its_own_cards(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    bad, good = make_program(session, tiers=False), make_program(session, tiers=False)
    card_bad, card_good = make_card(session, bad), make_card(session, good)
    session.commit()
    client = google_app.test_client()
    save(client, card_bad)
    save(client, card_good)
    bad.name = f"{bad.name} renamed"
    adjust(session, card_bad, points=1, reason="test", actor="test")
    adjust(session, card_good, points=5, reason="test", actor="test")
    session.commit()
    google.answer(400, reason="invalidArgument", times=None, action="patch", kind="loyaltyClass")
    report = sync(google_app)
    assert report.failed == 1 and report.delivered == 1
    assert object_of(google, card_good)["loyaltyPoints"]["balance"] == {"int": 5}


def test_a_change_while_the_save_link_is_written_still_reaches_google(
    google_app: Flask,
    session: Session,
    google: FakeGoogleWallet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import passes.push.google_objects as google_objects

    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    card_id = card.id
    state: AppState = google_app.extensions["passes"]
    real = google_objects.put_resource

    def with_a_purchase_meanwhile(api: Any, resource: Any, body: Any, sent: Any) -> bool:
        written = real(api, resource, body, sent)
        if resource == "loyaltyObject":  # a till commits, and the sender runs, meanwhile
            with state.sessionmaker() as other:
                other_card = other.get(Card, card_id)
                assert other_card is not None
                adjust(other, other_card, points=42, reason="purchase", actor="till")
                other.commit()
            sync(google_app)
        return written

    monkeypatch.setattr(google_objects, "put_resource", with_a_purchase_meanwhile)
    save(google_app.test_client(), card)
    monkeypatch.setattr(google_objects, "put_resource", real)
    sync(google_app)
    assert object_of(google, card)["loyaltyPoints"]["balance"] == {"int": 42}


def test_runs_reuse_their_clients_and_access_tokens(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    card = make_card(session, make_program(session, tiers=False))
    session.commit()
    save(google_app.test_client(), card)
    google.token_requests.clear()
    for _ in range(5):
        adjust(session, card, points=1, reason="test", actor="test")
        session.commit()
        assert sync(google_app).delivered == 1
    assert len(google.token_requests) == 1  # the sender's one thread, once


def test_a_class_google_lost_is_written_whole_again(
    google_app: Flask, session: Session, google: FakeGoogleWallet
) -> None:
    program = make_program(session, tiers=False)
    card = make_card(session, program)
    session.commit()
    save(google_app.test_client(), card)
    class_id = object_of(google, card)["classId"]
    del google.classes[class_id]  # a wiped demo issuer
    program.name = f"{program.name} renamed"
    session.commit()
    google.requests.clear()
    sync(google_app)
    actions = [(r.action, r.status) for r in google.recorded(kind="loyaltyClass")]
    assert actions == [("patch", 404), ("insert", 200)]
    assert google.classes[class_id]["programName"] == program.name
