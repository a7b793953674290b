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
from passes.webhooks.models import WebhookDelivery, WebhookEndpoint

TIMEOUT = 10.0
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0  # seconds, doubled per attempt, with jitter
BACKOFF_MAX = 6 * 3600.0
BATCH = 50
SIGNATURE_HEADER = "Loyalpass-Signature"
USER_AGENT = "loyalpass-webhooks/1"


class AddressRefused(ValueError):
    """The URL leads somewhere a shop's webhook may not point (or nowhere)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise AddressRefused unless ``url`` is https (http only with ``allow_private``) and every
    address its host resolves to is a public one (any, with ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise AddressRefused("the URL must start with https://")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("the URL must not carry a user name or password")
    if allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as exc:
        raise AddressRefused(f"{parts.hostname} does not resolve: {exc}") from exc
    for address in addresses:
        if not ipaddress.ip_address(str(address).split("%")[0]).is_global:
            raise AddressRefused(f"{parts.hostname} resolves to a non-public address ({address})")


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


@dataclass
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(
    session: Session,
    http: requests.Session,
    *,
    allow_private: bool = False,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Lease one batch of due deliveries, send them, record each outcome. Commits."""
    now = now or utcnow()
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
    )
    if session.connection().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(
        session.scalars(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=now + LEASE)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    report = DeliveryReport()
    if not ids:
        return report
    deliveries = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id)
    ).all()
    for delivery in deliveries:
        report.attempted += 1
        outcome = _send(delivery, delivery.endpoint, http, allow_private=allow_private, now=now)
        _record(delivery, outcome, now, rng)
        if delivery.status == "delivered":
            report.delivered += 1
        elif delivery.status == "failed":
            report.failed += 1
        else:
            report.retrying += 1
    session.commit()
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
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    http: requests.Session,
    *,
    allow_private: bool,
    now: datetime,
) -> _Outcome:
    if endpoint.disabled_at is not None:
        return _Outcome(None, "the endpoint was disabled", permanent=True)
    try:
        check_url(endpoint.url, allow_private=allow_private)
    except AddressRefused as exc:
        return _Outcome(None, str(exc))
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(now.timestamp())
    headers: dict[str, Any] = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Loyalpass-Event": delivery.event_type,
        "Loyalpass-Event-Id": delivery.event_id,
        "Loyalpass-Delivery": str(delivery.id),
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body),
    }
    try:
        response = http.post(
            endpoint.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}")
    response.close()
    if 200 <= response.status_code < 300:
        return _Outcome(response.status_code, None)
    return _Outcome(response.status_code, f"answered {response.status_code}")


def _record(
    delivery: WebhookDelivery, outcome: _Outcome, now: datetime, rng: random.Random | None
) -> None:
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error[:300] if outcome.error else None
    if outcome.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif outcome.permanent or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts, rng)
