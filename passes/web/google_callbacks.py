"""Google Wallet's save and delete callbacks (``POST PUBLIC_URL/google/callbacks``).

Google calls this, not people, and proves it by signature (no cookie, no token): the body is
verified against Google's root keys before anything is written. Answers: 200 once applied (or a
duplicate, or about an object we no longer have, so Google stops retrying); 400 with the reason
for anything that does not verify; 503 when Google's keys cannot be had (Google retries).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, jsonify, request

from passes.db import utcnow
from passes.push.google_saves import record_wallet_event
from passes.wallet.google.callback_keys import KeysUnavailable
from passes.wallet.google.callbacks import (
    MAX_BODY,
    CallbackRejected,
    UnknownRootKey,
    WalletEvent,
    verify_callback,
)
from passes.wallet.google.issuer import CALLBACK_PATH, GoogleIssuer
from passes.web.api.problems import Problem
from passes.web.context import app_state, db

google_callbacks = Blueprint("google_callbacks", __name__)
log = logging.getLogger("passes.google.callbacks")


@google_callbacks.errorhandler(Problem)
def _problem(error: Problem) -> Response:
    db().rollback()
    return error.response()


def _verified(google: GoogleIssuer, body: bytes) -> tuple[WalletEvent, datetime]:
    """The callback's event, and the time it was judged by; one early refetch of Google's
    keys if ours do not verify it (Google may have rotated them)."""
    keys = google.callback_keys.current()
    now = utcnow()
    try:
        return verify_callback(body, issuer_id=google.issuer_id, root_keys=keys, now=now), now
    except UnknownRootKey:
        if not google.callback_keys.refetch():
            raise
    keys = google.callback_keys.current()
    now = utcnow()
    return verify_callback(body, issuer_id=google.issuer_id, root_keys=keys, now=now), now


@google_callbacks.post(CALLBACK_PATH)
def receive() -> Response:
    google = app_state().google
    if google is None:
        raise Problem(404, "google_wallet_off", "Google Wallet is not configured here")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "too_large", f"a callback is at most {MAX_BODY} bytes")
    body = request.stream.read(MAX_BODY + 1)  # a chunked body names no length
    if len(body) > MAX_BODY:
        raise Problem(413, "too_large", f"a callback is at most {MAX_BODY} bytes")
    try:
        event, now = _verified(google, body)
    except KeysUnavailable as exc:
        log.error("cannot verify a Google Wallet callback: %s", exc)
        raise Problem(503, "keys_unavailable", "Google's signing keys are unavailable") from exc
    except CallbackRejected as exc:
        log.warning("refused a Google Wallet callback: %s", exc)
        raise Problem(400, "bad_callback", f"not a valid Google Wallet callback: {exc}") from exc
    session = db()
    outcome = record_wallet_event(session, event, now=now)
    session.commit()
    log.info("Google Wallet %s of %s: %s", event.event_type, event.object_id, outcome)
    return jsonify(outcome=outcome)
