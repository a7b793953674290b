"""The outbox's lease and settle statements, shared by the Apple sender, the Google sender and
the webhooks: a change that lands between claim and settle keeps the row pending for that
wallet, and each wallet's flag is its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.db import utcnow
from passes.loyalty.models import WalletUpdate
from passes.loyalty.pass_versions import queue_wallet_update
from passes.push import outbox


@pytest.mark.parametrize("wallet", ["apple", "google", "hooks"])
def test_a_change_between_claim_and_settle_keeps_the_row_pending(
    db_session: Session, wallet: outbox.Wallet
) -> None:
    program = make_program(db_session)
    calm, busy = make_card(db_session, program), make_card(db_session, program)
    for card in (calm, busy):
        queue_wallet_update(db_session, card.id)
    db_session.commit()
    now = utcnow()
    claimed = outbox.claim(db_session, wallet, now=now, limit=10, lease=timedelta(seconds=60))
    assert {card_id for card_id, _revision, _attempts in claimed} == {calm.id, busy.id}
    assert outbox.claim(db_session, wallet, now=now, limit=10, lease=timedelta(seconds=60)) == []
    queue_wallet_update(db_session, busy.id)  # the till changed it while we were sending
    db_session.connection().execute(
        outbox.settled(wallet),
        [{"b_card": card_id, "b_revision": revision} for card_id, revision, _ in claimed],
    )
    db_session.commit()
    rows = {card_id: db_session.get(WalletUpdate, card_id) for card_id in (calm.id, busy.id)}
    for row in rows.values():
        assert row is not None
        db_session.refresh(row)
    assert getattr(rows[calm.id], f"{wallet}_pending") is False
    assert getattr(rows[busy.id], f"{wallet}_pending") is True
    assert getattr(rows[busy.id], f"{wallet}_not_before") is None  # due again at once
    others = {"apple", "google", "hooks"} - {wallet}
    assert all(getattr(rows[calm.id], f"{other}_pending") for other in others)
