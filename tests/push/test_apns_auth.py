"""APNs token authentication (.p8, ES256) against the fake in token mode, and the settings that
cannot work, refused with the setting's name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fake_apns import FakeAPNs
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes import create_app
from passes.jobs import push_service
from passes.loyalty.ledger import adjust
from passes.push.apns import ApnsClient, tls_context
from passes.push.registrations import register
from passes.push.service import apns_client_factory
from passes.wallet.apple.devcerts import DevChain
from support import apns_settings, app_config, join_test_transaction

KEY_ID = "ABC123DEFG"


@pytest.fixture
def auth_key(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


@pytest.fixture
def token_apns(
    dev_chain: DevChain, tmp_path: Path, auth_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> Iterator[FakeAPNs]:
    with FakeAPNs(
        tmp_path / "apns",
        auth="token",
        team_id=dev_chain.team_identifier,
        key_id=KEY_ID,
        token_key=auth_key[1],
        topics=[dev_chain.pass_type_identifier],
    ) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def token_app(
    dev_chain: DevChain,
    database_url: str,
    connection: Connection,
    tmp_path: Path,
    token_apns: FakeAPNs,
    auth_key: tuple[Path, ec.EllipticCurvePublicKey],
) -> Iterator[Flask]:
    settings: dict[str, Any] = {
        **apns_settings(token_apns),
        "APNS_AUTH": "token",
        "APNS_KEY_FILE": str(auth_key[0]),
        "APNS_KEY_ID": KEY_ID,
    }
    app = create_app(app_config(dev_chain, database_url, **settings))
    app.instance_path = str(tmp_path)
    state = app.extensions["passes"]
    join_test_transaction(state, connection)
    yield app
    service = app.extensions.get("passes_apple_push")
    if service is not None:
        service.close()


def test_token_authentication_pushes_with_one_cached_jwt(
    token_app: Flask, token_apns: FakeAPNs, db_session: Session
) -> None:
    program = make_program(db_session)
    cards = [make_card(db_session, program) for _ in range(3)]
    tokens = [uuid.uuid4().hex * 2 for _ in cards]
    for index, card in enumerate(cards):
        register(db_session, f"device-{index}", tokens[index], card.id)
        adjust(db_session, card, points=1, reason="test", actor="test")
    db_session.commit()
    service = push_service(token_app)
    assert service is not None
    report = service.run_once()
    assert report is not None and report.delivered == 3 and report.stopped is None
    adjust(db_session, cards[0], points=1, reason="test", actor="test")
    db_session.commit()
    assert service.run_once() is not None
    assert sorted(token_apns.delivered()) == sorted([*tokens, tokens[0]])
    assert token_apns.distinct_tokens == 1  # the JWT is reused, not re-signed per run
    assert all(push.headers["authorization"].startswith("bearer ") for push in token_apns.pushes)


def test_a_token_from_another_key_id_stops_sending(
    token_app: Flask, token_apns: FakeAPNs, db_session: Session
) -> None:
    token_app.config["APNS_KEY_ID"] = "WRONGKEYID"
    program = make_program(db_session)
    card = make_card(db_session, program)
    register(db_session, "device-1", uuid.uuid4().hex * 2, card.id)
    adjust(db_session, card, points=1, reason="test", actor="test")
    db_session.commit()
    service = push_service(token_app)
    assert service is not None
    report = service.run_once()
    assert report is not None and report.stopped == "403 InvalidProviderToken"
    assert report.delivered == 0 and token_apns.delivered() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"APNS_AUTH": "password"}, "APNS_AUTH must be 'certificate' or 'token'"),
        ({"APNS_AUTH": "token"}, "APNS_AUTH=token needs APNS_KEY_FILE and APNS_KEY_ID"),
        ({"APNS_AUTH": "token", "APNS_KEY_FILE": "k.p8"}, "needs APNS_KEY_FILE and APNS_KEY_ID"),
    ],
)
def test_unworkable_apns_settings_name_the_setting(
    app: Flask, overrides: dict[str, str], message: str
) -> None:
    config = {**app.config, **overrides}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        apns_client_factory(config, app.extensions["passes"].apple)


def test_the_endpoint_must_be_https() -> None:
    with pytest.raises(ValueError, match="APNS_ENDPOINT must be an https URL"):
        ApnsClient("pass.x", tls_context(ca_file=None), endpoint="http://127.0.0.1:8443")
