"""Database plumbing: engine set-up per dialect, the declarative base and UTC-aware timestamps.

Plain SQLAlchemy (no Flask extension) so the domain packages can use sessions without Flask.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, Transaction, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so Alembic migrations are portable."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to microseconds as both engines store."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (naive text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy own transactions on pysqlite (needed for SAVEPOINT) and set sane pragmas.

    pysqlite's own implicit BEGIN handling breaks savepoints; with ``isolation_level = None``
    SQLAlchemy emits BEGIN itself. Transactions begin IMMEDIATE: writers queue on the database lock
    (busy_timeout) instead of failing with SQLITE_BUSY when a read upgrades to a write, which
    serialises read-modify-write sequences such as "find the member, else insert". WAL keeps
    plain reads outside transactions concurrent.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with dialect-appropriate pooling and connection settings. Errors
    never carry the statement's parameters (members' data would reach logs and the console)."""
    kwargs = {"hide_parameters": True, **kwargs}
    if url.startswith("sqlite"):
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            options["poolclass"] = StaticPool
        options.update(kwargs)
        engine = create_engine(url, **options)
        _configure_sqlite(engine)
        return engine
    options = {"pool_size": 10, "max_overflow": 20}
    options.update(kwargs)
    engine = create_engine(url, **options)
    _ping_idle_connections(engine)
    return engine


IDLE_BEFORE_PING = 10.0  # seconds


def _ping_idle_connections(engine: Engine, idle: float = IDLE_BEFORE_PING) -> None:
    """Check a pooled connection before use only if it sat idle for ``idle`` seconds.

    Connections die while idle (a database restart, a firewall's idle timeout); a ping on
    checkout finds that and the pool quietly opens a new one. SQLAlchemy's ``pool_pre_ping``
    pings on every checkout: a round trip per request, a noticeable share of a till purchase or
    a PassKit 304. A connection returned moments ago is alive unless the server went down in
    between, and then SQLAlchemy's disconnect handling replaces the whole pool after that one
    failed request (which a till retries under the same Idempotency-Key).
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # A dead idle connection usually means a restart: the others are dead too. The pool
            # discards them all and the checkout is retried on a new connection.
            raise InvalidatePoolError(f"idle connection is gone: {exc}") from exc


def make_sessionmaker(bind: Any) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (views render after the commit)."""
    return sessionmaker(bind=bind, expire_on_commit=False)


def upsert_insert(dialect_name: str) -> Any:
    """The engine's own INSERT construct, which has ``on_conflict_do_update/nothing``: both of our
    engines support ON CONFLICT, with the same syntax, through their dialect's ``insert``."""
    return postgresql_insert if dialect_name == "postgresql" else sqlite_insert


class DirectConnection:
    """A plain connection for one request's hot path; it offers the three calls that request
    code makes of a Session (``connection``, ``commit``, ``rollback``), at a fraction of a
    Session's cost.

    Three modes: ``autocommit`` (PostgreSQL's per-thread connections: each statement commits on
    its own, no BEGIN or COMMIT round trips, for code whose every write is one statement);
    ``owned`` (a pooled connection whose transactions SQLAlchemy begins on first use: IMMEDIATE
    on SQLite, one writer at a time); ``joined`` (inside a transaction someone else owns, as the
    tests' rolled-back one, in a savepoint).
    """

    def __init__(
        self, connection: Connection, mode: str, savepoint: Transaction | None = None
    ) -> None:
        self._connection = connection
        self._mode = mode
        self._savepoint = savepoint

    @classmethod
    def open(cls, engine: Engine) -> DirectConnection:
        return cls(engine.connect(), "owned")

    @classmethod
    def joined(cls, connection: Connection) -> DirectConnection:
        return cls(connection, "joined", connection.begin_nested())

    def connection(self) -> Connection:
        return self._connection

    def serialized(self) -> AbstractContextManager[Any]:
        """Run the enclosed statements in one transaction, so that a row lock taken there holds
        until its end. Only autocommit connections need one; the others already are in one."""
        if self._mode != "autocommit":
            return nullcontext()
        driver = self._connection.connection.driver_connection
        assert driver is not None
        transaction: AbstractContextManager[Any] = driver.transaction()  # BEGIN ... COMMIT
        return transaction

    def commit(self) -> None:
        if self._mode == "owned":
            self._connection.commit()
        elif self._mode == "joined" and self._savepoint is not None and self._savepoint.is_active:
            self._savepoint.commit()
            self._savepoint = self._connection.begin_nested()  # for whatever follows

    def rollback(self) -> None:
        if self._mode == "owned":
            self._connection.rollback()
        elif self._mode == "joined" and self._savepoint is not None and self._savepoint.is_active:
            self._savepoint.rollback()
            self._savepoint = self._connection.begin_nested()
        elif self._connection.in_transaction():
            self._connection.rollback()  # autocommit: only SQLAlchemy's bookkeeping to end

    def close(self) -> None:
        if self._mode == "joined":
            if self._savepoint is not None and self._savepoint.is_active:
                self._savepoint.rollback()
        elif self._mode == "owned":
            self._connection.close()  # rolls back whatever was not committed
        else:
            self.rollback()


class ThreadConnections:
    """One autocommit connection per thread, kept across requests (PostgreSQL).

    A hot-path request then costs no pool checkout, check-in or isolation-level switch: the
    thread's own connection is already open and in autocommit mode. Server threads are few and
    long-lived (gunicorn's gthread, waitress), so connections are as many as threads, on an
    engine of their own. As with the pool, a connection idle for ``idle`` seconds is pinged
    before use and replaced if it died; one that fails is invalidated and reconnects on its next
    use, and after a lost connection (the engine's pool replaced) every thread reconnects.
    """

    def __init__(self, engine: Engine, idle: float = IDLE_BEFORE_PING) -> None:
        self._url = engine.url
        self._idle = idle
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._engine = create_engine(self._url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._local = threading.local()
        self._all: weakref.WeakSet[Connection] = weakref.WeakSet()

    def request(self) -> DirectConnection:
        """This thread's connection, for one request (closing it keeps it open)."""
        if os.getpid() != self._pid:  # a forked child must not use, or close, its parent's
            self._inherited = (self._engine, self._local, self._all)  # kept, never closed here
            self._start()
        local = self._local
        connection: Connection | None = getattr(local, "connection", None)
        now = time.monotonic()
        if connection is not None and getattr(local, "pool", None) is not self._engine.pool:
            if not connection.closed:  # from before a lost connection replaced the pool
                connection.invalidate()
            connection = None
        if connection is not None and connection.closed:
            connection = None
        if connection is None:
            connection = local.connection = self._engine.connect()
            local.pool = self._engine.pool
            self._all.add(connection)
            # Closed once the thread is gone, rather than left to the garbage collector.
            weakref.finalize(threading.current_thread(), connection.close)
        elif now - local.used >= self._idle and not connection.invalidated:
            try:
                dbapi_connection = connection.connection.dbapi_connection
                assert dbapi_connection is not None
                self._engine.dialect.do_ping(dbapi_connection)
            except self._engine.dialect.loaded_dbapi.Error as exc:
                connection.invalidate(exc)  # the next statement reconnects
        local.used = now
        return DirectConnection(connection, "autocommit")

    def dispose(self) -> None:
        """Close every thread's connection (for an app that is done, as in the tests)."""
        for connection in list(self._all):
            connection.close()
        self._engine.dispose()
