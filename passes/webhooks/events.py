"""Webhook events: what happened, queued for each endpoint that subscribed to it.

Producers queue an event in their own transaction, so an event is delivered only if what it
tells of was committed. Balance and tier changes are not produced on the till's path: the
wallet outbox already marks every changed card (``hooks_pending``), and :func:`detect_changes`
compares those cards with what the endpoints were last told (``webhook_card_states``). Cards
of programs with no endpoint for those events only have their flag cleared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from passes.db import upsert_insert, utcnow
from passes.loyalty.models import Card, Program
from passes.push import outbox
from passes.webhooks.models import EVENT_TYPES, WebhookCardState, WebhookDelivery, WebhookEndpoint

LEASE = timedelta(seconds=60)
DETECT_BATCH = 1000


def endpoints_for(session: Session, program_id: int, event_type: str) -> list[WebhookEndpoint]:
    assert event_type in EVENT_TYPES, event_type
    return [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.program_id == program_id, WebhookEndpoint.disabled_at.is_(None)
            )
        )
        if event_type in endpoint.events
    ]


def queue_event(
    session: Session,
    program: Program,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
    endpoints: list[WebhookEndpoint] | None = None,
) -> int:
    """Queue one event for every endpoint of ``program`` subscribed to it; how many."""
    if endpoints is None:
        endpoints = endpoints_for(session, program.id, event_type)
    if not endpoints:
        return 0
    now = now or utcnow()
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": event_type,
        "created_at": now.isoformat(),
        "program": program.slug,
        "data": data,
    }
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(endpoints)


def card_data(card: Card) -> dict[str, Any]:
    return {
        "number": card.number,
        "member_email": card.member.email,
        "points_balance": card.points_balance,
        "tier": card.tier_key,
    }


@dataclass
class DetectReport:
    cards: int = 0
    events: int = 0


def detect_changes(session: Session, *, now: datetime | None = None) -> DetectReport:
    """One batch of changed cards: queue balance.changed / tier.changed where the endpoints'
    last view differs, remember the new view, clear the cards' ``hooks_pending`` (unless the
    card changed again meanwhile). Commits."""
    now = now or utcnow()
    claimed = outbox.claim(session, "hooks", now=now, limit=DETECT_BATCH, lease=LEASE)
    report = DetectReport(cards=len(claimed))
    if not claimed:
        return report
    revisions = {card_id: revision for card_id, revision, _attempts in claimed}
    rows = session.execute(
        select(Card, WebhookCardState.points_balance, WebhookCardState.tier_key)
        .join(Card.member)
        .outerjoin(WebhookCardState, WebhookCardState.card_id == Card.id)
        .where(Card.id.in_(list(revisions)))
    ).all()
    subscribed: dict[tuple[int, str], list[WebhookEndpoint]] = {}

    def emit(card: Card, event_type: str, data: dict[str, Any]) -> None:
        key = (card.program_id, event_type)
        if key not in subscribed:
            subscribed[key] = endpoints_for(session, card.program_id, event_type)
        report.events += queue_event(
            session, card.program, event_type, data, now=now, endpoints=subscribed[key]
        )

    listening = _programs_listening_to_cards(session)
    states: list[dict[str, Any]] = []
    forget: list[int] = []
    for card, old_balance, old_tier in rows:
        if card.program_id not in listening:
            forget.append(card.id)  # nobody to tell: no state to keep (it would go stale)
            continue
        seen = old_balance is not None
        if (seen and old_balance != card.points_balance) or (not seen and card.points_balance):
            emit(
                card, "balance.changed", {"card": card_data(card), "previous_balance": old_balance}
            )
        # A card never seen before: its balance started at 0, its tier at the entry tier.
        if (seen and old_tier != card.tier_key) or (
            not seen and card.tier_key != card.program.entry_tier()
        ):
            emit(card, "tier.changed", {"card": card_data(card), "previous_tier": old_tier})
        states.append(
            {"card_id": card.id, "points_balance": card.points_balance, "tier_key": card.tier_key}
        )
    if states:
        insert = upsert_insert(session.connection().dialect.name)
        remember = insert(WebhookCardState)
        session.execute(
            remember.on_conflict_do_update(
                index_elements=[WebhookCardState.card_id],
                set_={
                    "points_balance": remember.excluded.points_balance,
                    "tier_key": remember.excluded.tier_key,
                },
            ),
            states,
        )
    if forget:
        session.execute(delete(WebhookCardState).where(WebhookCardState.card_id.in_(forget)))
    session.connection().execute(
        _DONE, [{"b_card": card_id, "b_revision": rev} for card_id, rev in revisions.items()]
    )
    session.commit()
    return report


def _programs_listening_to_cards(session: Session) -> set[int]:
    """Programs with an active endpoint for balance or tier changes (few rows: a handful of
    endpoints per program that uses them at all)."""
    return {
        endpoint.program_id
        for endpoint in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None))
        )
        if {"balance.changed", "tier.changed"} & set(endpoint.events)
    }


_DONE = outbox.settled("hooks")


def card_installed(session: Session, card_id: int, wallet: str, installed: bool) -> int:
    """card.installed / card.removed for ``card_id`` (in the caller's transaction)."""
    card = session.scalar(select(Card).join(Card.member).where(Card.id == card_id))
    if card is None:
        return 0
    event_type = "card.installed" if installed else "card.removed"
    return queue_event(
        session, card.program, event_type, {"card": card_data(card), "wallet": wallet}
    )


def campaign_finished(session: Session, program: Program, data: dict[str, Any]) -> int:
    return queue_event(session, program, "campaign.finished", data)


__all__ = [
    "DetectReport",
    "campaign_finished",
    "card_data",
    "card_installed",
    "detect_changes",
    "endpoints_for",
    "queue_event",
]
