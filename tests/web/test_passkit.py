"""The PassKit web service through HTTP, on both engines: every status code Apple specifies."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import make_card, make_program
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card
from passes.push.models import AppleDevice, AppleRegistration
from support import PASS_TYPE_IDENTIFIER

DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "ab" * 32


def auth(card: Card) -> dict[str, str]:
    return {"Authorization": f"ApplePass {card.authentication_token}"}


def registration_path(
    card: Card, device: str = DEVICE, pass_type: str = PASS_TYPE_IDENTIFIER
) -> str:
    return f"/passkit/v1/devices/{device}/registrations/{pass_type}/{card.serial_number}"


def register(client: FlaskClient, card: Card, token: str = TOKEN, **kwargs: object) -> TestResponse:
    headers = kwargs.pop("headers", auth(card))
    return client.post(registration_path(card), json={"pushToken": token}, headers=headers)


@pytest.fixture
def card(db_session: Session) -> Card:
    program = make_program(db_session)
    card = make_card(db_session, program)
    db_session.commit()
    return card


def assert_problem(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


# --------------------------------------------------------------------------- registration


def test_register_is_201_then_200_and_updates_the_push_token(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    assert register(client, card).status_code == 201
    assert register(client, card, token="CD" * 32).status_code == 200
    devices = db_session.scalars(select(AppleDevice)).all()
    assert [device.push_token for device in devices] == ["cd" * 32]
    assert db_session.scalar(select(func.count()).select_from(AppleRegistration)) == 1


def test_register_refuses_a_wrong_or_missing_token(client: FlaskClient, card: Card) -> None:
    wrong = register(client, card, headers={"Authorization": "ApplePass " + "x" * 32})
    assert_problem(wrong, 401, "unauthorized")
    assert wrong.headers["WWW-Authenticate"].startswith("ApplePass")
    assert_problem(register(client, card, headers={}), 401, "unauthorized")
    bearer = {"Authorization": f"Bearer {card.authentication_token}"}
    assert_problem(register(client, card, headers=bearer), 401, "unauthorized")


def test_register_unknown_pass_type_or_serial_is_404(client: FlaskClient, card: Card) -> None:
    other_type = registration_path(card, pass_type="pass.other.example")
    assert_problem(
        client.post(other_type, json={"pushToken": TOKEN}, headers=auth(card)),
        404,
        "unknown_pass_type",
    )
    unknown = f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE_IDENTIFIER}/nope"
    assert_problem(
        client.post(unknown, json={"pushToken": TOKEN}, headers=auth(card)), 404, "unknown_pass"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"[]", "bad_push_token"),
        (b"{}", "bad_push_token"),
        (b'{"pushToken": 42}', "bad_push_token"),
        (b'{"pushToken": "not hex at all"}', "bad_push_token"),
    ],
)
def test_register_malformed_bodies_are_400(
    client: FlaskClient, card: Card, body: bytes, code: str
) -> None:
    response = client.post(
        registration_path(card), data=body, headers=auth(card), content_type="application/json"
    )
    assert_problem(response, 400, code)


def test_register_malformed_device_is_400(client: FlaskClient, card: Card) -> None:
    response = client.post(
        registration_path(card, device="bad%20device"),
        json={"pushToken": TOKEN},
        headers=auth(card),
    )
    assert_problem(response, 400, "bad_device")


def test_unregister_is_200_and_forgets_the_device(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    register(client, card)
    wrong = client.delete(registration_path(card), headers={"Authorization": "ApplePass nope"})
    assert_problem(wrong, 401, "unauthorized")
    assert client.delete(registration_path(card), headers=auth(card)).status_code == 200
    assert db_session.scalar(select(func.count()).select_from(AppleDevice)) == 0
    listing = client.get(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE_IDENTIFIER}")
    assert listing.status_code == 204


# --------------------------------------------------------------------------- listing


def test_listing_without_a_tag_gives_all_the_devices_passes(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    second = make_card(db_session, card.program)
    db_session.commit()
    register(client, card)
    register(client, second)
    path = f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE_IDENTIFIER}"
    body = client.get(path).get_json()
    assert body["serialNumbers"] == sorted([card.serial_number, second.serial_number])
    assert isinstance(body["lastUpdated"], str) and body["lastUpdated"].isdigit()
    # A garbled tag cannot lose updates: it counts as no tag.
    assert client.get(path + "?passesUpdatedSince=yesterday").get_json() == body


def test_listing_for_an_unknown_device_or_pass_type(client: FlaskClient, card: Card) -> None:
    unknown = client.get(f"/passkit/v1/devices/{DEVICE}/registrations/{PASS_TYPE_IDENTIFIER}")
    assert unknown.status_code == 204 and unknown.data == b""
    other = client.get(f"/passkit/v1/devices/{DEVICE}/registrations/pass.other.example")
    assert_problem(other, 404, "unknown_pass_type")


# --------------------------------------------------------------------------- the pass


def pass_path(card: Card) -> str:
    return f"/passkit/v1/passes/{PASS_TYPE_IDENTIFIER}/{card.serial_number}"


def test_latest_pass_with_last_modified_then_304(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    first = client.get(pass_path(card), headers=auth(card))
    assert first.status_code == 200 and first.mimetype == "application/vnd.apple.pkpass"
    document = json.loads(zipfile.ZipFile(io.BytesIO(first.data)).read("pass.json"))
    assert document["serialNumber"] == card.serial_number
    assert document["webServiceURL"] == "https://loyalpass.test/passkit"
    last_modified = first.headers["Last-Modified"]
    same = client.get(pass_path(card), headers={**auth(card), "If-Modified-Since": last_modified})
    assert same.status_code == 304 and same.data == b""
    older = format_datetime(
        parsedate_to_datetime(last_modified) - timedelta(seconds=1), usegmt=True
    )
    assert (
        client.get(pass_path(card), headers={**auth(card), "If-Modified-Since": older}).status_code
        == 200
    )

    adjust(db_session, card, points=25, reason="goodwill", actor="test")
    db_session.commit()
    changed = client.get(
        pass_path(card), headers={**auth(card), "If-Modified-Since": last_modified}
    )
    assert changed.status_code == 200
    fields = json.loads(zipfile.ZipFile(io.BytesIO(changed.data)).read("pass.json"))["storeCard"]
    balance = next(f for group in fields.values() for f in group if f["key"] == "balance")
    assert balance["value"] == 25
    assert "%@" in balance["changeMessage"]
    assert parsedate_to_datetime(changed.headers["Last-Modified"]) > parsedate_to_datetime(
        last_modified
    )


def test_latest_pass_refuses_bad_tokens_and_unknown_passes(client: FlaskClient, card: Card) -> None:
    assert_problem(client.get(pass_path(card)), 401, "unauthorized")
    bad = client.get(pass_path(card), headers={"Authorization": "ApplePass " + "0" * 32})
    assert_problem(bad, 401, "unauthorized")
    # A 304 is never a way around the token.
    bad_conditional = client.get(
        pass_path(card),
        headers={
            "Authorization": "ApplePass nope",
            "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT",
        },
    )
    assert_problem(bad_conditional, 401, "unauthorized")
    unknown = client.get(f"/passkit/v1/passes/{PASS_TYPE_IDENTIFIER}/nope", headers=auth(card))
    assert_problem(unknown, 404, "unknown_pass")
    other = client.get(
        f"/passkit/v1/passes/pass.other.example/{card.serial_number}", headers=auth(card)
    )
    assert_problem(other, 404, "unknown_pass_type")


# --------------------------------------------------------------------------- logs


def test_device_logs_are_logged_with_limits(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="passes.passkit.device")
    long_line = "x" * 5000
    response = client.post("/passkit/v1/log", json={"logs": ["first problem", long_line]})
    assert response.status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert "device: first problem" in messages
    assert any(m.startswith("device: xxx") and len(m) == len("device: ") + 1000 for m in messages)
    caplog.clear()
    client.post("/passkit/v1/log", json={"logs": [f"line {i}" for i in range(80)]})
    assert len(caplog.records) == 51 and "30 more lines dropped" in caplog.records[-1].getMessage()

    assert_problem(
        client.post("/passkit/v1/log", data=b"nope", content_type="application/json"),
        400,
        "malformed_json",
    )
    assert_problem(client.post("/passkit/v1/log", json={"logs": "one string"}), 400, "bad_logs")
    huge = {"logs": ["y" * 70_000]}
    assert_problem(client.post("/passkit/v1/log", json=huge), 413, "too_large")


def test_device_logs_are_rate_limited(client: FlaskClient) -> None:
    statuses = [
        client.post(
            "/passkit/v1/log", json={"logs": ["x"]}, environ_base={"REMOTE_ADDR": "192.0.2.77"}
        ).status_code
        for _ in range(35)
    ]
    assert statuses.count(429) >= 4 and statuses[0] == 200
    other = client.post(
        "/passkit/v1/log", json={"logs": ["x"]}, environ_base={"REMOTE_ADDR": "192.0.2.78"}
    )
    assert other.status_code == 200
