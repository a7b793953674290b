"""Two ``flask passes worker --once`` processes syncing one committed outbox to the fake Google
API: each changed card is patched exactly once, and together they stay within the shared rate."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from fake_google_wallet import FakeGoogleWallet
from sqlalchemy import Engine, delete, select

from factories import make_card, make_program
from passes.db import make_sessionmaker
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.loyalty.view import card_view
from passes.push.models import GoogleClass, GoogleObject
from passes.wallet.apple.devcerts import DevChain
from passes.wallet.google.objects import ImageUrls, loyalty_class, loyalty_object
from support import app_config, google_settings

ROOT = Path(__file__).resolve().parents[2]
CARDS = 60
RATE = 20


def test_two_workers_patch_each_card_once_within_the_shared_rate(
    dev_chain: DevChain, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    maker = make_sessionmaker(engine)
    slug = f"gworkers-{uuid.uuid4().hex[:8]}"
    with FakeGoogleWallet() as google:
        with maker() as session:
            program = make_program(session, slug=slug, tiers=False)
            base = f"https://loyalpass.test/p/{slug}/google"  # as the app names its images
            version = f"?v={program.design_version}"
            images = ImageUrls(logo=f"{base}/logo.png{version}", hero=f"{base}/hero.png{version}")
            class_body = loyalty_class(
                card_view(make_card(session, program)).branding,
                issuer_id=google.issuer_id,
                images=images,
                callback_url="https://loyalpass.test/google/callbacks",
            )
            google.classes[class_body["id"]] = class_body
            for _ in range(CARDS):
                card = make_card(session, program)
                body = loyalty_object(card_view(card), issuer_id=google.issuer_id)
                google.objects[body["id"]] = body  # saved earlier by the member
                session.add(GoogleObject(card_id=card.id, object_id=body["id"], sent_body=body))
            session.add(
                GoogleClass(program_id=program.id, class_id=class_body["id"], sent_body=class_body)
            )
            session.flush()
            for card in session.scalars(select(Card).where(Card.program_id == program.id)):
                adjust(session, card, points=5, reason="test", actor="test")
            session.commit()
            card_ids = list(
                session.scalars(select(Card.id).join(Program).where(Program.slug == slug))
            )
        settings = {
            **app_config(dev_chain, database_url),
            **google_settings(google, tmp_path / "service-account.json"),
            "GOOGLE_RATE_LIMIT": RATE,
            "GOOGLE_SYNC_THREADS": 4,
            "PUSH_BATCH_SIZE": 10,
            "APPLE_SIGNING_ENABLED": True,
        }
        env = {**os.environ, **{f"PASSES_{key}": str(value) for key, value in settings.items()}}
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
            patched = Counter(r.resource_id for r in google.recorded(action="patch", status=200))
            assert google.recorded(kind="loyaltyClass") == []  # the class was up to date
            assert len(patched) == CARDS, outputs
            assert set(patched.values()) == {1}, [i for i, n in patched.items() if n > 1]
            assert google.errors == [] and google.count_429 == 0
            # The shared bucket grants at most RATE per second plus its capacity (RATE / 10),
            # whichever process asks. Seen at the server, requests also shift by their travel
            # time, so allow 0.2 s of that: an upper bound that holds on any machine.
            capacity, jitter = RATE / 10, 0.2
            times = sorted(r.time for r in google.recorded())
            span = times[-1] - times[0]
            assert len(times) - 1 <= RATE * (span + jitter) + capacity
            window = 2.0
            assert google.max_rate(window=window, status=None) * window <= (
                RATE * (window + jitter) + capacity
            )
            assert all("google sync" in output for output in outputs), outputs  # both took work
            with maker() as session:
                left = session.scalars(
                    select(WalletUpdate.card_id).where(
                        WalletUpdate.card_id.in_(card_ids), WalletUpdate.google_pending
                    )
                ).all()
            assert left == []
        finally:
            with maker() as session:
                session.execute(delete(Program).where(Program.slug == slug))
                session.commit()
