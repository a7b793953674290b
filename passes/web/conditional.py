"""Conditional GET for passes: browsers and devices send back our ``Last-Modified`` (whole
seconds) as ``If-Modified-Since``; both pass routes decide 304 from it before any signing."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from flask import Response, request


def if_modified_since() -> datetime | None:
    """The request's ``If-Modified-Since`` as an aware datetime; None if absent or unreadable."""
    header = request.headers.get("If-Modified-Since")
    if not header:
        return None
    try:
        parsed = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None


def not_modified(last_modified: datetime) -> bool:
    """True when the client's copy is at least as new as ``last_modified`` (whole seconds)."""
    since = if_modified_since()
    return since is not None and last_modified.replace(microsecond=0) <= since


def mark_private(response: Response, last_modified: datetime) -> Response:
    """``Last-Modified`` and a cache policy that keeps a member's pass out of shared caches."""
    response.headers["Last-Modified"] = format_datetime(
        last_modified.replace(microsecond=0), usegmt=True
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response
