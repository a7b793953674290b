"""Console pages for the program's people and keys (admins only): staff users added with a
password shown once, disabled, given a new password; API keys for tills and partners issued
(the token shown once) and revoked."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.api_keys import ROLES as KEY_ROLES
from passes.accounts.api_keys import issue_key
from passes.accounts.models import ROLES, StaffUser
from passes.accounts.service import (
    AccountError,
    create_user,
    disable,
    new_password,
    reset_password,
)
from passes.db import utcnow
from passes.loyalty.models import ApiKey, Store
from passes.text import N_, Text
from passes.web.console import console, staff_page
from passes.web.context import db
from passes.web.i18n import translate
from passes.web.labels import label

MAX_KEY_DAYS = 3650


@console.get("/<slug>/users")
@staff_page("admin")
def users(slug: str, user: StaffUser) -> BaseResponse:
    return _users_page(user, {}, None, None, 200)


@console.post("/<slug>/users")
@staff_page("admin")
def add_user(slug: str, user: StaffUser) -> BaseResponse:
    form = {key: request.form.get(key, "").strip() for key in ("email", "name", "role", "store")}
    store = _store(user, form["store"]) if form["store"] else None
    password = new_password()
    try:
        if form["store"] and store is None:
            raise AccountError(Text(N_("choose one of the program's stores")))
        created = create_user(
            db(),
            user.program,
            email=form["email"],
            name=form["name"],
            role=form["role"],
            password=password,
            store=store if form["role"] == "clerk" else None,
        )
    except AccountError as exc:
        db().rollback()
        return _users_page(user, form, translate(exc.text), None, 422)
    db().commit()
    return _users_page(user, {}, None, (created.email, password), 201)


@console.post("/<slug>/users/<int:user_id>/disable")
@staff_page("admin")
def disable_user(slug: str, user_id: int, user: StaffUser) -> BaseResponse:
    person = _own_user(user, user_id)
    if person.id == user.id:
        return _users_page(user, {}, gettext("You cannot disable yourself."), None, 409)
    disable(db(), person)
    db().commit()
    return redirect(url_for("console.users", slug=slug), 303)


@console.post("/<slug>/users/<int:user_id>/password")
@staff_page("admin")
def new_user_password(slug: str, user_id: int, user: StaffUser) -> BaseResponse:
    person = _own_user(user, user_id)
    if person.disabled_at is not None:
        problem = gettext("A disabled user cannot get a password.")
        return _users_page(user, {}, problem, None, 409)
    password = reset_password(db(), person)
    db().commit()
    return _users_page(user, {}, None, (person.email, password), 200)


@console.get("/<slug>/keys")
@staff_page("admin")
def keys(slug: str, user: StaffUser) -> BaseResponse:
    return _keys_page(user, {}, None, None, 200)


@console.post("/<slug>/keys")
@staff_page("admin")
def add_key(slug: str, user: StaffUser) -> BaseResponse:
    form = {key: request.form.get(key, "").strip() for key in ("name", "role", "store", "days")}
    problem = None
    store = _store(user, form["store"]) if form["store"] else None
    if not form["name"] or len(form["name"]) > 80:
        problem = gettext("Name the key (at most 80 characters), e.g. the till it is for.")
    elif form["role"] not in KEY_ROLES:
        roles = ", ".join(label("role", role) for role in KEY_ROLES)
        problem = gettext("Choose a role: %(roles)s.", roles=roles)
    elif form["role"] == "store" and store is None:
        problem = gettext("A store key needs one of the program's stores.")
    elif form["days"] and not (form["days"].isdigit() and 1 <= int(form["days"]) <= MAX_KEY_DAYS):
        problem = gettext(
            "Expiry: a number of days from 1 to %(most)s, or empty for never.", most=MAX_KEY_DAYS
        )
    if problem is not None:
        return _keys_page(user, form, problem, None, 422)
    expires = utcnow() + timedelta(days=int(form["days"])) if form["days"] else None
    issued = issue_key(
        db(),
        user.program,
        role=form["role"],
        name=form["name"],
        store=store if form["role"] == "store" else None,
        expires_at=expires,
    )
    db().commit()
    return _keys_page(user, {}, None, (issued.record.name, issued.token), 201)


@console.post("/<slug>/keys/<int:key_id>/revoke")
@staff_page("admin")
def revoke_key(slug: str, key_id: int, user: StaffUser) -> BaseResponse:
    key = db().get(ApiKey, key_id)
    if key is None or key.program_id != user.program_id:
        abort(404)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db().commit()
    return redirect(url_for("console.keys", slug=slug), 303)


def _store(user: StaffUser, store_id: str) -> Store | None:
    store = db().get(Store, int(store_id)) if store_id.isdigit() else None
    return store if store is not None and store.program_id == user.program_id else None


def _own_user(user: StaffUser, user_id: int) -> StaffUser:
    person = db().get(StaffUser, user_id)
    if person is None or person.program_id != user.program_id:
        abort(404)
    return person


def _users_page(
    user: StaffUser,
    form: dict[str, str],
    problem: str | None,
    shown: tuple[str, str] | None,
    status: int,
) -> Response:
    people = db().scalars(
        select(StaffUser).where(StaffUser.program_id == user.program_id).order_by(StaffUser.email)
    )
    return _page(
        "console_users.html", user, form, problem, shown, status, people=list(people), roles=ROLES
    )


def _keys_page(
    user: StaffUser,
    form: dict[str, str],
    problem: str | None,
    shown: tuple[str, str] | None,
    status: int,
) -> Response:
    rows = db().scalars(
        select(ApiKey).where(ApiKey.program_id == user.program_id).order_by(ApiKey.id.desc())
    )
    return _page(
        "console_keys.html",
        user,
        form,
        problem,
        shown,
        status,
        keys=list(rows),
        roles=KEY_ROLES,
        now=utcnow(),
    )


def _page(
    template: str,
    user: StaffUser,
    form: dict[str, str],
    problem: str | None,
    shown: tuple[str, str] | None,
    status: int,
    **listing: object,
) -> Response:
    """Either page: the listing, the form (with what was typed and the problem, if refused),
    and a password or token to show once."""
    page = render_template(
        template,
        user=user,
        program=user.program,
        form=form,
        problem=problem,
        shown=shown,
        **listing,
    )
    return Response(page, status=status)
