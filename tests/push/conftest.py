"""Fixtures for the push tests: a fake APNs on loopback and an app configured to push to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_apns import FakeAPNs
from flask import Flask
from sqlalchemy import Connection

from passes import create_app
from passes.state import AppState
from passes.wallet.apple.devcerts import DevChain
from support import apns_settings, app_config, join_test_transaction


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
