"""Deliver pending Apple wallet updates from the outbox: one push per device token per batch.

A batch is claimed by setting a lease (``apple_not_before``) in its own short transaction, so
several worker processes never take the same rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite serialises writers) and no lock is held while pushing. A row is cleared only after APNs
answered 200 for every device holding the card, or the device is gone, and only if no newer
change arrived meanwhile (``revision``). A crash before the acknowledgement lets the lease lapse:
that batch is pushed again, nothing is lost.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from passes.db import utcnow
from passes.loyalty.models import WalletUpdate
from passes.push import outbox
from passes.push.apns import PushResult
from passes.push.models import AppleDevice, AppleRegistration
from passes.webhooks.events import card_installed

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BACKOFF_BASE = 2.0  # seconds; doubled per failed attempt, with full jitter
BACKOFF_MAX = 600.0
PAUSE_AFTER_FORBIDDEN = timedelta(minutes=5)
# Answers that mean this device token will never work: forget the device.
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})


def is_stop(result: PushResult) -> bool:
    """Certificate, token or topic problems: every push would fail the same way. Stop sending,
    keep everything pending, and say so once."""
    if result.status == 403:
        return True
    return result.status in (400, 404, 405) and result.reason not in DEAD_TOKEN_REASONS


class Pusher(Protocol):
    def send(self, tokens: list[str]) -> list[PushResult]: ...


@dataclass
class AppleDeliveryReport:
    claimed: int = 0
    pushed: int = 0  # distinct tokens answered 200
    delivered: int = 0  # outbox rows cleared
    retrying: int = 0
    removed_devices: int = 0
    stopped: str | None = None  # a 403 reason: sending is paused


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter: uniformly up to base * 2^attempts (capped)."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(attempts, 20))
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


def claim(session: Session, *, now: datetime, limit: int) -> list[tuple[int, int, int]]:
    """Lease up to ``limit`` due Apple rows: (card id, revision, attempts). Commits."""
    return outbox.claim(session, "apple", now=now, limit=limit, lease=LEASE)


def deliver_apple_updates(
    maker: sessionmaker[Session],
    pusher: Pusher,
    *,
    limit: int = 1000,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> AppleDeliveryReport:
    """Claim one batch, push, acknowledge. Returns what happened (for logs and tests)."""
    now = now or utcnow()
    report = AppleDeliveryReport()
    with maker() as session:
        claimed = claim(session, now=now, limit=limit)
        report.claimed = len(claimed)
        if not claimed:
            return report
        card_ids = [card_id for card_id, _revision, _attempts in claimed]
        holders = session.execute(
            select(AppleRegistration.card_id, AppleDevice.push_token)
            .join(AppleDevice, AppleDevice.id == AppleRegistration.device_id)
            .where(AppleRegistration.card_id.in_(card_ids))
        ).all()
    tokens_of: dict[int, set[str]] = defaultdict(set)
    for card_id, token in holders:
        tokens_of[card_id].add(token)
    tokens = sorted({token for token_set in tokens_of.values() for token in token_set})

    results = pusher.send(tokens) if tokens else []
    by_token = {result.token: result for result in results}
    forbidden = next((r for r in results if is_stop(r)), None)

    with maker() as session:
        if forbidden is not None:
            report.stopped = f"{forbidden.status} {forbidden.reason or 'no reason given'}"
            # Nothing is acknowledged: every claimed row stays pending, released for later.
            _release(session, card_ids, now + PAUSE_AFTER_FORBIDDEN)
            session.commit()
            return report
        gone = _remove_dead_tokens(session, results)
        report.removed_devices = gone
        report.pushed = sum(1 for r in results if r.status == 200)
        delivered: list[dict[str, Any]] = []
        retrying: list[dict[str, Any]] = []
        for card_id, revision, attempts in claimed:
            outcomes = [by_token.get(token) for token in tokens_of.get(card_id, ())]
            if all(o is not None and not o.retryable for o in outcomes):
                delivered.append({"b_card": card_id, "b_revision": revision})
            else:
                retrying.append(
                    {
                        "b_card": card_id,
                        "b_not_before": now + backoff(attempts, rng),
                        "b_attempts": attempts + 1,
                    }
                )
        # One executemany each (pipelined by the driver), not a statement per card.
        connection = session.connection()
        if delivered:
            connection.execute(_DELIVERED, delivered)
        if retrying:
            connection.execute(_RETRYING, retrying)
        report.delivered, report.retrying = len(delivered), len(retrying)
        session.commit()
    return report


_OUTBOX = cast(Table, WalletUpdate.__table__)
_DELIVERED = outbox.settled("apple")
_RETRYING = (
    update(_OUTBOX)
    .where(_OUTBOX.c.card_id == bindparam("b_card"))
    .values(apple_not_before=bindparam("b_not_before"), apple_attempts=bindparam("b_attempts"))
)


def _release(session: Session, card_ids: list[int], not_before: datetime) -> None:
    session.execute(
        update(WalletUpdate)
        .where(WalletUpdate.card_id.in_(card_ids))
        .values(apple_not_before=not_before)
    )


def _remove_dead_tokens(session: Session, results: list[PushResult]) -> int:
    """410: drop the token's devices unless they registered again after APNs's timestamp.
    400 BadDeviceToken: drop them. Their registrations go with them (cascade), each announced
    as ``card.removed`` as if the device had unregistered the pass itself."""
    removed = 0
    for result in results:
        if result.status == 410:
            since = (
                datetime.fromtimestamp(result.timestamp_ms / 1000, UTC)
                if result.timestamp_ms is not None
                else utcnow()
            )
            condition = and_(
                AppleDevice.push_token == result.token, AppleDevice.registered_at <= since
            )
        elif result.status == 400 and result.reason in DEAD_TOKEN_REASONS:
            condition = AppleDevice.push_token == result.token
        else:
            continue
        held = session.scalars(
            select(AppleRegistration.card_id)
            .join(AppleDevice, AppleDevice.id == AppleRegistration.device_id)
            .where(condition)
        ).all()
        removed += session.execute(delete(AppleDevice).where(condition)).rowcount or 0  # type: ignore[attr-defined]
        for card_id in held:
            card_installed(session, card_id, "apple", installed=False)
    return removed
