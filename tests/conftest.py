"""Shared fixtures. Database tests run once on SQLite and once on a throw-away PostgreSQL cluster;
each test runs inside a transaction that is rolled back afterwards (as in PyPI's Warehouse)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from passes import create_app
from passes.db import make_engine, make_sessionmaker
from passes.migrate import upgrade
from passes.state import AppState
from passes.wallet.apple.certificates import SigningMaterial, load_dev_chain_material
from passes.wallet.apple.devcerts import DevChain, create_dev_chain
from postgres import Cluster, start_cluster
from support import (
    PASS_TYPE_IDENTIFIER,
    TEAM_IDENTIFIER,
    Inbox,
    app_config,
    free_port,
    join_test_transaction,
)

ENGINES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=(*ENGINES, "all"),
        default=os.environ.get("PASSES_TEST_ENGINE", "all"),
        help="database engine(s) for database tests (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--engine")
        engines = ENGINES if chosen == "all" else (chosen,)
        metafunc.parametrize("engine_name", engines, scope="session")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster | None]:
    """One cluster for the whole session, started only if a PostgreSQL test runs."""
    if os.environ.get("PASSES_TEST_POSTGRES_URL"):
        yield None
        return
    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        message = f"{exc}: install Debian's postgresql package (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def database_url(
    engine_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """A migrated, empty database of the requested engine."""
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'loyalpass.db'}"
    external = os.environ.get("PASSES_TEST_POSTGRES_URL")
    if external:
        return external
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    return cluster.url(cluster.create_database("loyalpass_test"))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection in an outer transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def db_session(connection: Connection) -> Iterator[Session]:
    """A session whose commits only release savepoints inside the test's transaction."""
    session = make_sessionmaker(connection)(join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    """A development certificate chain shared by the session (key generation is slow)."""
    return create_dev_chain(
        tmp_path_factory.mktemp("certs"),
        pass_type_identifier=PASS_TYPE_IDENTIFIER,
        team_identifier=TEAM_IDENTIFIER,
    )


@pytest.fixture
def app(
    dev_chain: DevChain, database_url: str, connection: Connection, tmp_path: Path
) -> Iterator[Flask]:
    """The app, its sessions bound to the test's rolled-back transaction."""
    app = create_app(app_config(dev_chain, database_url))
    app.instance_path = str(tmp_path)
    state: AppState = app.extensions["passes"]
    join_test_transaction(state, connection)
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def signing_material(dev_chain: DevChain) -> SigningMaterial:
    return load_dev_chain_material(dev_chain)


@pytest.fixture(scope="session")
def openssl() -> str:
    """The openssl binary: signatures are checked by the real tool, as Apple's docs do."""
    path = shutil.which("openssl")
    if path is None:
        message = "the openssl command-line tool is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on loopback: (port, inbox)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
