"""Two ``flask passes worker --once`` processes on one committed outbox: every device gets its
push exactly once, and every row is cleared (leases and SKIP LOCKED keep them apart)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from fake_apns import FakeAPNs
from sqlalchemy import Engine, delete, select

from factories import make_card, make_program
from passes.db import make_sessionmaker
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.push.models import AppleDevice
from passes.push.registrations import register
from passes.wallet.apple.devcerts import DevChain
from support import apns_settings, app_config

ROOT = Path(__file__).resolve().parents[2]
CARDS = 120


def test_two_worker_processes_push_each_card_once(
    dev_chain: DevChain, database_url: str, engine: Engine, apns: FakeAPNs
) -> None:
    maker = make_sessionmaker(engine)
    slug = f"workers-{uuid.uuid4().hex[:8]}"
    tokens: list[str] = []
    with maker() as session:
        program = make_program(session, slug=slug)
        for index in range(CARDS):
            card = make_card(session, program)
            token = f"{index:064x}"
            register(session, f"{slug}-{index}", token, card.id)
            adjust(session, card, points=1, reason="test", actor="test")
            tokens.append(token)
        session.commit()
        card_ids = list(session.scalars(select(Card.id).join(Program).where(Program.slug == slug)))
    settings = {**app_config(dev_chain, database_url), **apns_settings(apns), "PUSH_BATCH_SIZE": 10}
    env = {**os.environ, **{f"PASSES_{key}": str(value) for key, value in settings.items()}}
    # Each batch takes at least this long, so twelve batches outlast the second process's start.
    apns.response_delay = 0.25
    try:
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "passes", "worker", "--once"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        counts = Counter(apns.delivered())
        assert sorted(counts) == sorted(tokens)
        assert set(counts.values()) == {1}, [t for t, n in counts.items() if n > 1]
        with maker() as session:
            left = session.scalars(
                select(WalletUpdate.card_id).where(
                    WalletUpdate.card_id.in_(card_ids), WalletUpdate.apple_pending
                )
            ).all()
        assert left == []
        assert all("apple push" in output for output in outputs), outputs  # both took work
    finally:
        with maker() as session:
            session.execute(delete(Program).where(Program.slug == slug))
            session.execute(
                delete(AppleDevice).where(AppleDevice.library_identifier.startswith(slug))
            )
            session.commit()
