"""The "Add to Google Wallet" link: ``https://pay.google.com/gp/v/save/<JWT>``.

The JWT is signed RS256 with the service account's key. Preferred is the "skinny" form: class and
object were inserted over REST first, and the JWT names only their ids, which keeps it far below
the 1,800 characters a link can safely carry. When the API is unreachable the full object goes
into the JWT instead (Google inserts it when the member saves).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

__all__ = ["MAX_JWT_LENGTH", "SAVE_URL", "JwtTooLong", "ServiceAccount", "save_jwt", "save_url"]

SAVE_URL = "https://pay.google.com/gp/v/save/"
MAX_JWT_LENGTH = 1800


class _Utf8Encoder(json.JSONEncoder):
    """UTF-8 instead of ``\\uXXXX`` escapes: a Cyrillic letter costs 2 bytes, not 6."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "ensure_ascii": False})


class JwtTooLong(ValueError):
    """The JWT would not fit into a link."""


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a service-account key file the save link needs."""

    email: str
    private_key: str = field(repr=False)  # PEM; never in a repr, a log or a traceback
    key_id: str | None = None

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ServiceAccount:
        try:
            return cls(
                email=str(info["client_email"]),
                private_key=str(info["private_key"]),
                key_id=str(info["private_key_id"]) if info.get("private_key_id") else None,
            )
        except KeyError as exc:
            raise ValueError(f"the service-account file has no {exc.args[0]!r}") from exc


def save_jwt(
    account: ServiceAccount,
    *,
    objects: Sequence[dict[str, Any]],
    classes: Sequence[dict[str, Any]] = (),
    origins: Sequence[str] = (),
    now: float | None = None,
) -> str:
    """A signed ``savetowallet`` JWT carrying ``objects`` (``{"id", "classId"}`` when they exist
    already, else full bodies) and, optionally, classes. Raises :class:`JwtTooLong` beyond
    :data:`MAX_JWT_LENGTH` characters."""
    payload: dict[str, Any] = {"loyaltyObjects": list(objects)}
    if classes:
        payload["loyaltyClasses"] = list(classes)
    claims: dict[str, Any] = {
        "iss": account.email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time() if now is None else now),
        "origins": list(origins),
        "payload": payload,
    }
    headers = {"kid": account.key_id} if account.key_id else None
    token = jwt.encode(
        claims, account.private_key, algorithm="RS256", headers=headers, json_encoder=_Utf8Encoder
    )
    if len(token) > MAX_JWT_LENGTH:
        raise JwtTooLong(f"the save JWT is {len(token)} characters (at most {MAX_JWT_LENGTH})")
    return token


def save_url(token: str) -> str:
    return SAVE_URL + token
