"""Google Wallet's save and delete callbacks: checking that one really comes from Google.

When a member saves a card to Google Wallet, or deletes it, Google POSTs a message to the
class's ``callbackOptions.url``. The message is signed with Google's ``ECv2SigningOnly`` scheme
(the one Google Pay tokens use, sender ``GooglePayPasses``, recipient our issuer id):

* Google's root signing keys (fetched from a published URL, see :mod:`callback_keys`) sign an
  intermediate key, which carries its own expiry;
* the intermediate key signs the message, which names class, object, event and a nonce, and
  expires (``expTimeMillis``).

Every signature is ECDSA P-256 with SHA-256 (DER) over length-prefixed fields: each field is
its UTF-8 bytes after their length as four little-endian bytes. Anything that does not check out
is refused with the reason, so a forged or replayed message changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

__all__ = [
    "PROTOCOL_VERSION",
    "SENDER_ID",
    "CallbackRejected",
    "RootKey",
    "UnknownRootKey",
    "WalletEvent",
    "length_prefixed",
    "parse_root_keys",
    "verify_callback",
]

SENDER_ID = "GooglePayPasses"
PROTOCOL_VERSION = "ECv2SigningOnly"
#: A callback is a few hundred bytes; anything much larger is not one.
MAX_BODY = 16 * 1024
MAX_NONCE = 200
EVENT_TYPES = ("save", "del")

_SIGNATURE = ec.ECDSA(hashes.SHA256())
_MILLIS = re.compile(r"[0-9]{1,15}")  # up to the year 33658: datetime's range
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class CallbackRejected(ValueError):
    """The request is not a valid callback from Google; the message says why."""


class UnknownRootKey(CallbackRejected):
    """No root key we hold signed the intermediate key: Google may have rotated its keys."""


@dataclass(frozen=True)
class RootKey:
    """One of Google's root signing keys, valid until ``expires_at``."""

    public_key: ec.EllipticCurvePublicKey
    expires_at: datetime


@dataclass(frozen=True)
class WalletEvent:
    """What a verified callback says: the member saved (``save``) or deleted (``del``) an
    object. ``expires_at`` also orders events: Google stamps each message when it sends it."""

    class_id: str
    object_id: str
    event_type: Literal["save", "del"]
    nonce: str
    expires_at: datetime

    @property
    def saved(self) -> bool:
        return self.event_type == "save"


def length_prefixed(*fields: str) -> bytes:
    """The signed bytes: each field's UTF-8 after its byte length (4 bytes, little-endian)."""
    out = bytearray()
    for value in fields:
        data = value.encode("utf-8")
        out += struct.pack("<I", len(data))
        out += data
    return bytes(out)


