"""The staff scanner page: a shop signs in once with its store (or admin) API key, then scans
members' cards with the phone's camera, or types their numbers, and records purchases and
redemptions. The page itself calls the till API (``/api/v1``) from JavaScript; the API accepts the
key's id from this signed session cookie, with the page's CSRF token on every write."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.api_keys import KeyRejected, authenticate
from passes.db import utcnow
from passes.loyalty.calculator import _MINOR_DIGITS
from passes.loyalty.ledger import rules_of
from passes.loyalty.models import ApiKey
from passes.web.api.till import till
from passes.web.context import db
from passes.web.i18n import translate
from passes.web.script_text import SCANNER_TEXT, script_text
from passes.web.staff_session import STAFF_SESSION_KEY, user_session_lapsed

store = Blueprint("store", __name__, url_prefix="/store")

STAFF_ROLES = ("store", "admin")
MAX_KEY_LENGTH = 200


def signed_in_key() -> ApiKey | None:
    """The key this browser signed in with, while it is still valid (the session is dropped if
    the key was revoked, expired or deleted since)."""
    key_id = session.get(STAFF_SESSION_KEY)
    if key_id is None or user_session_lapsed():
        return None
    key = db().get(ApiKey, key_id) if isinstance(key_id, int) else None
    if (
        key is None
        or key.role not in STAFF_ROLES
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= utcnow())
    ):
        session.pop(STAFF_SESSION_KEY, None)
        return None
    return key


def _no_store(response: BaseResponse) -> BaseResponse:
    """Staff pages carry a CSRF token and who is signed in: never keep them in a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _render_login(message: str | None, status: int) -> BaseResponse:
    response = Response(render_template("store_login.html", message=message), status=status)
    return _no_store(response)


@store.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    if request.method == "GET":
        if signed_in_key() is not None:
            return redirect(url_for("store.scanner"), 303)
        return _render_login(None, 200)

    # A failed attempt never leaves an earlier sign-in behind on this browser.
    session.pop(STAFF_SESSION_KEY, None)
    token = request.form.get("api_key", "").strip()
    if not token:
        return _render_login(gettext("Enter the API key of this store."), 422)
    if len(token) > MAX_KEY_LENGTH:
        return _render_login(gettext("This is not an API key: it is far too long."), 422)
    try:
        key = authenticate(db(), token)
    except KeyRejected as exc:
        reason = translate(exc.text)  # the till API says it in English (str(exc))
        return _render_login(gettext("Cannot sign in: %(reason)s.", reason=reason), 422)
    if key.role not in STAFF_ROLES:
        return _render_login(
            gettext(
                "A %(role)s key cannot open the scanner page. Use the key of a store "
                "(or an admin key).",
                role=key.role,
            ),
            422,
        )
    # A fresh session: nothing from before the sign-in (an old CSRF token included) carries over.
    session.clear()
    session[STAFF_SESSION_KEY] = key.id
    session.permanent = False
    return redirect(url_for("store.scanner"), 303)


@store.post("/logout")
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("store.login"), 303)


@store.get("")
def scanner() -> BaseResponse:
    key = signed_in_key()
    if key is None:
        return redirect(url_for("store.login"), 303)
    program = key.program
    rules = rules_of(program)
    response = Response(
        render_template(
            "store.html",
            key=key,
            program=program,
            api_base=till.url_prefix,
            store=key.store,
            currency=rules.currency,
            minor_digits=_MINOR_DIGITS.get(rules.currency, 2),
            points_as_money=rules.points_as_money is not None,
            scanner_text=script_text(SCANNER_TEXT),
        )
    )
    return _no_store(response)


@store.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> BaseResponse:
    """An expired or foreign form: ask again instead of showing a bare error page."""
    if request.endpoint == "store.login":
        return _render_login(
            gettext("The sign-in form expired or came from another site. Enter the key again."),
            400,
        )
    response = Response(
        render_template(
            "error.html",
            code=400,
            title=gettext("Please try again"),
            detail=gettext("This page expired. Reload the scanner page, then sign out again."),
        ),
        status=400,
    )
    return _no_store(response)
