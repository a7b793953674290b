"""The analytics page: who may open it, the figures it carries for its charts, and each table
as CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.marketing.campaigns import Draft, schedule
from web_staff import Staff, sign_in


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_analytics_checks_who_is_asking(app: Flask, staff: Staff, who: str | None) -> None:
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    base = f"/console/{staff.program.slug}/analytics"
    for path in (base, f"{base}/overview.csv", f"{base}/daily.csv"):
        response = client.get(path)
        if who is None:
            assert response.status_code == 303, path
        else:
            assert response.status_code == (200 if who in ("admin", "marketer") else 403), path


def test_the_page_carries_its_tables_for_the_charts_and_as_csv(
    client: FlaskClient, staff: Staff
) -> None:
    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/analytics"
    page = client.get(base).get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="figures">(.*?)</script>', page, re.S)
    assert block is not None
    figures = json.loads(block.group(1))
    assert set(figures) == {"overview", "daily", "tiers", "campaigns"}
    overview = dict(figures["overview"]["rows"])
    assert overview["members"] == 1  # the staff fixture's one card
    assert len(figures["daily"]["rows"]) == 30
    for canvas in ("members-chart", "purchases-chart", "wallets-chart", "tiers-chart"):
        assert f'id="{canvas}"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page

    exported = client.get(f"{base}/overview.csv")
    assert exported.mimetype == "text/csv"
    assert "overview.csv" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["figure", "value"] and ["members", "1"] in rows
    assert client.get(f"{base}/nothing.csv").status_code == 404


def test_the_figures_cannot_break_out_of_their_script_block(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    now = utcnow()
    title = "<!--<script></script><b>x&"
    draft = Draft(title, "t", {"kind": "all"}, now, now + timedelta(days=1), now)
    schedule(db_session, staff.program, draft, "a@example.com", now)
    formula = Draft("=HYPERLINK(1)", "t", {"kind": "all"}, now, now + timedelta(days=1), now)
    schedule(db_session, staff.program, formula, "a@example.com", now)
    db_session.commit()
    sign_in(client, staff.admin.email)
    page = client.get(f"/console/{staff.program.slug}/analytics").get_data(as_text=True)
    block = re.search(r'id="figures">(.*?)</script>', page, re.S)
    assert block is not None and not set("<>&") & set(block.group(1))
    assert title in [row[0] for row in json.loads(block.group(1))["campaigns"]["rows"]]
    assert page.count("</script>") == page.count("<script")  # every block closes where it should
    exported = client.get(f"/console/{staff.program.slug}/analytics/campaigns.csv")
    assert "'=HYPERLINK(1)" in exported.get_data(as_text=True)  # defused for spreadsheets
