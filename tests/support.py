"""Helpers shared by tests (kept out of conftest.py so they can be imported unambiguously)."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from flask.testing import FlaskClient
from sqlalchemy import Connection

from passes.db import DirectConnection
from passes.state import AppState
from passes.wallet.apple.devcerts import DevChain
from passes.wallet.apple.pass_json import PassIdentity
from passes.wallet.sample import SAMPLE_BRANDING, sample_card_view
from passes.wallet.view import CardView, Location, Offer

PASS_TYPE_IDENTIFIER = "pass.dev.loyalpass.test"
TEAM_IDENTIFIER = "LPTEST0001"


def app_config(dev_chain: DevChain, database_url: str, **overrides: Any) -> dict[str, Any]:
    """Test settings: the dev chain, an https public URL and a fixed secret."""
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": database_url,
        "PUBLIC_URL": "https://loyalpass.test",
        "APPLE_PASS_TYPE_IDENTIFIER": dev_chain.pass_type_identifier,
        "APPLE_TEAM_IDENTIFIER": dev_chain.team_identifier,
        "APPLE_CERTIFICATE": str(dev_chain.certificate),
        "APPLE_PRIVATE_KEY": str(dev_chain.private_key),
        "APPLE_WWDR_CERTIFICATE": str(dev_chain.wwdr_certificate),
    }
    config.update(overrides)
    return config


def apns_settings(apns: Any) -> dict[str, object]:
    """Settings that point the app's APNs client at a fake server (trusted by its CA file)."""
    return {"APNS_ENDPOINT": apns.url, "APNS_CA_FILE": str(apns.ca_file), "PUSH_BATCH_SIZE": 100}


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form at ``path``, as a browser would submit it."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    match = CSRF_PATTERN.search(response.get_data(as_text=True))
    assert match, "no CSRF token in the form"
    return match.group(1)


def make_view(**overrides: object) -> CardView:
    """The sample card with twelve stores (more than Wallet shows) and a fixed offer."""
    branding = replace(
        SAMPLE_BRANDING,
        terms="1 балл за каждые 10 ₽.",
        website=None,
        locations=tuple(Location(55.75 + i / 100, 37.6, f"Store {i}") for i in range(12)),
    )
    view = sample_card_view(
        branding,
        serial_number="s3rial-Number-Random-24c",
        authentication_token="a" * 43,
        offers=(Offer("coffee", "Free coffee", "Every 10th coffee is on us"),),
    )
    return replace(view, **overrides)  # type: ignore[arg-type]


IDENTITY = PassIdentity("pass.dev.loyalpass.test", "LPTEST0001", "https://loyalpass.test/passkit")


def free_port() -> int:
    """A loopback port nothing listens on (for "server unreachable" tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def google_settings(fake: Any, key_file: Any) -> dict[str, object]:
    """Settings that point the app's Google Wallet client at a fake API (its token endpoint is
    named in the service-account file, as Google's own files name theirs)."""
    fake.write_service_account(key_file)
    return {
        "GOOGLE_ISSUER_ID": fake.issuer_id,
        "GOOGLE_SERVICE_ACCOUNT_FILE": str(key_file),
        "GOOGLE_API_ENDPOINT": fake.base_url,
        "GOOGLE_CALLBACK_KEYS_URL": fake.callback_keys_url,
        "GOOGLE_SYNC_THREADS": 1,  # sessions share the test's one connection
        "GOOGLE_RATE_LIMIT": 1000,
    }


def join_test_transaction(state: AppState, connection: Connection) -> None:
    """Make the app's sessions and direct connections work inside the test's transaction (in
    savepoints), which is rolled back after the test."""
    state.engine.dispose()
    state.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    state.connect = lambda: DirectConnection.joined(connection)
