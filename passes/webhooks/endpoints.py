"""A program's webhook endpoints: adding one (its secret is shown once), disabling one, and
the recent deliveries for the log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.loyalty.models import Program
from passes.text import N_, Text
from passes.webhooks.delivery import AddressRefused, check_url
from passes.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint

MAX_ENDPOINTS = 10
LOG_SIZE = 100


class EndpointError(ValueError):
    """An endpoint that cannot be added: ``field`` names the form field, ``text`` what is wrong
    (``message``: the same in English)."""

    def __init__(self, field: str, text: Text) -> None:
        self.field = field
        self.text = text
        self.message = str(text)
        super().__init__(self.message)


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown to the user once


def add_endpoint(
    session: Session,
    program: Program,
    *,
    url: str,
    events: list[str],
    created_by: str,
    allow_private: bool,
) -> NewEndpoint:
    """Check and add an endpoint; the caller commits and shows the secret once."""
    url = url.strip()
    if not url or len(url) > 500:
        raise EndpointError("url", Text(N_("Enter the https:// address that receives the events.")))
    try:
        check_url(url, allow_private=allow_private)
    except AddressRefused as exc:
        raise EndpointError(
            "url", Text(N_("This address cannot be used: %(reason)s."), {"reason": exc.text})
        ) from exc
    chosen = [event for event in EVENT_TYPES if event in events]
    if not chosen or len(chosen) != len(set(events)):
        raise EndpointError("events", Text(N_("Choose at least one of the events listed.")))
    active = [e for e in endpoints(session, program) if e.disabled_at is None]
    if len(active) >= MAX_ENDPOINTS:
        raise EndpointError(
            "url",
            Text(N_("A program can have at most %(most)s endpoints."), {"most": MAX_ENDPOINTS}),
        )
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        program_id=program.id,
        url=url,
        secret=secret,
        events=chosen,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    return NewEndpoint(endpoint, secret)


def endpoints(session: Session, program: Program) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.program_id == program.id)
            .order_by(WebhookEndpoint.id)
        )
    )


def disable(session: Session, program: Program, endpoint_id: int) -> bool:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.program_id != program.id:
        return False
    if endpoint.disabled_at is None:
        endpoint.disabled_at = utcnow()
    return True


def recent_deliveries(session: Session, program: Program) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .join(WebhookDelivery.endpoint)
            .where(WebhookEndpoint.program_id == program.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(LOG_SIZE)
        )
    )
