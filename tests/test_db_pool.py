"""Pooled PostgreSQL connections are checked before use only after sitting idle: a connection the
server dropped meanwhile is replaced without the request noticing, and a busy pool pays no
round trip per checkout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

import passes.db
from passes.db import IDLE_BEFORE_PING, make_engine
from postgres import Cluster


@pytest.fixture
def pg_engine(postgres_cluster: Cluster | None) -> Iterator[Engine]:
    if postgres_cluster is None:
        pytest.skip("needs PostgreSQL")
    engine = make_engine(postgres_cluster.url(postgres_cluster.create_database("pool_test")))
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_an_idle_connection_the_server_dropped_is_replaced_quietly(
    pg_engine: Engine, postgres_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(pg_engine)
    killer = create_engine(postgres_cluster.url("pool_test"), poolclass=NullPool)
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    later = passes.db.time.monotonic() + IDLE_BEFORE_PING + 1
    monkeypatch.setattr(passes.db.time, "monotonic", lambda: later)
    assert backend_pid(pg_engine) != first  # pinged, found dead, replaced: no error


def test_a_connection_returned_moments_ago_is_used_without_a_ping(pg_engine: Engine) -> None:
    backend_pid(pg_engine)  # opens the pooled connection
    pings: list[object] = []
    real_ping = pg_engine.dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return bool(real_ping(dbapi_connection))

    pg_engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
    for _ in range(5):
        backend_pid(pg_engine)
    assert pings == []
