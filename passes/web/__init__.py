"""Thin blueprints, one per kind of user: parse the request, call the domain, render."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from passes.text import N_
from passes.web.api.problems import problem_response
from passes.web.context import app_state, close_db
from passes.web.labels import label

# The error pages' titles and what they say when the error itself says nothing more.
ERROR_PAGES = {
    400: (N_("Bad request"), N_("This request could not be understood.")),
    403: (N_("Not allowed"), N_("This page is not open to you.")),
    404: (N_("Not found"), N_("There is nothing at this address.")),
    405: (N_("Method not allowed"), N_("This page cannot be used this way.")),
    413: (N_("Too large"), N_("What was sent is too large.")),
    500: (N_("Something went wrong"), N_("Please try again in a few minutes.")),
    503: (N_("Not available right now"), N_("Please try again in a few minutes.")),
}
FORM_EXPIRED = N_("This form expired or came from another site. Reload the page and try again.")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def register_web(app: Flask) -> None:
    """Blueprints, error pages, security headers and per-request clean-up."""
    from passes.web import console_analytics as _analytics  # noqa: F401  (console routes)
    from passes.web import console_campaigns as _campaigns  # noqa: F401  (console routes)
    from passes.web import console_design as _design  # noqa: F401  (console routes)
    from passes.web import console_members as _members  # noqa: F401  (console routes)
    from passes.web import console_people as _people  # noqa: F401  (console routes)
    from passes.web import console_webhooks as _webhooks  # noqa: F401  (console routes)
    from passes.web.api import programs as _programs  # noqa: F401  (routes on the till blueprint)
    from passes.web.api.openapi import docs
    from passes.web.api.till import till
    from passes.web.console import console
    from passes.web.google_callbacks import google_callbacks
    from passes.web.passkit import passkit
    from passes.web.public import public
    from passes.web.store import store

    app.register_blueprint(public)
    app.register_blueprint(till)
    app.register_blueprint(store)
    app.register_blueprint(console)
    app.register_blueprint(docs)
    app.register_blueprint(passkit)
    app.register_blueprint(google_callbacks)
    # Token-authenticated JSON: no cookies, so no CSRF tokens.
    app.extensions["csrf"].exempt(till)
    app.extensions["csrf"].exempt(passkit)  # devices authenticate with the pass token
    app.extensions["csrf"].exempt(google_callbacks)  # Google signs its messages
    app.teardown_appcontext(close_db)
    app.jinja_env.globals["label"] = label  # a stored value's words in the page's language

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness for load balancers: answers without touching the database."""
        return Response("ok\n", mimetype="text/plain")

    @app.context_processor
    def _globals() -> dict[str, object]:
        return {"development_certificates": app_state().development_certificates}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Card pages carry their credential in the URL: never leak it through Referer.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if app.config["PUBLIC_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    for code, (title, detail) in ERROR_PAGES.items():
        app.register_error_handler(code, _error_page(code, title, detail))


def _error_page(
    code: int, title: str, detail: str
) -> Callable[[Exception], Response | tuple[str, int]]:
    """HTML for people, in their language; problem+json (English) for anything under /api/,
    whatever failed."""

    def handler(error: Exception) -> Response | tuple[str, int]:
        description = getattr(error, "description", "") if code != 500 else ""
        if request.path.startswith(("/api/", "/passkit/")):
            return problem_response(code, f"http_{code}", description or title)
        # Werkzeug's own description is English only: the page says its own instead. Ours
        # (abort(…, description=N_(…))) are in the catalogues.
        default = isinstance(error, HTTPException) and description == type(error).description
        shown = detail if default or not description else description
        page = render_template("error.html", code=code, title=gettext(title), detail=gettext(shown))
        return page, code

    return handler
