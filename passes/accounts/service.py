"""Creating staff users and signing them in, with a rate limit that outlives any one process.

Passwords are hashed with Werkzeug's scrypt (salted, memory-hard); a signed-in browser holds
the user's id and a stamp derived from the password hash, so changing a password or disabling
the user ends every session at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from passes.accounts.api_keys import issue_key
from passes.accounts.models import ROLES, SignInFailure, StaffUser
from passes.db import utcnow
from passes.loyalty.models import Program, Store
from passes.text import N_, Text

MIN_PASSWORD = 12
MAX_PASSWORD = 200
WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5  # within WINDOW, then sign-ins for that e-mail wait
FAILURES_PER_ADDRESS = 20  # within WINDOW, then sign-ins from that address wait
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Compared against when the e-mail is unknown, so both cases cost one scrypt.
_DUMMY_HASH = generate_password_hash("no such user, no such password")


class AccountError(ValueError):
    """A user that cannot be created as asked (the message is for the operator): ``text`` says
    why (``str()``: in English)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session,
    program: Program,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    store: Store | None = None,
) -> StaffUser:
    """A new user of ``program``; a clerk also gets a store key for the scanner. The caller
    commits."""
    email = normalise_email(email)
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise AccountError(Text(N_("%(email)s is not an e-mail address"), {"email": repr(email)}))
    if role not in ROLES:
        raise AccountError(
            Text(N_("the role must be one of %(roles)s"), {"roles": ", ".join(ROLES)})
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(
            Text(
                N_("the password must have %(least)s to %(most)s characters"),
                {"least": MIN_PASSWORD, "most": MAX_PASSWORD},
            )
        )
    if role == "clerk" and store is None:
        raise AccountError(Text(N_("a clerk works at a store: name it")))
    if store is not None and store.program_id != program.id:
        raise AccountError(Text(N_("the store belongs to another program")))
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise AccountError(Text(N_("there already is a user %(email)s"), {"email": email}))
    user = StaffUser(
        program_id=program.id,
        email=email,
        name=name.strip() or email,
        role=role,
        password_hash=generate_password_hash(password),
    )
    if role == "clerk" and store is not None:
        user.api_key_id = issue_key(
            session, program, role="store", name=f"clerk {email}"[:80], store=store
        ).record.id
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignInRefused(Exception):
    """Why a sign-in failed: ``status`` 422 (wrong e-mail or password) or 429 (wait)."""

    message: str
    status: int


def sign_in(
    session: Session, email: str, password: str, address: str, now: datetime | None = None
) -> StaffUser:
    """The user whose e-mail and password these are, or SignInRefused. Every attempt is
    recorded first (committed here); past the limits it is refused before any password check.
    The caller commits the outcome."""
    now = now or utcnow()
    email = normalise_email(email)[:254]
    address = address[:64]
    since = now - WINDOW
    session.execute(delete(SignInFailure).where(SignInFailure.at <= since))  # the window only
    # The attempt is recorded (and committed) before it is judged, so that parallel guesses
    # count each other; a successful one removes it again.
    session.add(SignInFailure(email=email, address=address, at=now))
    session.commit()
    by_email = session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.email == email, SignInFailure.at > since)
    )
    by_address = session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.address == address, SignInFailure.at > since)
    )
    if (by_email or 0) > FAILURES_PER_EMAIL or (by_address or 0) > FAILURES_PER_ADDRESS:
        raise SignInRefused(N_("Too many failed sign-ins. Try again in 15 minutes."), status=429)
    user = session.scalar(select(StaffUser).where(StaffUser.email == email))
    matches = check_password_hash(
        user.password_hash if user is not None else _DUMMY_HASH, password[:MAX_PASSWORD]
    )
    if user is None or not matches or user.disabled_at is not None:
        raise SignInRefused(N_("The e-mail or the password is wrong."), status=422)
    session.execute(delete(SignInFailure).where(SignInFailure.email == email))
    user.last_sign_in_at = now
    return user


def session_stamp(password_hash: str, secret: str | bytes) -> str:
    """What a signed-in browser keeps besides the user's id: it changes with the password."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def stamp_matches(password_hash: str, secret: str | bytes, stamp: object) -> bool:
    return isinstance(stamp, str) and hmac.compare_digest(
        session_stamp(password_hash, secret), stamp
    )


def disable(session: Session, user: StaffUser, now: datetime | None = None) -> None:
    """End the user's access: sessions at their next request, a clerk's store key at once."""
    now = now or utcnow()
    user.disabled_at = now
    if user.api_key is not None and user.api_key.revoked_at is None:
        user.api_key.revoked_at = now


def new_password() -> str:
    """A password for a person to type once and change: 20 random URL-safe characters."""
    return secrets.token_urlsafe(15)


def reset_password(session: Session, user: StaffUser) -> str:
    """Give ``user`` a new password (returned, to show once); their open sessions end at their
    next request (the session stamp no longer matches). The caller commits."""
    password = new_password()
    user.password_hash = generate_password_hash(password)
    return password
