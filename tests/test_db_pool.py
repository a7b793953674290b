"""Pooled PostgreSQL connections are checked before use only after sitting idle: a connection the
server dropped meanwhile is replaced without the request noticing, and a busy pool pays no
round trip per checkout. The per-thread connections of the hot paths behave the same, and a
connection lost mid-request replaces every thread's."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

import passes.db
from passes.db import IDLE_BEFORE_PING, ThreadConnections, make_engine
from passes.driver_sql import DriverStatement
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


# --------------------------------------------------------------------------- thread connections

_PID = DriverStatement(select(func.pg_backend_pid()))


def thread_pid(connections: ThreadConnections) -> int:
    row = _PID.first(connections.request().connection(), {})
    assert row is not None
    return int(row[0])


def terminate(cluster: Cluster, pid: int) -> None:
    killer = create_engine(cluster.url("pool_test"), poolclass=NullPool)
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


def test_a_thread_keeps_its_connection_and_replaces_it_after_idling_dead(
    pg_engine: Engine, postgres_cluster: Cluster
) -> None:
    connections = ThreadConnections(pg_engine, idle=0.0)  # ping on every request
    try:
        first = thread_pid(connections)
        assert thread_pid(connections) == first  # kept across requests
        other: list[int] = []
        worker = threading.Thread(target=lambda: other.append(thread_pid(connections)))
        worker.start()
        worker.join()
        assert other[0] != first  # one per thread
        terminate(postgres_cluster, first)
        assert thread_pid(connections) != first  # pinged, found dead, replaced: no error
    finally:
        connections.dispose()


def test_a_connection_lost_mid_request_fails_once_then_every_thread_reconnects(
    pg_engine: Engine, postgres_cluster: Cluster
) -> None:
    connections = ThreadConnections(pg_engine)  # no ping: the next statement finds out
    try:
        first = thread_pid(connections)
        pids: dict[str, int] = {}
        started, lost = threading.Event(), threading.Event()

        def other_thread() -> None:
            pids["before"] = thread_pid(connections)
            started.set()
            lost.wait(timeout=10)
            pids["after"] = thread_pid(connections)

        worker = threading.Thread(target=other_thread)
        worker.start()
        started.wait(timeout=10)
        terminate(postgres_cluster, first)
        with pytest.raises(OperationalError) as failure:
            thread_pid(connections)
        assert failure.value.connection_invalidated
        lost.set()
        worker.join()
        assert thread_pid(connections) not in (first, pids["before"])
        assert pids["after"] != pids["before"]  # the other thread's connection was replaced too
        connection = connections.request().connection().connection.driver_connection
        assert connection is not None
        assert connection.info.transaction_status == TransactionStatus.IDLE
    finally:
        connections.dispose()
