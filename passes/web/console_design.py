"""The card designer: the program's name, colours, images, labels, terms, support, stores and
rules in one form, with live previews of the Apple and the Google card drawn server-side from
the draft. Saving goes through the program document (the same checks as the API and the CLI)
and reaches every card in both wallets through the outbox. Marketers and admins."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.loyalty.models import ApiKey, Program
from passes.loyalty.program_document import (
    IMAGE_NAMES,
    LABEL_KEYS,
    MAX_STORES,
    ProgramDocument,
    ProgramDocumentError,
    apply_program_document,
    export_program,
    parse_program_document,
)
from passes.loyalty.view import branding_of, branding_of_document
from passes.text import N_
from passes.wallet.apple.images import ImageError, reencode_upload
from passes.wallet.apple.preview import apple_card_preview
from passes.wallet.google.preview import google_card_preview
from passes.wallet.sample import sample_card_view
from passes.web.console import CONSOLE_ROLES, console, staff_page
from passes.web.context import db
from passes.web.i18n import translate
from passes.web.script_text import DESIGNER_TEXT, script_text

TEXT_FIELDS = ("name", "organization_name", "description", "points_label", "terms")
SUPPORT_FIELDS = ("email", "phone", "website")
COLOUR_FIELDS = ("background", "foreground", "label")
STORE_FIELDS = ("name", "address", "latitude", "longitude", "relevant_text")
EMPTY_STORE_ROWS = 2
PREVIEWS = {"apple": apple_card_preview, "google": google_card_preview}
# Each image's field label and the label of its "remove" box.
IMAGE_LABELS = {
    "logo": (N_("Logo"), N_("Remove the logo")),
    "icon": (N_("Icon"), N_("Remove the icon")),
    "strip": (N_("Strip"), N_("Remove the strip")),
}


@console.get("/<slug>/design")
@staff_page(*CONSOLE_ROLES)
def design(slug: str, user: StaffUser) -> BaseResponse:
    document = export_program(user.program)
    return _page(user, document, errors=[], status=200, saved=request.args.get("saved") == "1")


@console.post("/<slug>/design")
@staff_page(*CONSOLE_ROLES)
def save_design(slug: str, user: StaffUser) -> BaseResponse:
    program = user.program
    draft, errors = _draft(program)
    errors += _stores_with_keys_removed(program, draft)
    if not errors:
        try:
            apply_program_document(db(), parse_program_document(draft))
        except ProgramDocumentError as exc:
            errors = _problems(exc)
        else:
            db().commit()  # the design bump puts every card's wallets in the outbox
            return redirect(url_for("console.design", slug=slug, saved="1"), 303)
    db().rollback()
    return _page(user, draft, errors=errors, status=422, saved=False)


@console.get("/<slug>/design/preview/<wallet>.png")
@staff_page(*CONSOLE_ROLES)
def saved_preview(slug: str, wallet: str, user: StaffUser) -> BaseResponse:
    render = PREVIEWS.get(wallet) or abort(404)
    image = render(sample_card_view(branding_of(user.program)))
    return Response(image, mimetype="image/png")


@console.post("/<slug>/design/preview/<wallet>.png")
@staff_page(*CONSOLE_ROLES)
def draft_preview(slug: str, wallet: str, user: StaffUser) -> BaseResponse:
    """The preview of the form as it stands (nothing is saved); 422 with the problems as JSON
    when the draft is not a valid design, said in the visitor's language (only this page's
    script reads them: the programs API says them in English)."""
    render = PREVIEWS.get(wallet) or abort(404)
    draft, errors = _draft(user.program)
    document: ProgramDocument | None = None
    if not errors:
        try:
            document = parse_program_document(draft)
        except ProgramDocumentError as exc:
            errors = _problems(exc)
    if document is None:
        problems = [{"field": path, "message": message} for path, message in errors]
        answer = Response(json.dumps({"errors": problems}), 422, mimetype="application/json")
        answer.vary.update(("Accept-Language", "Cookie"))  # the messages' language
        return answer
    image = render(sample_card_view(branding_of_document(document)))
    return Response(image, mimetype="image/png")


def _problems(exc: ProgramDocumentError) -> list[tuple[str, str]]:
    """The document's problems as (field path, message), the messages in the visitor's language
    (the paths are the document's JSON paths, the same in every language)."""
    return [(path, translate(text)) for path, text in exc.problems]


def _draft(program: Program) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The program document the form describes: the saved one with the form's changes. Uploads
    are re-encoded here (only their pixels are kept); problems come back as (path, message), the
    message in the visitor's language."""
    form = request.form
    errors: list[tuple[str, str]] = []
    document = export_program(program)
    for field in TEXT_FIELDS:
        document[field] = form.get(field, "").strip()
    document["colors"] = {key: form.get(f"color_{key}", "").strip() for key in COLOUR_FIELDS}
    document["labels"] = {key: form.get(f"label_{key}", "").strip() or None for key in LABEL_KEYS}
    document["support"] = {
        key: form.get(f"support_{key}", "").strip() or None for key in SUPPORT_FIELDS
    }
    for name in IMAGE_NAMES:
        upload = request.files.get(f"image_{name}")
        if upload is not None and upload.filename:
            try:
                pixels = reencode_upload(upload.read(), name)
            except ImageError as exc:
                errors.append((f"images.{name}", translate(exc.text)))
                continue
            document["images"][name] = base64.b64encode(pixels).decode("ascii")
        elif form.get(f"remove_{name}"):
            document["images"][name] = None
    document["stores"] = _stores(form)
    try:
        document["rules"] = json.loads(form.get("rules", "") or "{}")
    except ValueError as exc:
        errors.append(("rules", gettext("is not valid JSON: %(error)s", error=exc)))
    return document, errors


def _stores_with_keys_removed(program: Program, draft: dict[str, Any]) -> list[tuple[str, str]]:
    """Stores are matched by name: one renamed or left out is deleted, and its till keys with
    it. Refused while a store has keys in use; an admin revokes them first (API keys)."""
    kept = {store.get("name") for store in draft["stores"]}
    problems = []
    for store in program.stores:
        if store.name in kept:
            continue
        in_use = db().scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.store_id == store.id, ApiKey.revoked_at.is_(None))
        )
        if in_use:
            problems.append(
                (
                    "stores",
                    gettext(
                        "%(store)s would be removed (or renamed), but %(keys)s till or scanner "
                        "keys work for it: keep its name, or have an admin revoke them first",
                        store=repr(store.name),
                        keys=in_use,
                    ),
                )
            )
    return problems


