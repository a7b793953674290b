"""Database plumbing: engine set-up per dialect, the declarative base and UTC-aware timestamps.

Plain SQLAlchemy (no Flask extension) so the domain packages can use sessions without Flask.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
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
    options = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    options.update(kwargs)
    return create_engine(url, **options)


def make_sessionmaker(bind: Any) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (views render after the commit)."""
    return sessionmaker(bind=bind, expire_on_commit=False)


def upsert_insert(dialect_name: str) -> Any:
    """The engine's own INSERT construct, which has ``on_conflict_do_update/nothing``: both of our
    engines support ON CONFLICT, with the same syntax, through their dialect's ``insert``."""
    return postgresql_insert if dialect_name == "postgresql" else sqlite_insert
