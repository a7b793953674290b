"""The console: staff sign in with e-mail and password; marketers and admins run their program
from here, clerks are sent to the scanner. Every page checks who is asking and for which program
(``/console/<slug>/…``): a user of one program never sees another's.

Sessions: a fresh session on sign-in (nothing from before carries over), the user's id and a
stamp of the password hash (a password change or a disabled user ends it at the next request),
an expiry of CONSOLE_SESSION_HOURS, and the cookie hardening of the app (HttpOnly, SameSite,
Secure behind https). Every form carries a CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.accounts.service import SignInRefused, sign_in
from passes.accounts.service import session_stamp as make_stamp
from passes.jobs import jobs
from passes.jobs.runs import last_runs
from passes.loyalty.models import Card
from passes.push.models import AppleRegistration
from passes.web import FORM_EXPIRED
from passes.web.context import db
from passes.web.staff_session import (
    SIGNED_IN_KEY,
    STAFF_SESSION_KEY,
    STAMP_KEY,
    USER_KEY,
    signed_in_user,
)

console = Blueprint("console", __name__, url_prefix="/console")

CONSOLE_ROLES = ("admin", "marketer")
View = TypeVar("View", bound=Callable[..., BaseResponse])


def staff_page(*roles: str) -> Callable[[View], View]:
    """Only for a signed-in user of one of ``roles`` and of the program in the URL's ``slug``:
    others are sent to sign in (303), or refused (403) when signed in as someone else."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> BaseResponse:
            user = signed_in_user()
            if user is None:
                return redirect(url_for("console.login", next=request.path), 303)
            slug = kwargs.get("slug")
            if user.role not in roles or (slug is not None and user.program.slug != slug):
                abort(403)
            return _no_store(view(*args, user=user, **kwargs))

        return cast(View, guarded)

    return decorate


def _no_store(response: BaseResponse) -> BaseResponse:
    """Console pages carry a CSRF token and who is signed in: never keep them in a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _home_of(user: StaffUser) -> str:
    if user.role == "clerk":
        return url_for("store.scanner")
    return url_for("console.home", slug=user.program.slug)


def _render_login(message: str | None, status: int, email: str = "") -> BaseResponse:
    page = render_template("console_login.html", message=message, email=email)
    return _no_store(Response(page, status=status))


@console.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    if request.method == "GET":
        user = signed_in_user()
        if user is not None:
            return redirect(_home_of(user), 303)
        return _render_login(None, 200)
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    session.clear()  # a failed attempt leaves no earlier sign-in (nor a scanner key) behind
    if not email.strip() or not password:
        return _render_login(gettext("Enter your e-mail and your password."), 422, email)
    try:
        user = sign_in(db(), email, password, request.remote_addr or "?")
    except SignInRefused as refused:
        db().commit()  # the failure counts towards the limit
        return _render_login(gettext(refused.message), refused.status, email)
    db().commit()
    # A fresh session: nothing from before the sign-in (an old CSRF token included) carries over.
    session.clear()
    session[USER_KEY] = user.id
    session[STAMP_KEY] = make_stamp(user.password_hash, current_app.config["SECRET_KEY"])
    session[SIGNED_IN_KEY] = int(time.time())  # the session ends CONSOLE_SESSION_HOURS later
    if user.role == "clerk" and user.api_key_id is not None:
        session[STAFF_SESSION_KEY] = user.api_key_id  # the scanner acts through their key
    return redirect(_home_of(user), 303)


@console.post("/logout")
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("console.login"), 303)


@console.get("/<slug>/")
@staff_page(*CONSOLE_ROLES)
def home(slug: str, user: StaffUser) -> BaseResponse:
    program = user.program
    members = db().scalar(
        select(func.count()).select_from(Card).where(Card.program_id == program.id)
    )
    in_apple = db().scalar(
        select(func.count(func.distinct(AppleRegistration.card_id)))
        .join(Card, Card.id == AppleRegistration.card_id)
        .where(Card.program_id == program.id)
    )
    return Response(
        render_template(
            "console_home.html",
            user=user,
            program=program,
            members=members or 0,
            in_apple_wallet=in_apple or 0,
        )
    )


@console.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> BaseResponse:
    """An expired or foreign form: ask again instead of showing a bare error page."""
    if request.endpoint == "console.login":
        return _render_login(
            gettext("The sign-in form expired or came from another site. Sign in again."), 400
        )
    page = render_template(
        "error.html", code=400, title=gettext("Bad request"), detail=gettext(FORM_EXPIRED)
    )
    return Response(page, status=400)


@console.errorhandler(403)
def _forbidden(_error: Exception) -> BaseResponse:
    page = render_template(
        "error.html",
        code=403,
        title=gettext("Not yours to see"),
        detail=gettext("Your account cannot open this page."),
    )
    return _no_store(Response(page, status=403))


@console.get("/<slug>/jobs")
@staff_page("admin")
def job_runs(slug: str, user: StaffUser) -> BaseResponse:
    """The scheduler's jobs and how each last ran (on whichever worker ran it). The jobs serve
    every program of the installation: admins only."""
    runs = last_runs(db())
    rows = [(job, runs.get(job.id)) for job in jobs(current_app)]
    page = render_template("console_jobs.html", user=user, program=user.program, rows=rows)
    return Response(page)
