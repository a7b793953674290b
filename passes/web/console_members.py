"""Console pages for members: search, a member's page (ledger, wallets), a manual adjustment
with a required reason, CSV export and import. Marketers and admins of the program."""

from __future__ import annotations

import io
import re
import uuid
from urllib.parse import quote

from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.loyalty.ledger import LedgerError, adjust, lock_card
from passes.loyalty.models import Card, LedgerEntry
from passes.members.csv_io import ImportFileError, ImportReport, export_csv, import_members
from passes.members.directory import PAGE_SIZE, find_card, record, search
from passes.text import N_
from passes.web.console import CONSOLE_ROLES, console, staff_page
from passes.web.context import app_state, db
from passes.web.i18n import translate

REJECTIONS_SHOWN = 200
# Why the ledger may refuse an adjustment, for the page (the ledger's own words are English).
LEDGER_REFUSALS = {
    "insufficient_points": N_("The card has %(balance)s points: it cannot lose %(points)s."),
    "invalid_points": N_("%(points)s points is beyond any real adjustment."),
}
NONCE = re.compile(r"[0-9a-f]{32}")


@console.get("/<slug>/members")
@staff_page(*CONSOLE_ROLES)
def members(slug: str, user: StaffUser) -> BaseResponse:
    query = request.args.get("q", "")[:200]
    after = request.args.get("after", "")
    cards = search(db(), user.program, query, after_id=int(after) if after.isdigit() else None)
    page = render_template(
        "console_members.html",
        user=user,
        program=user.program,
        query=query,
        cards=cards,
        next_after=cards[-1].id if len(cards) == PAGE_SIZE else None,
    )
    return Response(page)


@console.get("/<slug>/members/<number>")
@staff_page(*CONSOLE_ROLES)
def member(slug: str, number: str, user: StaffUser) -> BaseResponse:
    return _member_page(user, _own_card(user, number), form={}, errors={}, status=200)


@console.post("/<slug>/members/<number>/adjust")
@staff_page(*CONSOLE_ROLES)
def adjust_member(slug: str, number: str, user: StaffUser) -> BaseResponse:
    card = _own_card(user, number)
    form = {key: request.form.get(key, "").strip() for key in ("points", "reason", "nonce")}
    errors: dict[str, str] = {}
    text = form["points"].replace(" ", "")
    points = int(text) if text.lstrip("+-").isdigit() and len(text) < 12 else None
    if points is None or points == 0:
        errors["points"] = gettext("Enter a whole number of points, e.g. 50 or -20 (not 0).")
    if not form["reason"]:
        errors["reason"] = gettext("Say why: the reason is kept in the member's ledger.")
    elif len(form["reason"]) > 300:
        errors["reason"] = gettext("Please keep the reason under 300 characters.")
    if not NONCE.fullmatch(form["nonce"]):
        errors["points"] = gettext("The form is incomplete: open the member's page again.")
    if not errors and points is not None:
        lock_card(db(), card.id)  # a second submission of the same form waits, then sees the first
        if _already_applied(card, form["nonce"]):
            db().commit()
            return redirect(url_for("console.member", slug=slug, number=card.number), 303)
        try:
            adjust(
                db(),
                card,
                points=points,
                reason=form["reason"],
                actor=user.email,
                detail={"form": form["nonce"]},
            )
        except LedgerError as exc:
            known = LEDGER_REFUSALS.get(exc.code)
            values = {"balance": card.points_balance, "points": abs(points)}
            errors["points"] = gettext(known, **values) if known else exc.detail
        else:
            db().commit()
            return redirect(url_for("console.member", slug=slug, number=card.number), 303)
    db().rollback()
    return _member_page(user, _own_card(user, number), form=form, errors=errors, status=422)


@console.get("/<slug>/members.csv")
@staff_page(*CONSOLE_ROLES)
def export_members(slug: str, user: StaffUser) -> BaseResponse:
    program = user.program
    chunks = stream_with_context(export_csv(db(), program))
    response = Response(chunks, mimetype="text/csv")
    filename = quote(f"{program.slug}-members.csv")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
    return response


@console.route("/<slug>/members/import", methods=["GET", "POST"])
@staff_page(*CONSOLE_ROLES)
def import_members_page(slug: str, user: StaffUser) -> BaseResponse:
    if request.method == "GET":
        return _import_page(user, None, None, 200)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(user, gettext("Choose a CSV file to import."), None, 422)
    # Larger requests never get here (MAX_CONTENT_LENGTH: 413); a large file goes by the CLI.
    data = upload.stream.read()
    try:
        text = io.StringIO(data.decode("utf-8-sig"), newline="")
        report = import_members(
            db(), user.program, text, barcode_key=app_state().barcode_key, actor=user.email
        )
    except UnicodeDecodeError:
        db().rollback()
        message = gettext("The file is not UTF-8 text: save it as CSV UTF-8.")
        return _import_page(user, message, None, 422)
    except ImportFileError as exc:
        db().rollback()
        message = gettext("Nothing was imported: %(reason)s.", reason=translate(exc.text))
        return _import_page(user, message, None, 422)
    return _import_page(user, None, report, 200)


def _import_page(
    user: StaffUser, message: str | None, report: ImportReport | None, status: int
) -> Response:
    # Each row left out, and why in the visitor's language (the columns keep their names).
    rejected = [
        (
            rejection.line,
            "; ".join(f"{column}: {translate(text)}" for column, text in rejection.problems),
        )
        for rejection in (report.rejections[:REJECTIONS_SHOWN] if report else [])
    ]
    page = render_template(
        "console_members_import.html",
        user=user,
        program=user.program,
        message=message,
        report=report,
        rejected=rejected,
        shown=REJECTIONS_SHOWN,
    )
    return Response(page, status=status)


def _already_applied(card: Card, nonce: str) -> bool:
    """The adjustment this form describes is in the ledger already (a double click, a resent
    form): each rendered form carries its own nonce, stored with the entry."""
    return (
        db().scalar(
            select(LedgerEntry.id).where(
                LedgerEntry.card_id == card.id,
                LedgerEntry.kind == "adjustment",
                LedgerEntry.detail["form"].as_string() == nonce,
            )
        )
        is not None
    )


def _own_card(user: StaffUser, number: str) -> Card:
    card = find_card(db(), user.program, number)
    if card is None:
        abort(404)
    return card


def _member_page(
    user: StaffUser, card: Card, form: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    page = render_template(
        "console_member.html",
        user=user,
        program=user.program,
        record=record(db(), card),
        form=form,
        errors=errors,
        nonce=form.get("nonce") or uuid.uuid4().hex,
    )
    return Response(page, status=status)
