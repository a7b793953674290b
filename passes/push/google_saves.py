"""Which cards members keep in Google Wallet, from Google's verified save/delete callbacks.

Google delivers each callback at least once, in no promised order. A nonce seen before is a
duplicate; a callback older (by its expiry stamp) than the one already applied is stale. Only a
change of state queues a ``card.installed`` / ``card.removed`` webhook, in the same transaction.
A card deleted from Google Wallet is no longer kept current there (see
:func:`passes.push.google_sender.forget_cards_without_objects`); asking for the save link again
brings its object up to date before the member saves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from passes.db import upsert_insert
from passes.push.models import GoogleCallbackNonce, GoogleObject
from passes.wallet.google.callbacks import WalletEvent
from passes.webhooks.events import card_installed

__all__ = ["Outcome", "record_wallet_event"]

Outcome = Literal["applied", "unchanged", "duplicate", "stale", "unknown_object"]


def _first_sight(session: Session, event: WalletEvent, now: datetime) -> bool:
    """Remember the nonce; False if it was already there. Forgets expired ones on the way."""
    session.execute(delete(GoogleCallbackNonce).where(GoogleCallbackNonce.expires_at < now))
    insert = upsert_insert(session.connection().dialect.name)
    inserted = session.execute(
        insert(GoogleCallbackNonce)
        .values(nonce=event.nonce, expires_at=event.expires_at)
        .on_conflict_do_nothing(index_elements=[GoogleCallbackNonce.nonce])
        .returning(GoogleCallbackNonce.nonce)
    ).first()
    return inserted is not None


def record_wallet_event(session: Session, event: WalletEvent, *, now: datetime) -> Outcome:
    """Apply one verified callback (not committed): what came of it."""
    if not _first_sight(session, event, now):
        return "duplicate"
    known = session.scalar(
        select(GoogleObject).where(GoogleObject.object_id == event.object_id).with_for_update()
    )
    if known is None:
        return "unknown_object"  # not ours any more (a deleted card), or never was
    if known.event_expires_at is not None and event.expires_at < known.event_expires_at:
        return "stale"
    known.event_expires_at = event.expires_at
    if event.saved:
        known.saved_at = now
    else:
        known.deleted_at = now
    if known.in_wallet is event.saved:
        return "unchanged"
    known.in_wallet = event.saved
    card_installed(session, known.card_id, "google", installed=event.saved)
    return "applied"
