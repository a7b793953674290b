import pytest

from passes.loyalty.card_numbers import (
    format_card_number,
    generate_card_number,
    is_valid_card_number,
    luhn_check_digit,
    normalize_typed_number,
)


@pytest.mark.parametrize(
    ("partial", "check"), [("7992739871", "3"), ("4111111111111111"[:-1], "1"), ("0", "0")]
)
def test_luhn_check_digit_matches_published_examples(partial: str, check: str) -> None:
    assert luhn_check_digit(partial) == check


def test_generated_numbers_carry_prefix_length_and_valid_check_digit() -> None:
    numbers = {generate_card_number("7701") for _ in range(200)}
    assert len(numbers) == 200
    for number in numbers:
        assert number.startswith("7701")
        assert len(number) == 16
        assert is_valid_card_number(number)


def test_single_digit_typo_and_adjacent_swap_are_detected() -> None:
    partial = "770100001234567"
    number = partial + luhn_check_digit(partial)
    assert is_valid_card_number(number)
    typo = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]
    assert not is_valid_card_number(typo)
    swapped = number[:9] + number[10] + number[9] + number[11:]  # "23" → "32"
    assert swapped != number and not is_valid_card_number(swapped)


@pytest.mark.parametrize("bad", ["", "1234567", "77010000abcd1234", "٧٧٠١٠٠٠٠١٢٣٤٥٦٧٠", "1" * 20])
def test_invalid_shapes_are_rejected(bad: str) -> None:
    assert not is_valid_card_number(bad)


@pytest.mark.parametrize("prefix", ["", "abc", "1234567890"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="card prefix"):
        generate_card_number(prefix)


def test_typed_numbers_are_normalised_and_display_is_grouped() -> None:
    assert normalize_typed_number(" 7701 2345-6789 0123 ") == "7701234567890123"
    assert format_card_number("7701234567890123") == "7701 2345 6789 0123"
