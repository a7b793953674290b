"""API keys: ``lp_<prefix>_<secret>``. The prefix finds the row; the secret's SHA-256 is compared
in constant time; only the hash is stored and the whole key is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.driver_sql import DriverStatement
from passes.loyalty.models import ApiKey, Program, Store
from passes.text import N_, Text

ROLES = ("store", "partner", "admin")


def secret_hash(secret: str) -> str:
    """How a key's secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    record: ApiKey
    token: str  # shown once; never stored


def issue_key(
    session: Session,
    program: Program,
    *,
    role: str,
    name: str,
    store: Store | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create a key; the caller commits and shows ``token`` to the person exactly once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "store" and store is None:
        raise ValueError("a store key needs a store")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        program_id=program.id,
        store_id=store.id if store else None,
        role=role,
        name=name,
        prefix=prefix,
        secret_hash=secret_hash(secret),
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    return IssuedKey(record, f"lp_{prefix}_{secret}")


class KeyRejected(Exception):
    """Why a presented key does not authenticate (the detail is safe to show): ``text`` says it
    for a page to translate, ``str()`` in English (the till API's problem detail)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True)
class Caller:
    """Who is asking: the identity of an authenticated API key, as plain values.

    Every till request needs it, so it is read with one statement on the driver's cursor rather
    than as an ORM object with its store relationship."""

    id: int
    program_id: int
    store_id: int | None
    store_name: str | None
    role: str
    name: str


CALLER_COLUMNS = (
    ApiKey.id,
    ApiKey.program_id,
    ApiKey.store_id,
    Store.name.label("store_name"),
    ApiKey.role,
    ApiKey.name,
    ApiKey.secret_hash,
    ApiKey.revoked_at,
    ApiKey.expires_at,
)
# A key by its prefix, for :func:`verify`; other reads may add columns after CALLER_COLUMNS.
BY_PREFIX = (
    select(*CALLER_COLUMNS)
    .outerjoin(Store, Store.id == ApiKey.store_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
_BY_PREFIX = DriverStatement(BY_PREFIX)
_BY_ID = DriverStatement(
    select(*CALLER_COLUMNS)
    .outerjoin(Store, Store.id == ApiKey.store_id)
    .where(ApiKey.id == bindparam("key_id"))
)
_SECRET_HASH, _REVOKED_AT, _EXPIRES_AT = 6, 7, 8  # positions in CALLER_COLUMNS


def _caller(row: tuple[Any, ...], now: datetime) -> Caller:
    if row[_REVOKED_AT] is not None:
        raise KeyRejected(Text(N_("the API key has been revoked")))
    expires_at = row[_EXPIRES_AT]
    if expires_at is not None and expires_at <= now:
        raise KeyRejected(
            Text(N_("the API key expired on %(when)s"), {"when": expires_at.isoformat()})
        )
    return Caller(*row[:6])


def split_token(token: str) -> tuple[str, str]:
    """(prefix, secret) of ``token``, or KeyRejected when it is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "lp" or not parts[1] or not parts[2]:
        raise KeyRejected(Text(N_("the API key is malformed (expected lp_<prefix>_<secret>)")))
    return parts[1], parts[2]


def verify(row: tuple[Any, ...] | None, secret: str, now: datetime | None = None) -> Caller:
    """The caller of ``row`` (read with BY_PREFIX; None when no key has the prefix) if
    ``secret`` is its secret, or KeyRejected. Unknown prefixes still cost a comparison."""
    expected = row[_SECRET_HASH] if row is not None else secret_hash("no such key")
    if not hmac.compare_digest(secret_hash(secret), expected) or row is None:
        raise KeyRejected(Text(N_("the API key is not valid")))
    return _caller(row, now or utcnow())


def authenticate(session: Session | Connection, token: str, now: datetime | None = None) -> Caller:
    """The caller ``token`` identifies, or KeyRejected."""
    prefix, secret = split_token(token)
    connection = session.connection() if isinstance(session, Session) else session
    return verify(_BY_PREFIX.first(connection, {"prefix": prefix}), secret, now)


def caller_by_id(session: Session | Connection, key_id: int, now: datetime | None = None) -> Caller:
    """The caller of a key already authenticated once (a signed-in staff session), re-checked:
    a key revoked or expired since then no longer counts."""
    connection = session.connection() if isinstance(session, Session) else session
    row = _BY_ID.first(connection, {"key_id": key_id})
    if row is None:
        raise KeyRejected(Text(N_("the API key no longer exists")))
    return _caller(row, now or utcnow())
