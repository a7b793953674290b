"""Verifying Google Wallet's save/delete callbacks (``ECv2SigningOnly``): messages signed as
Google signs them (by the fake, with its own root key) verify; anything forged, tampered,
expired, or meant for another issuer is refused with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fake_google_wallet import FakeGoogleWallet

from passes.wallet.google.callbacks import (
    CallbackRejected,
    RootKey,
    length_prefixed,
    parse_root_keys,
    verify_callback,
)

ISSUER = "3388000000012345678"
CALLBACK_URL = "https://loyalpass.test/google/callbacks"


@pytest.fixture(scope="module")
def google() -> FakeGoogleWallet:
    """A fake that holds one class (with a callback URL) and one object; not serving."""
    fake = FakeGoogleWallet(issuer_id=ISSUER)
    fake.classes[f"{ISSUER}.bakery"] = fake.minimal_class(
        "bakery", callbackOptions={"url": CALLBACK_URL}
    )
    fake.objects[f"{ISSUER}.card-1"] = fake.minimal_object("card-1", "bakery")
    return fake


def now() -> datetime:
    return datetime.now(UTC)


def roots(google: FakeGoogleWallet) -> list[RootKey]:
    return parse_root_keys(json.dumps(google.callback_keys_document()), now=now())


def verify(google: FakeGoogleWallet, body: bytes, *, issuer_id: str = ISSUER) -> Any:
    return verify_callback(body, issuer_id=issuer_id, root_keys=roots(google), now=now())


def test_fields_are_length_prefixed_little_endian() -> None:
    assert length_prefixed("ab", "") == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert length_prefixed("й") == b"\x02\x00\x00\x00\xd0\xb9"  # bytes, not characters


@pytest.mark.parametrize("event_type", ["save", "del"])
def test_a_callback_signed_by_google_verifies(google: FakeGoogleWallet, event_type: str) -> None:
    url, body = google.callback(f"{ISSUER}.card-1", event_type, nonce="n-1")
    assert url == CALLBACK_URL
    event = verify(google, body)
    assert (event.class_id, event.object_id, event.event_type, event.nonce) == (
        f"{ISSUER}.bakery",
        f"{ISSUER}.card-1",
        event_type,
        "n-1",
    )
    assert event.saved is (event_type == "save")
    assert now() + timedelta(minutes=59) < event.expires_at <= now() + timedelta(hours=1)


def test_a_tampered_message_is_refused(google: FakeGoogleWallet) -> None:
    _url, body = google.callback(f"{ISSUER}.card-1", "save")
    envelope = json.loads(body)
    envelope["signedMessage"] = envelope["signedMessage"].replace('"save"', '"del"')
    with pytest.raises(CallbackRejected, match="message signature does not verify"):
        verify(google, json.dumps(envelope).encode())


def test_a_message_for_another_issuer_is_refused(google: FakeGoogleWallet) -> None:
    _url, body = google.callback(f"{ISSUER}.card-1", "save", recipient_id="3388000000099999999")
    with pytest.raises(CallbackRejected, match="does not verify for this issuer"):
        verify(google, body)
    # ... and ours is not valid when we pretend to be that issuer
    _url, ours = google.callback(f"{ISSUER}.card-1", "save")
    with pytest.raises(CallbackRejected, match="does not verify for this issuer"):
        verify(google, ours, issuer_id="3388000000099999999")


def test_an_intermediate_key_not_signed_by_a_google_root_is_refused(
    google: FakeGoogleWallet,
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    _url, body = google.callback(f"{ISSUER}.card-1", "save", root_key=impostor)
    with pytest.raises(CallbackRejected, match="no Google root signing key signed"):
        verify(google, body)


def test_a_swapped_intermediate_key_is_refused(google: FakeGoogleWallet) -> None:
    """The intermediate key's own signature covers it: a key slipped into another message's
    envelope no longer matches the root's signature."""
    _url, first = google.callback(f"{ISSUER}.card-1", "save")
    _url, second = google.callback(f"{ISSUER}.card-1", "del")
    envelope = json.loads(first)
    envelope["intermediateSigningKey"]["signedKey"] = json.loads(second)["intermediateSigningKey"][
        "signedKey"
    ]
    with pytest.raises(CallbackRejected, match="no Google root signing key signed"):
        verify(google, json.dumps(envelope).encode())


