"""Helpers shared by tests (kept out of conftest.py so they can be imported unambiguously)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from passes.wallet.apple.devcerts import DevChain

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
