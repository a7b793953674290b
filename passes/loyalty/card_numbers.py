"""Card numbers: the program's digit prefix, random digits, and a Luhn check digit.

The check digit catches a mistyped digit or a swap of two neighbours at the till before any lookup.
"""

from __future__ import annotations

import secrets

CARD_NUMBER_LENGTH = 16


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits + check`` pass the Luhn test."""
    total = 0
    # Double every second digit counting from the right of the final number, i.e. starting with
    # the rightmost digit of ``digits`` (the check digit will sit to its right).
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_card_number(number: str) -> bool:
    """True for an all-digit string of plausible length whose last digit is its Luhn check."""
    if not (8 <= len(number) <= 19) or not number.isascii() or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def generate_card_number(prefix: str, length: int = CARD_NUMBER_LENGTH) -> str:
    """A random card number starting with ``prefix``; the caller retries if it is taken."""
    if not prefix.isascii() or not prefix.isdigit() or not 1 <= len(prefix) <= length - 8:
        raise ValueError(f"card prefix must be 1 to {length - 8} digits, got {prefix!r}")
    body_length = length - len(prefix) - 1
    body = "".join(str(secrets.randbelow(10)) for _ in range(body_length))
    partial = prefix + body
    return partial + luhn_check_digit(partial)


def normalize_typed_number(text: str) -> str:
    """Strip the spaces and dashes people type or that the pass shows between digit groups."""
    return "".join(ch for ch in text if ch not in " -\u00a0\u2009")


def format_card_number(number: str) -> str:
    """Digits in groups of four, as printed on the pass and the card page."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