def test_expired_keys_and_messages_are_refused(google: FakeGoogleWallet) -> None:
    object_id = f"{ISSUER}.card-1"
    _url, body = google.callback(object_id, "save", expires_in=-1)
    with pytest.raises(CallbackRejected, match="message has expired"):
        verify(google, body)
    _url, body = google.callback(object_id, "save", intermediate_expires_in=-1)
    with pytest.raises(CallbackRejected, match="intermediate signing key has expired"):
        verify(google, body)
    _url, body = google.callback(object_id, "save")
    old = [RootKey(key.public_key, now() - timedelta(seconds=1)) for key in roots(google)]
    with pytest.raises(CallbackRejected, match="no current Google root signing key"):
        verify_callback(body, issuer_id=ISSUER, root_keys=old, now=now())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(extra=1), "must hold exactly"),
        (lambda e: e.pop("signature"), "must hold exactly"),
        (lambda e: e.update(protocolVersion="ECv2"), "protocolVersion is not ECv2SigningOnly"),
        (lambda e: e.update(signature="not base64!"), "signature is not base64"),
        (lambda e: e["intermediateSigningKey"].update(signatures=[]), "not a list of signatures"),
        (lambda e: e["intermediateSigningKey"].pop("signatures"), "must hold exactly"),
        (lambda e: e.update(signedMessage={"eventType": "save"}), "signedMessage is not a string"),
    ],
)
def test_malformed_envelopes_are_refused_with_the_reason(
    google: FakeGoogleWallet, change: Any, reason: str
) -> None:
    _url, body = google.callback(f"{ISSUER}.card-1", "save")
    envelope = json.loads(body)
    change(envelope)
    with pytest.raises(CallbackRejected, match=reason):
        verify(google, json.dumps(envelope).encode())


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"eventType": "update"}, "neither save nor del"),
        ({"nonce": None}, "no usable nonce"),
        ({"nonce": "n" * 201}, "no usable nonce"),
        ({"objectId": "3388000000099999999.card-1"}, "objectId is not an id of this issuer"),
        ({"classId": "bakery"}, "classId is not an id of this issuer"),
        ({"expTimeMillis": None}, "expTimeMillis is not a time"),
        ({"expTimeMillis": "-5"}, "expTimeMillis is not a time"),
        ({"expTimeMillis": " 1_0 "}, "expTimeMillis is not a time"),
    ],
)
def test_signed_messages_google_would_not_send_are_refused(
    google: FakeGoogleWallet, fields: dict[str, Any], reason: str
) -> None:
    """Signed and all, but not a save or delete of one of our objects."""
    _url, body = google.callback(f"{ISSUER}.card-1", "save", message_fields=fields)
    with pytest.raises(CallbackRejected, match=reason):
        verify(google, body)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"keyExpiration": None}, "lacks keyValue or keyExpiration"),
        ({"keyValue": None}, "lacks keyValue or keyExpiration"),
        ({"keyValue": "AAAA"}, "keyValue is not a public key"),
    ],
)
def test_an_intermediate_key_without_its_parts_is_refused(
    google: FakeGoogleWallet, fields: dict[str, Any], reason: str
) -> None:
    _url, body = google.callback(f"{ISSUER}.card-1", "save", signed_key_fields=fields)
    with pytest.raises(CallbackRejected, match=reason):
        verify(google, body)


def test_an_intermediate_key_on_another_curve_is_refused(google: FakeGoogleWallet) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization

    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _url, body = google.callback(
        f"{ISSUER}.card-1",
        "save",
        signed_key_fields={"keyValue": base64.b64encode(der).decode()},
    )
    with pytest.raises(CallbackRejected, match="not a P-256 key"):
        verify(google, body)


def test_a_bad_signature_beside_a_good_one_does_not_hide_it(google: FakeGoogleWallet) -> None:
    _url, body = google.callback(
        f"{ISSUER}.card-1", "save", other_signatures=["not base64!", "AAAA"]
    )
    assert verify(google, body).event_type == "save"
    _url, body = google.callback(f"{ISSUER}.card-1", "save", other_signatures=["AAAA"] * 8)
    with pytest.raises(CallbackRejected, match="not a list of signatures"):
        verify(google, body)  # nine: more than Google ever sends


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"[]", "must hold exactly"),
        (b"{" + b" " * 20000 + b"}", "over 16384 bytes"),
    ],
)
def test_what_is_not_a_callback_at_all_is_refused(
    google: FakeGoogleWallet, body: bytes, reason: str
) -> None:
    with pytest.raises(CallbackRejected, match=reason):
        verify(google, body)


def test_the_root_key_list_keeps_only_current_keys_of_this_protocol(
    google: FakeGoogleWallet,
) -> None:
    current = google.callback_keys_document()["keys"][0]
    document = {
        "keys": [
            current,
            {**current, "protocolVersion": "ECv2"},  # Google Pay's, not Wallet's
            {**current, "keyExpiration": "1000"},  # expired in 1970
            {"keyValue": current["keyValue"], "protocolVersion": "ECv2SigningOnly"},  # no expiry
            {**current, "keyValue": "AAAA"},  # not a key
            "junk",
        ]
    }
    keys = parse_root_keys(json.dumps(document), now=now())
    assert len(keys) == 1
    assert keys[0].expires_at == datetime.fromtimestamp(int(current["keyExpiration"]) / 1000, UTC)
    for bad in ("nope", "{}", '{"keys": {}}'):
        with pytest.raises(ValueError, match="root key list"):
            parse_root_keys(bad, now=now())