def _millis(value: Any, what: str) -> datetime:
    """Google writes instants as milliseconds since the epoch, in a string (or a number)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CallbackRejected(f"{what} is not a time in milliseconds")
    text = str(value)
    if not _MILLIS.fullmatch(text):
        raise CallbackRejected(f"{what} is not a time in milliseconds")
    return datetime.fromtimestamp(int(text) / 1000, UTC)


def _public_key(value: Any, what: str) -> ec.EllipticCurvePublicKey:
    """A base64 X.509 SubjectPublicKeyInfo holding a P-256 key."""
    if not isinstance(value, str):
        raise CallbackRejected(f"{what} is not a base64 string")
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CallbackRejected(f"{what} is not a public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackRejected(f"{what} is not a P-256 key")
    return key


def _signature(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _BASE64.fullmatch(value):
        raise CallbackRejected(f"{what} is not base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise CallbackRejected(f"{what} is not base64") from exc


def _signatures(values: list[Any]) -> list[bytes]:
    """The intermediate key's signatures that are base64 at all (one bad entry does not hide
    a good one beside it)."""
    decoded = []
    for value in values:
        try:
            decoded.append(_signature(value, "an intermediate key signature"))
        except CallbackRejected:
            continue
    return decoded


def _verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, _SIGNATURE)
    except InvalidSignature:
        return False
    return True


def parse_root_keys(document: bytes | str, *, now: datetime) -> list[RootKey]:
    """Google's published key list: the unexpired ``ECv2SigningOnly`` keys. A key without an
    expiry is skipped, as Google's own library does for this protocol. ValueError if the
    document is not such a list at all."""
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise ValueError(f"the root key list is not JSON: {exc}") from exc
    entries = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        raise ValueError('the root key list has no "keys" array')
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("protocolVersion") != PROTOCOL_VERSION:
            continue
        if "keyExpiration" not in entry:
            continue
        try:
            expires_at = _millis(entry["keyExpiration"], "keyExpiration")
            public_key = _public_key(entry.get("keyValue"), "keyValue")
        except CallbackRejected:
            continue
        if expires_at > now:
            keys.append(RootKey(public_key, expires_at))
    return keys


def _object(value: Any, what: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(fields):
        raise CallbackRejected(f"{what} must hold exactly {', '.join(fields)}")
    return value


def _json(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, str):
        raise CallbackRejected(f"{what} is not a string of JSON")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise CallbackRejected(f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise CallbackRejected(f"{what} is not a JSON object")
    return parsed


def _intermediate_key(
    envelope: dict[str, Any], root_keys: list[RootKey], now: datetime
) -> ec.EllipticCurvePublicKey:
    """The intermediate key, once a current root key is found to have signed it."""
    intermediate = _object(
        envelope["intermediateSigningKey"], "intermediateSigningKey", ("signedKey", "signatures")
    )
    signed_key = intermediate["signedKey"]
    signatures = intermediate["signatures"]
    if not isinstance(signed_key, str):
        raise CallbackRejected("intermediateSigningKey.signedKey is not a string")
    if not isinstance(signatures, list) or not signatures or len(signatures) > 8:
        raise CallbackRejected("intermediateSigningKey.signatures is not a list of signatures")
    signed = length_prefixed(SENDER_ID, PROTOCOL_VERSION, signed_key)
    current = [root.public_key for root in root_keys if root.expires_at > now]
    if not current:
        raise UnknownRootKey("no current Google root signing key is known")
    if not any(
        _verifies(root, signature, signed)
        for signature in _signatures(signatures)
        for root in current
    ):
        raise UnknownRootKey("no Google root signing key signed the intermediate key")
    key = _json(signed_key, "intermediateSigningKey.signedKey")
    if "keyValue" not in key or "keyExpiration" not in key:
        raise CallbackRejected("the intermediate key lacks keyValue or keyExpiration")
    if _millis(key["keyExpiration"], "the intermediate key's keyExpiration") <= now:
        raise CallbackRejected("the intermediate signing key has expired")
    return _public_key(key["keyValue"], "the intermediate key's keyValue")


def verify_callback(
    body: bytes, *, issuer_id: str, root_keys: list[RootKey], now: datetime
) -> WalletEvent:
    """The event a callback carries, once every signature and expiry checks out; raises
    :class:`CallbackRejected` naming the first thing that does not."""
    if len(body) > MAX_BODY:
        raise CallbackRejected(f"the body is over {MAX_BODY} bytes")
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise CallbackRejected("the body is not JSON") from exc
    envelope = _object(
        parsed,
        "the body",
        ("protocolVersion", "intermediateSigningKey", "signature", "signedMessage"),
    )
    if envelope["protocolVersion"] != PROTOCOL_VERSION:
        raise CallbackRejected(f"protocolVersion is not {PROTOCOL_VERSION}")
    intermediate = _intermediate_key(envelope, root_keys, now)
    signed_message = envelope["signedMessage"]
    if not isinstance(signed_message, str):
        raise CallbackRejected("signedMessage is not a string")
    signed = length_prefixed(SENDER_ID, issuer_id, PROTOCOL_VERSION, signed_message)
    if not _verifies(intermediate, _signature(envelope["signature"], "signature"), signed):
        raise CallbackRejected("the message signature does not verify for this issuer")
    message = _json(signed_message, "signedMessage")
    expires_at = _millis(message.get("expTimeMillis"), "expTimeMillis")
    if expires_at <= now:
        raise CallbackRejected("the message has expired")
    event_type = message.get("eventType")
    if event_type not in EVENT_TYPES:
        raise CallbackRejected(f"eventType {str(event_type)[:20]!r} is neither save nor del")
    nonce = message.get("nonce")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE:
        raise CallbackRejected("the message has no usable nonce")
    prefix = f"{issuer_id}."
    class_id, object_id = message.get("classId"), message.get("objectId")
    for name, value in (("classId", class_id), ("objectId", object_id)):
        if not isinstance(value, str) or not value.startswith(prefix) or len(value) > 200:
            raise CallbackRejected(f"{name} is not an id of this issuer")
    assert isinstance(class_id, str) and isinstance(object_id, str)
    return WalletEvent(
        class_id=class_id,
        object_id=object_id,
        event_type="save" if event_type == "save" else "del",
        nonce=nonce,
        expires_at=expires_at,
    )
