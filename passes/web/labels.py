"""Words for the values the console shows that are stored as machine-readable English (a
campaign's status, a role, a ledger entry's kind…): the value stays what the database, the CSV
files and the APIs say, the page shows its label in the visitor's language (``label(group,
value)`` in templates; a value without a label is shown as it is)."""

from __future__ import annotations

from flask_babel import gettext

from passes.text import N_

LABELS: dict[str, dict[str, str]] = {
    "campaign_status": {
        "scheduled": N_("scheduled"),
        "sending": N_("sending"),
        "sent": N_("sent"),
        "cancelled": N_("cancelled"),
        "ended": N_("ended"),
    },
}


def label(group: str, value: object) -> str:
    """``value``'s label in the visitor's language, or the value itself when it has none."""
    text = "" if value is None else str(value)
    known = LABELS[group].get(text)
    return gettext(known) if known else text
