"""Request-scoped access to the shared state: one database session per request."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from passes.db import DirectConnection
from passes.state import AppState


def app_state() -> AppState:
    """The per-process objects built by ``create_app``."""
    state: AppState = current_app.extensions["passes"]
    return state


def db() -> Session:
    """This request's session; closed (and rolled back if uncommitted) at teardown."""
    session: Session | None = g.get("_db_session")
    if session is None:
        session = app_state().sessionmaker()
        g._db_session = session
    return session


def db_connection() -> DirectConnection:
    """This request's direct connection, for the till's hot path, which needs neither the ORM
    nor a transaction around its reads (see ``DirectConnection``). Closed at teardown; anything
    uncommitted is rolled back."""
    direct: DirectConnection | None = g.get("_db_direct")
    if direct is None:
        direct = app_state().direct_connection()
        g._db_direct = direct
    return direct


def read_connection() -> Session | Connection:
    """Where a request that only reads, a statement at a time, reads: on PostgreSQL this thread's
    autocommit connection (no pool checkout, no BEGIN or ROLLBACK round trips, prepared
    statements kept); otherwise (SQLite; the tests' shared transaction) the request's session."""
    state = app_state()
    if state.thread_connections is not None and state.connect is None:
        return db_connection().connection()
    return db()


def close_db(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("_db_session", None)
    if session is not None:
        session.close()
    direct: DirectConnection | None = g.pop("_db_direct", None)
    if direct is not None:
        direct.close()
