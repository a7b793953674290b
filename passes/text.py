"""Marking text for translation outside the web layer.

The domain has no Flask, so it cannot translate; it marks the messages it returns with
:func:`N_` so that ``pybabel extract -k N_`` puts them in the catalogues, and the web layer
translates them when it shows them (``gettext(message)`` in views, ``_(message)`` in
templates). A message with values in it is a :class:`Text`: its ``%(name)s`` placeholders are
filled after translation (``passes.web.i18n.translate``), and ``str()`` gives the English."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
