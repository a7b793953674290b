"""Console pages for webhooks: a program's endpoints (added with a secret shown once,
disabled), and the log of recent deliveries. Admins of the program: endpoints carry secrets."""

from __future__ import annotations

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.web.console import console, staff_page
from passes.web.context import db
from passes.web.i18n import translate
from passes.webhooks.delivery import MAX_ATTEMPTS, SIGNATURE_HEADER
from passes.webhooks.endpoints import (
    EndpointError,
    NewEndpoint,
    add_endpoint,
    disable,
    endpoints,
    recent_deliveries,
)
from passes.webhooks.models import EVENT_TYPES


@console.get("/<slug>/webhooks")
@staff_page("admin")
def webhooks(slug: str, user: StaffUser) -> BaseResponse:
    return _page(user, form={}, errors={}, created=None, status=200)


@console.post("/<slug>/webhooks")
@staff_page("admin")
def add_webhook(slug: str, user: StaffUser) -> BaseResponse:
    form = {"url": request.form.get("url", "")}
    chosen = request.form.getlist("events")
    try:
        created = add_endpoint(
            db(),
            user.program,
            url=form["url"],
            events=chosen,
            created_by=user.email,
            allow_private=bool(current_app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"]),
        )
    except EndpointError as exc:
        db().rollback()
        return _page(user, form, {exc.field: translate(exc.text)}, None, 422, chosen)
    db().commit()
    return _page(user, form={}, errors={}, created=created, status=201)


@console.post("/<slug>/webhooks/<int:endpoint_id>/disable")
@staff_page("admin")
def disable_webhook(slug: str, endpoint_id: int, user: StaffUser) -> BaseResponse:
    if not disable(db(), user.program, endpoint_id):
        abort(404)
    db().commit()
    return redirect(url_for("console.webhooks", slug=slug), 303)


def _page(
    user: StaffUser,
    form: dict[str, str],
    errors: dict[str, str],
    created: NewEndpoint | None,
    status: int,
    chosen: list[str] | None = None,
) -> Response:
    page = render_template(
        "console_webhooks.html",
        user=user,
        program=user.program,
        endpoints=endpoints(db(), user.program),
        deliveries=recent_deliveries(db(), user.program),
        event_types=EVENT_TYPES,
        chosen=chosen if chosen is not None else list(EVENT_TYPES),
        form=form,
        errors=errors,
        created=created,
        signature_header=SIGNATURE_HEADER,
        max_attempts=MAX_ATTEMPTS,
    )
    return Response(page, status=status)
