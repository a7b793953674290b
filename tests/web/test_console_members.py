"""The console's member pages: who may open them, search, the member page, an audited
adjustment with its form errors, CSV export and import through the browser form."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_card
from passes.loyalty.models import Card, LedgerEntry, WalletUpdate
from passes.members.csv_io import EXPORT_COLUMNS
from support import csrf_token
from web_staff import Staff, sign_in


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_every_member_page_checks_who_is_asking(
    app: Flask, staff: Staff, db_session: Session, who: str | None
) -> None:
    card = make_card(db_session, staff.program)
    theirs = make_card(db_session, staff.other)
    db_session.commit()
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    base = f"/console/{staff.program.slug}/members"
    allowed = who in ("admin", "marketer")
    for path in (base, f"{base}/{card.number}", f"{base}.csv", f"{base}/import"):
        response = client.get(path)
        if who is None:
            assert response.status_code == 303 and "/console/login" in response.location, path
        else:
            assert response.status_code == (200 if allowed else 403), (path, who)
    if allowed:  # another program's card is not found through this program
        assert client.get(f"{base}/{theirs.number}").status_code == 404
    for path, data in [(f"{base}/{card.number}/adjust", {"points": "5", "reason": "x"})]:
        assert client.post(path, data=data).status_code == 400  # no CSRF token


def test_search_and_the_member_page(client: FlaskClient, staff: Staff, db_session: Session) -> None:
    card = make_card(db_session, staff.program, name="Ирина Петрова", email="irina@example.com")
    make_card(db_session, staff.program, name="Someone Else")
    db_session.commit()
    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/members"
    listing = client.get(base, query_string={"q": "ирина"}).get_data(as_text=True)
    assert card.number in listing and "Someone Else" not in listing
    nothing = client.get(base, query_string={"q": "nobody-like-this"}).get_data(as_text=True)
    assert 'id="no-members"' in nothing and "nobody-like-this" in nothing
    page = client.get(f"{base}/{card.number}").get_data(as_text=True)
    assert "Ирина Петрова" in page and "irina@example.com" in page
    assert f'id="balance">{card.points_balance}<' in page and "In no Apple Wallet." in page
    assert "<dt>Language</dt><dd>—</dd>" in page  # joined without a page (here: a factory)
    card.member.language = "ru"
    db_session.commit()
    page = client.get(f"{base}/{card.number}").get_data(as_text=True)
    assert "<dt>Language</dt><dd>Русский</dd>" in page


def test_an_adjustment_needs_a_reason_and_is_audited(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    card = make_card(db_session, staff.program)
    db_session.commit()
    balance = card.points_balance
    sign_in(client, staff.admin.email)
    page = f"/console/{staff.program.slug}/members/{card.number}"
    token = csrf_token(client, page)
    nonce_of = re.compile(r'name="nonce" value="([0-9a-f]{32})"')
    found = nonce_of.search(client.get(page).get_data(as_text=True))
    assert found is not None
    nonce = found.group(1)

    for data, field in [
        ({"points": "50", "reason": " "}, "reason-error"),
        ({"points": "0", "reason": "why not"}, "points-error"),
        ({"points": "fifty", "reason": "why not"}, "points-error"),
        ({"points": f"-{balance + 1}", "reason": "too much"}, "points-error"),
    ]:
        refused = client.post(f"{page}/adjust", data={"csrf_token": token, "nonce": nonce, **data})
        assert refused.status_code == 422, data
        text = refused.get_data(as_text=True)
        assert f'id="{field}"' in text and data["points"] in text  # the form keeps the input
    db_session.refresh(card)
    assert card.points_balance == balance

    form = {"csrf_token": token, "nonce": nonce, "points": "+50", "reason": "lost receipt"}
    done = client.post(f"{page}/adjust", data=form)
    assert done.status_code == 303 and done.location.endswith(page)
    again = client.post(f"{page}/adjust", data=form)  # a double click, a resent form
    assert again.status_code == 303
    incomplete = client.post(f"{page}/adjust", data={**form, "nonce": ""})
    assert incomplete.status_code == 422
    db_session.refresh(card)
    assert card.points_balance == balance + 50
    entry = db_session.scalar(
        select(LedgerEntry).where(LedgerEntry.card_id == card.id).order_by(LedgerEntry.id.desc())
    )
    assert entry is not None
    assert (entry.kind, entry.points, entry.reason, entry.source) == (
        "adjustment",
        50,
        "lost receipt",
        staff.admin.email,
    )
    assert db_session.get(WalletUpdate, card.id) is not None  # the wallets will hear of it
    assert "lost receipt" in client.get(page).get_data(as_text=True)


def test_export_and_import_through_the_console(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/members"
    exported = client.get(f"{base}.csv")
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == list(EXPORT_COLUMNS) and len(rows) == 2  # the staff fixture's one card

    token = csrf_token(client, f"{base}/import")
    upload = "name,email,points\nНовый Клиент,new@example.com,30\nBad,not-mail,\n"
    imported = client.post(
        f"{base}/import",
        data={"csrf_token": token, "file": (io.BytesIO(upload.encode()), "members.csv")},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 200
    text = imported.get_data(as_text=True)
    assert "<strong>1</strong> members created" in text and "<td>3</td>" in text
    assert db_session.scalar(
        select(Card).join(Card.member).where(Card.member.has(email="new@example.com"))
    )

    for payload, message in [
        (b"", "Choose a CSV file"),
        (b"nom,courriel\nA,a@b.c\n", "Nothing was imported"),
        (b"name,email\n\xff\xfe\xfa,x@example.com\n", "not UTF-8"),
    ]:
        data: dict[str, object] = {"csrf_token": token}
        if payload:
            data["file"] = (io.BytesIO(payload), "members.csv")
        refused = client.post(f"{base}/import", data=data, content_type="multipart/form-data")
        assert refused.status_code == 422 and message in refused.get_data(as_text=True)
