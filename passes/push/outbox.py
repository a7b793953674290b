"""Leasing rows of the wallet outbox (``wallet_updates``) for one wallet's sender.

Each wallet has its own pending flag, lease/backoff clock and attempt count on the shared row, so
Apple and Google senders never wait for each other. A batch is claimed by setting the lease in a
short transaction of its own: several worker processes never take the same rows (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL; SQLite serialises writers) and no lock is held while sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import Table, Update, bindparam, or_, select, update
from sqlalchemy.orm import Session

from passes.loyalty.models import WalletUpdate

Wallet = Literal["apple", "google", "hooks"]  # "hooks": the webhooks' change detection


def claim(
    session: Session, wallet: Wallet, *, now: datetime, limit: int, lease: timedelta
) -> list[tuple[int, int, int]]:
    """Lease up to ``limit`` of ``wallet``'s due rows, oldest first: (card id, revision,
    attempts). Commits."""
    pending = getattr(WalletUpdate, f"{wallet}_pending")
    not_before = getattr(WalletUpdate, f"{wallet}_not_before")
    attempts = getattr(WalletUpdate, f"{wallet}_attempts")
    due = (
        select(WalletUpdate.card_id)
        .where(pending, or_(not_before.is_(None), not_before <= now))
        .order_by(WalletUpdate.requested_at)
        .limit(limit)
    )
    if session.connection().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(WalletUpdate)
        .where(WalletUpdate.card_id.in_(due.scalar_subquery()))
        .values({not_before: now + lease})
        .returning(WalletUpdate.card_id, WalletUpdate.revision, attempts)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return [(row[0], row[1], row[2]) for row in rows]


def settled(wallet: Wallet) -> Update:
    """The statement that clears ``wallet``'s flag, lease and attempts on rows it delivered, for
    an executemany of ``{"b_card": card id, "b_revision": revision claimed}``. A change that
    arrived meanwhile (a newer revision) keeps the row pending."""
    outbox = cast(Table, WalletUpdate.__table__)
    return (
        update(outbox)
        .where(outbox.c.card_id == bindparam("b_card"))
        .values(
            {
                f"{wallet}_pending": outbox.c.revision != bindparam("b_revision"),
                f"{wallet}_not_before": None,
                f"{wallet}_attempts": 0,
            }
        )
    )
