"""Helpers shared by tests (kept out of conftest.py so they can be imported unambiguously)."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from flask.testing import FlaskClient

from passes.wallet.apple.devcerts import DevChain
from passes.wallet.apple.pass_json import PassIdentity
from passes.wallet.view import Branding, CardView, Location, Offer

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


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form at ``path``, as a browser would submit it."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    match = CSRF_PATTERN.search(response.get_data(as_text=True))
    assert match, "no CSRF token in the form"
    return match.group(1)


def make_view(**overrides: object) -> CardView:
    branding = Branding(
        program_key="zerno",
        design_version=1,
        organization_name="Кофейня «Зерно»",
        program_name="Зерно",
        description="Карта лояльности кофейни «Зерно»",
        background_color="#3b2a20",
        foreground_color="#ffffff",
        label_color="#e8d5b5",
        logo_image=None,
        icon_image=None,
        strip_image=None,
        points_label="Баллы",
        terms="1 балл за каждые 10 ₽.",
        support_email="hello@zerno.example",
        support_phone="+7 495 000-00-00",
        website=None,
        locations=tuple(Location(55.75 + i / 100, 37.6, f"Store {i}") for i in range(12)),
    )
    view = CardView(
        branding=branding,
        serial_number="s3rial-Number-Random-24c",
        authentication_token="a" * 43,
        card_number="7701234567890128",
        display_number="7701 2345 6789 0128",
        barcode_payload="7701234567890128.AbCdEfGh",
        member_name="Анна Смирнова",
        points_balance=1234,
        tier_name="Гурман",
        offers=(Offer("coffee", "Free coffee", "Every 10th coffee is on us"),),
        member_since=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        updated_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
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
