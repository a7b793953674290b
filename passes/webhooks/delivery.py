"""Sending webhook deliveries: signed POSTs, retried with backoff, every attempt logged.

Each delivery is a JSON body signed with the endpoint's secret, Stripe-style, so receivers can
check it and refuse replays: ``Loyalpass-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``. A 2xx answer delivers; anything else (or no answer in TIMEOUT) is retried
with exponential backoff and jitter, MAX_ATTEMPTS times in all, then the delivery is marked
failed. Due deliveries are leased in a short transaction of their own (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), so several workers share the work and none holds a lock while it
waits for a shop's server.

Endpoints are the shops' URLs, so the sender refuses to reach loopback, private or link-local
addresses (cloud metadata services among them) unless ``allow_private`` is set for development.
The check resolves the name just before each send; a name that resolves differently a moment
later (DNS rebinding) is not caught: run the workers where such addresses are firewalled off
if shops you do not trust add endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.text import N_, Text
from passes.webhooks.models import WebhookDelivery, WebhookEndpoint

CONNECT_TIMEOUT = 5.0
TIMEOUT = 10.0  # for each read of the answer's headers
BATCH = 10
# Longer than the slowest batch can take, so that no other worker sends these again meanwhile.
LEASE = timedelta(seconds=BATCH * (CONNECT_TIMEOUT + TIMEOUT) + 60)
MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0  # seconds, doubled per attempt, with jitter
BACKOFF_MAX = 6 * 3600.0
SIGNATURE_HEADER = "Loyalpass-Signature"
USER_AGENT = "loyalpass-webhooks/1"


_WRAPPING = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("2002::/16"))


class AddressRefused(ValueError):
    """The URL leads somewhere a shop's webhook may not point (or nowhere); ``text`` says why
    (``str()``: in English)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise AddressRefused unless ``url`` is https (http only with ``allow_private``) and every
    address its host resolves to is a public one (any, with ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise AddressRefused(Text(N_("the URL must start with https://")))
    if not parts.hostname:
        raise AddressRefused(Text(N_("the URL has no host")))
    if parts.username or parts.password:
        raise AddressRefused(Text(N_("the URL must not carry a user name or password")))
    if allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as exc:
        raise AddressRefused(
            Text(N_("%(host)s does not resolve: %(error)s"), {"host": parts.hostname, "error": exc})
        ) from exc
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        # NAT64 and 6to4 addresses count as global but can wrap a private IPv4 one.
        if not ip.is_global or any(ip in network for network in _WRAPPING):
            raise AddressRefused(
                Text(
                    N_("%(host)s resolves to a non-public address (%(address)s)"),
                    {"host": parts.hostname, "address": address},
                )
            )


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


@dataclass
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Leased:
    """What sending one delivery needs, read before any request goes out (no transaction is
    held while a shop's server takes its time)."""

    id: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str
    disabled: bool


def deliver_due(
    session: Session,
    http: requests.Session,
    *,
    allow_private: bool = False,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Lease one batch of due deliveries, send them one by one, record each outcome as it
    comes (only if this worker's lease still holds: a lapsed lease means another worker has the
    delivery now). ``now`` fixes the clock, for tests; otherwise each send reads it."""
    claimed_at = now or utcnow()
    lease_until = claimed_at + LEASE
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= claimed_at)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
    )
    if session.connection().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(
        session.scalars(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=lease_until)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    report = DeliveryReport()
    if not ids:
        return report
    leased = [
        _Leased(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] is not None)
        for row in session.execute(
            # Columns, not entities: the session may hold stale copies of these rows.
            select(
                WebhookDelivery.id,
                WebhookDelivery.event_id,
                WebhookDelivery.event_type,
                WebhookDelivery.payload,
                WebhookDelivery.attempts,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookEndpoint.disabled_at,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.id)
        )
    ]
    session.commit()  # nothing held while we wait for the shops' servers
    for delivery in leased:
        moment = now or utcnow()
        outcome = _send(delivery, http, allow_private=allow_private, moment=moment)
        status = _record(session, delivery, outcome, moment, lease_until, rng)
        session.commit()
        report.attempted += 1
        if status == "delivered":
            report.delivered += 1
        elif status == "failed":
            report.failed += 1
        elif status == "pending":
            report.retrying += 1
    return report


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    permanent: bool = False  # no point in retrying

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _send(
    delivery: _Leased, http: requests.Session, *, allow_private: bool, moment: datetime
) -> _Outcome:
    if delivery.disabled:
        return _Outcome(None, "the endpoint was disabled", permanent=True)
    try:
        check_url(delivery.url, allow_private=allow_private)
    except AddressRefused as exc:
        return _Outcome(None, str(exc))
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers: dict[str, Any] = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Loyalpass-Event": delivery.event_type,
        "Loyalpass-Event-Id": delivery.event_id,
        "Loyalpass-Delivery": str(delivery.id),
        SIGNATURE_HEADER: signature(delivery.secret, int(moment.timestamp()), body),
    }
    try:
        # The answer's body is never read: only the status counts, and a large or slow body
        # must not hold the worker.
        with http.post(
            delivery.url,
            data=body,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, TIMEOUT),
            allow_redirects=False,
            stream=True,
        ) as response:
            status_code = response.status_code
    except requests.RequestException as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}")
    if 200 <= status_code < 300:
        return _Outcome(status_code, None)
    return _Outcome(status_code, f"answered {status_code}")


def _record(
    session: Session,
    delivery: _Leased,
    outcome: _Outcome,
    moment: datetime,
    lease_until: datetime,
    rng: random.Random | None,
) -> str | None:
    """Write the outcome if our lease still holds; the new status, or None if it lapsed."""
    attempts = delivery.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:300] if outcome.error else None,
    }
    if outcome.ok:
        values.update(status="delivered", delivered_at=moment)
    elif outcome.permanent or attempts >= MAX_ATTEMPTS:
        values.update(status="failed")
    else:
        values.update(status="pending", next_attempt_at=moment + backoff(attempts, rng))
    written = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at == lease_until,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return str(values["status"]) if written.rowcount else None  # type: ignore[attr-defined]
