from passes.loyalty.barcode import (
    ScannedCode,
    barcode_payload,
    derive_barcode_key,
    parse_till_input,
)
from passes.loyalty.card_numbers import generate_card_number

KEY = derive_barcode_key("secret one")


def test_scanned_payload_is_recognised_as_a_scan() -> None:
    number = generate_card_number("77")
    payload = barcode_payload(KEY, number)
    assert payload.startswith(number + ".")
    assert payload.isascii() and len(payload) <= 32
    assert parse_till_input(KEY, payload) == ScannedCode(number, scanned=True)


def test_typed_number_is_accepted_but_marked_typed() -> None:
    number = generate_card_number("77")
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    assert parse_till_input(KEY, spaced) == ScannedCode(number, scanned=False)


def test_forged_or_altered_payloads_are_rejected() -> None:
    number = generate_card_number("77")
    payload = barcode_payload(KEY, number)
    other_key = derive_barcode_key("secret two")
    assert parse_till_input(other_key, payload) is None
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert parse_till_input(KEY, tampered) is None
    other_number = generate_card_number("77")
    assert parse_till_input(KEY, other_number + payload[len(number) :]) is None


def test_garbage_is_neither_scan_nor_number() -> None:
    assert parse_till_input(KEY, "") is None
    assert parse_till_input(KEY, "hello.world") is None
    assert parse_till_input(KEY, "1234") is None


def test_barcode_key_depends_on_secret() -> None:
    assert derive_barcode_key("a") != derive_barcode_key("b")
    assert derive_barcode_key("a") == derive_barcode_key(b"a")
