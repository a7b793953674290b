"""API keys: ``lp_<prefix>_<secret>``. The prefix finds the row; the secret's SHA-256 is compared
in constant time; only the hash is stored and the whole key is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from passes.db import utcnow
from passes.loyalty.models import ApiKey, Program, Store

ROLES = ("store", "partner", "admin")


def _hash(secret: str) -> str:
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
        secret_hash=_hash(secret),
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    return IssuedKey(record, f"lp_{prefix}_{secret}")


class KeyRejected(Exception):
    """Why a presented key does not authenticate (the detail is safe to show)."""


def authenticate(session: Session, token: str, now: datetime | None = None) -> ApiKey:
    """The key row for ``token``, or KeyRejected. Unknown prefixes still cost a comparison."""
    now = now or utcnow()
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "lp" or not parts[1] or not parts[2]:
        raise KeyRejected("the API key is malformed (expected lp_<prefix>_<secret>)")
    record = session.scalar(
        select(ApiKey).where(ApiKey.prefix == parts[1]).options(joinedload(ApiKey.store))
    )
    expected = record.secret_hash if record is not None else _hash("no such key")
    if not hmac.compare_digest(_hash(parts[2]), expected) or record is None:
        raise KeyRejected("the API key is not valid")
    if record.revoked_at is not None:
        raise KeyRejected("the API key has been revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise KeyRejected(f"the API key expired on {record.expires_at.isoformat()}")
    return record