def _stores(form: Any) -> list[dict[str, Any]]:
    stores = []
    rows = form.get("store_rows", "0")
    for index in range(min(int(rows), MAX_STORES + EMPTY_STORE_ROWS) if rows.isdigit() else 0):
        row = {key: form.get(f"store_{index}_{key}", "").strip() for key in STORE_FIELDS}
        if not any(row.values()):
            continue
        store: dict[str, Any] = {
            "name": row["name"],
            "address": row["address"],
            "relevant_text": row["relevant_text"] or None,
        }
        for key in ("latitude", "longitude"):
            text = row[key].replace(",", ".")
            try:
                store[key] = float(text) if text else None
            except ValueError:
                store[key] = row[key]  # the document's check names the field
        stores.append(store)
    return stores


def _page(
    user: StaffUser,
    document: dict[str, Any],
    *,
    errors: list[tuple[str, str]],
    status: int,
    saved: bool,
) -> Response:
    stores = list(document.get("stores") or []) + [{}] * EMPTY_STORE_ROWS
    page = render_template(
        "console_design.html",
        user=user,
        program=user.program,
        document=document,
        stores=stores,
        rules=json.dumps(document.get("rules") or {}, ensure_ascii=False, indent=2),
        errors=errors,
        image_names=IMAGE_NAMES,
        image_labels={
            name: tuple(
                gettext(text)
                for text in IMAGE_LABELS.get(name, (name.capitalize(), f"Remove the {name}"))
            )
            for name in IMAGE_NAMES
        },
        saved=saved,
        designer_text=script_text(DESIGNER_TEXT),
    )
    return Response(page, status=status)
