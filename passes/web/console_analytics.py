"""The console's analytics page (figures, tables and charts) and each table as CSV.
Marketers and admins of the program."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

from flask import Response, abort, render_template
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.analytics.figures import Table, all_tables
from passes.loyalty.ledger import rules_of
from passes.members.csv_io import defuse
from passes.web.console import CONSOLE_ROLES, console, staff_page
from passes.web.context import db


@console.get("/<slug>/analytics")
@staff_page(*CONSOLE_ROLES)
def analytics(slug: str, user: StaffUser) -> BaseResponse:
    tables = all_tables(db(), user.program)
    # The charts read the same tables from a JSON block (data, not script: CSP allows it).
    figures = (
        json.dumps(
            {table.name: {"columns": table.columns, "rows": table.rows} for table in tables},
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
        tables=tables,
        figures=figures,
        currency=rules_of(user.program).currency,
    )
    return Response(page)


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
