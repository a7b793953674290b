"""Apple's PassKit web service, under the passes' ``webServiceURL`` (``PUBLIC_URL/passkit``).

Devices call it, not people: registrations, "which of my passes changed since <tag>", the latest
pass, and device logs. Paths and status codes are Apple's; errors also carry a problem+json body
for whoever debugs them. A pass download answers 304 before anything is signed.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from passes.loyalty.models import Card
from passes.loyalty.view import card_view
from passes.push.registrations import (
    PassCredentials,
    parse_tag,
    pass_credentials,
    register,
    unregister,
    updated_since,
)
from passes.web.api.problems import Problem, problem_response
from passes.web.conditional import mark_private, not_modified
from passes.web.context import app_state, db, read_connection
from passes.webhooks.events import card_installed

passkit = Blueprint("passkit", __name__, url_prefix="/passkit/v1")
log = logging.getLogger("passes.passkit")
device_log = logging.getLogger("passes.passkit.device")

DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
PUSH_TOKEN = re.compile(r"[0-9A-Fa-f]{16,200}")
MAX_REGISTRATION_BODY = 4096
MAX_LOG_BODY = 64 * 1024
MAX_LOG_LINES = 50
MAX_LOG_LINE = 1000
LOG_REQUESTS_PER_MINUTE = 30


@passkit.errorhandler(Problem)
def _problem(error: Problem) -> Response:
    db().rollback()
    response = error.response()
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'ApplePass realm="loyalpass"'
    return response


@passkit.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return problem_response(status, f"http_{status}", error.description or "")


def _pass_type(pass_type: str) -> None:
    issuer = app_state().apple
    if issuer is None or pass_type != issuer.identity.pass_type_identifier:
        raise Problem(404, "unknown_pass_type", f"this service does not serve {pass_type[:80]!r}")


def _authorized(pass_type: str, serial: str) -> PassCredentials:
    """The pass, if the request's ``ApplePass`` token is its own (compared in constant time)."""
    _pass_type(pass_type)
    credentials = pass_credentials(read_connection(), serial) if len(serial) <= 64 else None
    if credentials is None:
        raise Problem(404, "unknown_pass", "there is no such pass")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "ApplePass" or not hmac.compare_digest(
        token.strip().encode(), credentials.authentication_token.encode()
    ):
        raise Problem(
            401, "unauthorized", "send the pass's token as 'Authorization: ApplePass <token>'"
        )
    return credentials


def _device(device: str) -> str:
    if not DEVICE_ID.fullmatch(device):
        raise Problem(400, "bad_device", "the device library identifier is malformed")
    return device


def _json_body(limit: int) -> object:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "too_large", f"the body may be at most {limit} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise Problem(413, "too_large", f"the body may be at most {limit} bytes")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc


@passkit.post("/devices/<device>/registrations/<pass_type>/<serial>")
def register_device(device: str, pass_type: str, serial: str) -> Response:
    credentials = _authorized(pass_type, serial)
    _device(device)
    body = _json_body(MAX_REGISTRATION_BODY)
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    if not isinstance(push_token, str) or not PUSH_TOKEN.fullmatch(push_token):
        raise Problem(400, "bad_push_token", 'send {"pushToken": "<hex token>"}')
    session = db()
    created = register(session, device, push_token.lower(), credentials.card_id)
    if created:
        card_installed(session, credentials.card_id, "apple", installed=True)
    session.commit()
    return Response(status=201 if created else 200)


@passkit.delete("/devices/<device>/registrations/<pass_type>/<serial>")
def unregister_device(device: str, pass_type: str, serial: str) -> Response:
    credentials = _authorized(pass_type, serial)
    _device(device)
    session = db()
    if unregister(session, device, credentials.card_id):
        card_installed(session, credentials.card_id, "apple", installed=False)
    session.commit()
    return Response(status=200)


@passkit.get("/devices/<device>/registrations/<pass_type>")
def updated_serials(device: str, pass_type: str) -> Response:
    _pass_type(pass_type)
    _device(device)
    since = parse_tag(request.args.get("passesUpdatedSince"))
    serials, tag = updated_since(read_connection(), device, since)
    if not serials:
        return Response(status=204)
    return Response(
        json.dumps({"serialNumbers": serials, "lastUpdated": tag}), mimetype="application/json"
    )


@passkit.get("/passes/<pass_type>/<serial>")
def latest_pass(pass_type: str, serial: str) -> Response:
    credentials = _authorized(pass_type, serial)
    if not_modified(credentials.updated_at):
        return mark_private(Response(status=304), credentials.updated_at)
    issuer = app_state().apple
    card = db().get(Card, credentials.card_id)
    if issuer is None or card is None:  # issuer checked in _pass_type; card just read
        raise Problem(404, "unknown_pass", "there is no such pass")
    view = card_view(card)
    response = Response(issuer.build(view), mimetype="application/vnd.apple.pkpass")
    return mark_private(response, view.updated_at)


class _RateLimit:
    """Requests per minute per client address, in this process (device logs are best effort)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        minute = int(time.monotonic() // 60)
        with self._lock:
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == minute}
            window, count = self._windows.get(client, (minute, 0))
            if window != minute:
                window, count = minute, 0
            self._windows[client] = (window, count + 1)
            return count < self.per_minute


@passkit.post("/log")
def device_logs() -> Response:
    limit = current_app.extensions.setdefault(
        "passkit_log_limit", _RateLimit(LOG_REQUESTS_PER_MINUTE)
    )
    if not limit.allow(request.remote_addr or "?"):
        raise Problem(429, "rate_limited", f"at most {LOG_REQUESTS_PER_MINUTE} log posts a minute")
    body = _json_body(MAX_LOG_BODY)
    logs = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(logs, list) or not all(isinstance(line, str) for line in logs):
        raise Problem(400, "bad_logs", 'send {"logs": ["message", ...]}')
    for line in logs[:MAX_LOG_LINES]:
        device_log.warning("device: %s", line[:MAX_LOG_LINE].replace("\n", " "))
    if len(logs) > MAX_LOG_LINES:
        device_log.warning("device: %d more lines dropped", len(logs) - MAX_LOG_LINES)
    return Response(status=200)
