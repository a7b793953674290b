"""Marking text for translation outside the web layer.

The domain has no Flask, so it cannot translate; it marks the messages it returns with
:func:`N_` so that ``pybabel extract -k N_`` puts them in the catalogues, and the web layer
translates them when it shows them (``gettext(message)`` in views, ``_(message)`` in
templates). A message with values in it is a :class:`Text`: its ``%(name)s`` placeholders are
filled after translation (:func:`in_language`, which ``passes.web.i18n.translate`` calls with
the visitor's language), and ``str()`` gives the English."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations, Translations

#: The compiled catalogues (``<lang>/LC_MESSAGES/messages.mo``), shared with Flask-Babel.
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def N_(text: str) -> str:
    return text


@dataclass(frozen=True)
class Text:
    """A message marked with :func:`N_` and the values of its ``%(name)s`` placeholders (a value
    may itself be a Text, translated with it)."""

    message: str
    values: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.values:
            return self.message
        return self.message % {name: str(value) for name, value in self.values.items()}


@lru_cache(maxsize=8)
def _catalogue(language: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [language])


def in_language(text: Text | str, language: str | None) -> str:
    """``text`` in ``language`` (None: English), straight from the catalogues: for what the
    domain writes for one person outside any request, e.g. a scheduled job's notice on a card.
    A message the catalogue lacks stays English."""
    catalogue = _catalogue(language or "en")
    if isinstance(text, str):
        return catalogue.gettext(text) if text else text  # "" would be the catalogue's header
    values = {
        name: in_language(value, language) if isinstance(value, Text) else value
        for name, value in text.values.items()
    }
    translated = catalogue.gettext(text.message)
    return translated % values if values else translated
