"""The console's analytics page (figures, tables and charts) and each table as CSV.
Marketers and admins of the program.

The CSV keeps the tables' machine-readable English column names and keys; the page shows their
labels in the visitor's language (the charts' own words come from ``ANALYTICS_TEXT``)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Response, abort, render_template
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.analytics.figures import ACTIVE_DAYS, NO_TIER, Table, all_tables
from passes.loyalty.ledger import rules_of
from passes.members.csv_io import defuse
from passes.text import N_, Text
from passes.web.console import CONSOLE_ROLES, console, staff_page
from passes.web.context import db
from passes.web.i18n import translate
from passes.web.labels import label
from passes.web.script_text import ANALYTICS_TEXT, script_text

# Each table's columns, as the page heads them (the CSV keeps the names).
COLUMNS: dict[str, dict[str, str]] = {
    "overview": {"figure": N_("Figure"), "value": N_("Value")},
    "daily": {
        "day": N_("Day"),
        "joined": N_("New members"),
        "members": N_("Members in all"),
        "purchases": N_("Purchases"),
        "paid": N_("Paid"),
        "average_check": N_("Average check"),
    },
    "tiers": {"tier": N_("Tier"), "members": N_("Members")},
    "campaigns": {
        "campaign": N_("Campaign"),
        "status": N_("Status"),
        "send_at": N_("Sending time"),
        "targeted": N_("Reach"),
        "delivered": N_("Delivered"),
        "queued": N_("Queued"),
    },
}
_DAYS = {"days": ACTIVE_DAYS}
# The overview's figures, as the page names them (the CSV and the charts keep the keys).
FIGURES: dict[str, Text] = {
    "members": Text(N_("Members in all")),
    "cards_in_apple_wallet": Text(N_("Cards in Apple Wallet")),
    "cards_in_google_wallet": Text(N_("Cards in Google Wallet")),
    "cards_offered_to_google_wallet": Text(N_("Cards offered to Google Wallet")),
    f"active_members_{ACTIVE_DAYS}_days": Text(N_("Active members, last %(days)s days"), _DAYS),
    f"purchases_{ACTIVE_DAYS}_days": Text(N_("Purchases, last %(days)s days"), _DAYS),
    f"purchases_per_active_member_{ACTIVE_DAYS}_days": Text(
        N_("Purchases per active member, last %(days)s days"), _DAYS
    ),
    f"average_check_{ACTIVE_DAYS}_days": Text(N_("Average check, last %(days)s days"), _DAYS),
    "points_issued": Text(N_("Points issued")),
    "points_redeemed": Text(N_("Points redeemed")),
    "points_expired": Text(N_("Points expired")),
    "points_outstanding": Text(N_("Points outstanding")),
}


@dataclass(frozen=True)
class ShownTable:
    """A table as the page shows it: title, column labels and rows in the visitor's language."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]


@console.get("/<slug>/analytics")
@staff_page(*CONSOLE_ROLES)
def analytics(slug: str, user: StaffUser) -> BaseResponse:
    tables = all_tables(db(), user.program)
    # The charts read the same tables from a JSON block (data, not script: CSP allows it): the
    # columns and the overview's keys as they are, the values the charts show translated.
    figures = (
        json.dumps(
            {table.name: {"columns": table.columns, "rows": _values(table)} for table in tables},
            ensure_ascii=False,
        )
        # As Jinja's tojson: no tag, comment or entity can start inside the script block.
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    page = render_template(
        "console_analytics.html",
        user=user,
        program=user.program,
        tables=[_shown(table) for table in tables],
        figures=figures,
        analytics_text=script_text(ANALYTICS_TEXT),
        currency=rules_of(user.program).currency,
    )
    return Response(page)


def _values(table: Table) -> list[list[Any]]:
    """The rows with the values that are words in the visitor's language: the tiers table's
    row of cards without a tier, and the campaigns' statuses."""
    columns = table.columns
    rows = []
    for row in table.rows:
        cells = list(row)
        for index, value in enumerate(cells):
            if table.name == "tiers" and columns[index] == "tier" and value == NO_TIER:
                cells[index] = gettext(NO_TIER)
            elif table.name == "campaigns" and columns[index] == "status":
                cells[index] = label("campaign_status", value)
        rows.append(cells)
    return rows


def _shown(table: Table) -> ShownTable:
    labels = COLUMNS.get(table.name, {})
    rows = _values(table)
    if table.name == "overview":
        rows = [[translate(FIGURES[key]) if key in FIGURES else key, *rest] for key, *rest in rows]
    return ShownTable(
        name=table.name,
        title=translate(table.title),
        columns=[
            gettext(labels[column]) if column in labels else column.replace("_", " ")
            for column in table.columns
        ],
        rows=rows,
    )


@console.get("/<slug>/analytics/<name>.csv")
@staff_page(*CONSOLE_ROLES)
def analytics_csv(slug: str, name: str, user: StaffUser) -> BaseResponse:
    table = next((t for t in all_tables(db(), user.program) if t.name == name), None)
    if table is None:
        abort(404)
    response = Response(_csv(table), mimetype="text/csv")
    filename = quote(f"{user.program.slug}-{table.name}.csv")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
    return response


def _csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows([[defuse(str(value)) for value in row] for row in table.rows])
    return buffer.getvalue()
