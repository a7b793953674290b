"""Translating the domain's messages without Flask (a scheduled job writes for one member)."""

from __future__ import annotations

from passes.text import N_, Text, in_language

NOTICE = N_("%(points)s %(label)s expire at the end of %(day)s")


def test_a_message_with_values_is_translated_then_filled() -> None:
    notice = Text(NOTICE, {"points": 120, "label": "Зёрна", "day": "31 мар. 2026"})
    assert in_language(notice, "ru") == "Зёрна: 120 сгорят в конце дня 31 мар. 2026"
    assert in_language(notice, "en") == str(notice) == "120 Зёрна expire at the end of 31 мар. 2026"


def test_nested_texts_unknown_messages_and_languages_and_the_empty_message() -> None:
    nested = Text(
        N_("This e-mail address is not valid: %(reason)s"),
        {"reason": Text(N_("there is nothing after the @."))},
    )
    assert (
        in_language(nested, "ru") == "Этот адрес электронной почты не подходит: после @ ничего нет."
    )
    assert in_language("Not in any catalogue", "ru") == "Not in any catalogue"
    assert in_language(nested, "de") == in_language(nested, None) == str(nested)
    assert in_language("", "ru") == ""  # not the catalogue's header
