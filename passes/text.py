"""Marking text for translation outside the web layer.

The domain has no Flask, so it cannot translate; it marks the messages it returns with
:func:`N_` so that ``pybabel extract -k N_`` puts them in the catalogues, and the web layer
translates them when it shows them (``gettext(message)`` in views, ``_(message)`` in
templates)."""

from __future__ import annotations


def N_(text: str) -> str:
    return text
