"""Database plumbing: engine set-up per dialect, the declarative base and UTC-aware timestamps.

Plain SQLAlchemy (no Flask extension) so the domain packages can use sessions without Flask.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
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
    """An engine for ``url`` with dialect-appropriate pooling and connection settings."""
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
