"""The QR payload: the card number plus a short MAC keyed by a server secret.

A till can then tell a real scan of a pass (MAC valid) from a number someone typed or guessed; typed
numbers still work for lookups but are marked as such.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from passes.loyalty.card_numbers import is_valid_card_number, normalize_typed_number

SEPARATOR = "."
MAC_BYTES = 6  # 48 bits: unguessable at till speed, short enough for a small, robust QR code.


def derive_barcode_key(secret_key: str | bytes) -> bytes:
    """A key for barcode MACs only: a MAC must reveal nothing about SECRET_KEY's other uses."""
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(secret, b"loyalpass barcode mac v1", hashlib.sha256).digest()


def _mac(key: bytes, card_number: str) -> str:
    digest = hmac.new(key, card_number.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def barcode_payload(key: bytes, card_number: str) -> str:
    """What the QR code carries: ``<card number>.<mac>`` (ASCII, so ISO-8859-1 safe)."""
    return f"{card_number}{SEPARATOR}{_mac(key, card_number)}"


@dataclass(frozen=True)
class ScannedCode:
    """A parsed till input: the card number and whether it came from a genuine scan."""

    card_number: str
    scanned: bool


def parse_till_input(key: bytes, text: str) -> ScannedCode | None:
    """Read a scanned payload or a typed number; None when it is neither.

    A payload whose MAC does not verify is rejected outright (someone forged or altered it), while
    a bare number is accepted as typed.
    """
    text = text.strip()
    if SEPARATOR in text:
        number, _, mac = text.partition(SEPARATOR)
        if not is_valid_card_number(number):
            return None
        if not hmac.compare_digest(mac.encode(), _mac(key, number).encode()):
            return None
        return ScannedCode(number, scanned=True)
    number = normalize_typed_number(text)
    if not is_valid_card_number(number):
        return None
    return ScannedCode(number, scanned=False)
