"""Which cards members keep in Google Wallet, from Google's verified save/delete callbacks.

Google delivers each callback at least once, in no promised order. A nonce seen before is a
duplicate; a callback older (by its expiry stamp) than the one already applied is stale. Only a
change of state queues a ``card.installed`` / ``card.removed`` webhook, in the same transaction.
A card deleted from Google Wallet is no longer kept current there (see
:func:`passes.push.google_sender.forget_cards_without_objects`); saving it again queues it, and
asking for the save link again brings its object up to date before the member saves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from passes.db import upsert_insert
from passes.push.google_objects import queue_google_update
from passes.push.models import GoogleCallbackNonce, GoogleObject
from passes.wallet.google.callbacks import WalletEvent
from passes.webhooks.events import card_installed

__all__ = ["Outcome", "forget_expired_nonces", "record_wallet_event"]

Outcome = Literal["applied", "unchanged", "duplicate", "stale", "unknown_object"]


def _first_sight(session: Session, event: WalletEvent) -> bool:
    """Remember the nonce; False if it was already there."""
    insert = upsert_insert(session.connection().dialect.name)
    inserted = session.execute(
        insert(GoogleCallbackNonce)
        .values(nonce=event.nonce, expires_at=event.expires_at)
        .on_conflict_do_nothing(index_elements=[GoogleCallbackNonce.nonce])
        .returning(GoogleCallbackNonce.nonce)
    ).first()
    return inserted is not None


def record_wallet_event(session: Session, event: WalletEvent, *, now: datetime) -> Outcome:
    """Apply one verified callback (not committed): what came of it.

    Callbacks are ordered by their expiry stamp, on the understanding that Google stamps a
    message when it first sends it and a redelivery is the same message (same nonce, same
    stamp). Two stamps in the same millisecond put a deletion last, whatever their arrival
    order, so two workers can never end up disagreeing."""
    if not _first_sight(session, event):
        return "duplicate"
    known = session.scalar(
        select(GoogleObject).where(GoogleObject.object_id == event.object_id).with_for_update()
    )
    if known is None:
        return "unknown_object"  # not ours any more (a deleted card), or never was
    if known.event_expires_at is not None and (event.expires_at, not event.saved) < (
        known.event_expires_at,
        known.in_wallet is False,
    ):
        return "stale"
    known.event_expires_at = event.expires_at
    if event.saved:
        known.saved_at = now
    else:
        known.deleted_at = now
    if known.in_wallet is event.saved:
        return "unchanged"
    if event.saved and known.in_wallet is False:
        # Its updates were dropped while it was deleted: bring the object up to date (the
        # member may have saved it from an old link, without asking us for a new one).
        queue_google_update(session, known.card_id)
    known.in_wallet = event.saved
    card_installed(session, known.card_id, "google", installed=event.saved)
    return "applied"


def forget_expired_nonces(session: Session, *, now: datetime) -> int:
    """Drop the nonces of callbacks that have expired (a replay fails its expiry check
    anyway); how many. Not committed."""
    result = session.execute(
        delete(GoogleCallbackNonce).where(GoogleCallbackNonce.expires_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
