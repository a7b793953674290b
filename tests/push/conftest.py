"""Fixtures for the push tests: a fake APNs and a fake Google Wallet on loopback, and apps
configured to use them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_apns import FakeAPNs
from fake_google_wallet import FakeGoogleWallet
from flask import Flask
from sqlalchemy import Connection

from passes import create_app
from passes.jobs import google_service
from passes.state import AppState
from passes.wallet.apple.devcerts import DevChain
from support import apns_settings, app_config, google_settings, join_test_transaction


@pytest.fixture
def apns(dev_chain: DevChain, tmp_path: Path) -> Iterator[FakeAPNs]:
    with FakeAPNs(
        tmp_path / "apns",
        client_ca_files=[dev_chain.root_certificate, dev_chain.wwdr_certificate],
    ) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def push_app(
    dev_chain: DevChain,
    database_url: str,
    connection: Connection,
    tmp_path: Path,
    apns: FakeAPNs,
) -> Iterator[Flask]:
    """The app pushing to the fake APNs, its sessions in the test's rolled-back transaction."""
    app = create_app(app_config(dev_chain, database_url, **apns_settings(apns)))
    app.instance_path = str(tmp_path)
    state: AppState = app.extensions["passes"]
    join_test_transaction(state, connection)
    yield app
    service = app.extensions.get("passes_apple_push")
    if service is not None:
        service.close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fails the test if anything (google-auth included) looks up a host that is not loopback."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield looked_up
    assert set(looked_up) <= {"127.0.0.1", "localhost", "::1"}, looked_up


@pytest.fixture
def google() -> Iterator[FakeGoogleWallet]:
    with FakeGoogleWallet() as fake:
        yield fake
        assert fake.errors == []  # nothing we sent broke Google's schema


@pytest.fixture
def google_app(
    dev_chain: DevChain,
    database_url: str,
    connection: Connection,
    tmp_path: Path,
    google: FakeGoogleWallet,
) -> Iterator[Flask]:
    settings = google_settings(google, tmp_path / "service-account.json")
    app = create_app(app_config(dev_chain, database_url, **settings))
    app.instance_path = str(tmp_path)
    state: AppState = app.extensions["passes"]
    join_test_transaction(state, connection)
    yield app
    service = google_service(app)
    if service is not None:
        service.close()
