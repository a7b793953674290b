"""Who a staff browser's session belongs to: a console user (e-mail and password), and for the
scanner a store key (a clerk's own, or one typed in on the scanner's sign-in page)."""

from __future__ import annotations

import time
from datetime import datetime

from flask import current_app, session
from sqlalchemy import Connection, bindparam, select

from passes.accounts.models import StaffUser
from passes.accounts.service import stamp_matches
from passes.web.context import db

USER_KEY = "console_user"
STAMP_KEY = "console_stamp"
SIGNED_IN_KEY = "console_signed_in_at"  # Unix time of the sign-in
STAFF_SESSION_KEY = "staff_api_key_id"  # the store key the scanner page acts through


def signed_in_user() -> StaffUser | None:
    """The user of this browser's session while it is still theirs: a disabled user, or one
    whose password changed since, ends the whole session (scanner included)."""
    user_id = session.get(USER_KEY)
    if user_id is None:
        return None
    user = db().get(StaffUser, user_id) if isinstance(user_id, int) else None
    if user is None or not _still_valid(user.disabled_at, user.password_hash):
        session.clear()
        return None
    return user


def user_session_lapsed(connection: Connection | None = None) -> bool:
    """True when this session was a user's and is no longer (it has just been cleared). Read
    through ``connection`` when the route works on one rather than the session."""
    user_id = session.get(USER_KEY)
    if user_id is None:
        return False
    if connection is None:
        return signed_in_user() is None
    row = (
        connection.execute(_USER_STATE, {"user_id": user_id}).first()
        if isinstance(user_id, int)
        else None
    )
    if row is None or not _still_valid(row.disabled_at, row.password_hash):
        session.clear()
        return True
    return False


def _still_valid(disabled_at: datetime | None, password_hash: str) -> bool:
    """Not disabled, the same password, and signed in less than CONSOLE_SESSION_HOURS ago
    (however active: the cookie is re-sent on every request, the sign-in time is not)."""
    secret = current_app.config["SECRET_KEY"]
    signed_in = session.get(SIGNED_IN_KEY)
    lifetime = float(current_app.config["CONSOLE_SESSION_HOURS"]) * 3600
    return (
        disabled_at is None
        and isinstance(signed_in, int)
        and 0 <= time.time() - signed_in < lifetime
        and stamp_matches(password_hash, secret, session.get(STAMP_KEY))
    )


_USER_STATE = select(StaffUser.disabled_at, StaffUser.password_hash).where(
    StaffUser.id == bindparam("user_id")
)
