"""Google Wallet sync throughput against a quota: how close the senders run to Google's rate
without being refused.

Loads ``--cards`` cards (default 10,000) whose Google objects exist at the fake API, changes every
balance, then runs ``--workers`` ``flask passes worker --once`` processes (sharing the rate limit
through the database) against the fake Google Wallet API with a quota of ``--quota`` requests per
second (default 200; the app's GOOGLE_RATE_LIMIT is set to the same). Prints the achieved rate of
accepted requests divided by the quota (target >= 0.95) and the number of 429 answers (target 0),
and checks that every card was patched exactly once (a count, not a timing).

The fake runs in this process, the senders in their own processes, PostgreSQL in a throw-away
cluster: all on loopback.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from _common import bench_database, bench_program  # noqa: E402
from fake_google_wallet import FakeGoogleWallet  # noqa: E402
from sqlalchemy import false, insert, literal, select, true, update  # noqa: E402

from passes import create_app  # noqa: E402
from passes.db import utcnow  # noqa: E402
from passes.loyalty.enrollment import Applicant, enroll  # noqa: E402
from passes.loyalty.models import Card, Store, WalletUpdate  # noqa: E402
from passes.loyalty.view import branding_of, card_view  # noqa: E402
from passes.migrate import upgrade  # noqa: E402
from passes.push.models import GoogleClass, GoogleObject  # noqa: E402
from passes.state import AppState  # noqa: E402


def prepare(env: dict[str, str], google: FakeGoogleWallet, cards: int) -> None:
    """Cards whose objects Google holds with balance 0, then every balance changed."""
    os.environ.update(env)
    app = create_app()
    state: AppState = app.extensions["passes"]
    assert state.google is not None
    upgrade(state.engine)
    with state.sessionmaker() as session:
        program = bench_program(stores=[Store(name="Till", latitude=55.7, longitude=37.6)])
        session.add(program)
        session.flush()
        for index in range(cards):
            enroll(
                session,
                program,
                Applicant(f"Member {index}", f"m{index}@bench.example", None, None),
                barcode_key=state.barcode_key,
            )
        session.flush()
        class_body = state.google.class_body(branding_of(program))
        google.classes[class_body["id"]] = class_body
        session.add(
            GoogleClass(program_id=program.id, class_id=class_body["id"], sent_body=class_body)
        )
        for card in session.scalars(select(Card).where(Card.program_id == program.id)):
            body = state.google.object_body(card_view(card))
            google.objects[body["id"]] = body  # saved to Google Wallet by its member earlier
            session.add(GoogleObject(card_id=card.id, object_id=body["id"], sent_body=body))
        session.execute(update(Card).where(Card.program_id == program.id).values(points_balance=42))
        # The outbox rows the change would have queued (Google side only).
        session.execute(
            insert(WalletUpdate).from_select(
                ["card_id", "revision", "apple_pending", "google_pending", "requested_at"],
                select(Card.id, literal(1), false(), true(), literal(utcnow())).where(
                    Card.program_id == program.id
                ),
            )
        )
        session.commit()
    state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--quota", type=float, default=200.0, help="requests/s the fake allows")
    parser.add_argument("--workers", type=int, default=2, help="sender processes")
    args = parser.parse_args()

    with bench_database() as (env, _cluster), FakeGoogleWallet(quota_rps=args.quota) as google:
        workdir = Path(tempfile.mkdtemp(prefix="lp-google-bench-"))
        key_file = google.write_service_account(workdir / "service-account.json")
        env = {
            **env,
            "PASSES_GOOGLE_ISSUER_ID": google.issuer_id,
            "PASSES_GOOGLE_SERVICE_ACCOUNT_FILE": str(key_file),
            "PASSES_GOOGLE_API_ENDPOINT": google.base_url,
            "PASSES_GOOGLE_RATE_LIMIT": str(args.quota),
            "PASSES_PUSH_BATCH_SIZE": "500",
        }
        started = time.perf_counter()
        prepare(env, google, args.cards)
        print(f"loaded {args.cards} cards in {time.perf_counter() - started:.0f} s")
        google.requests.clear()
        started = time.perf_counter()
        fake_cpu = time.process_time()  # this process is the fake's, while the workers run
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "passes", "worker", "--once"],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(args.workers)
        ]
        outputs = [worker.communicate()[0] for worker in workers]
        wall = time.perf_counter() - started
        fake_cpu = time.process_time() - fake_cpu
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sender_cpu = (children.ru_utime + children.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        if any(worker.returncode for worker in workers) or not google.recorded():
            raise SystemExit("a worker failed:\n" + "\n".join(outputs))
        patched = Counter(
            r.resource_id for r in google.recorded(action="patch", kind="loyaltyObject", status=200)
        )
        if len(patched) != args.cards or set(patched.values()) != {1} or google.errors:
            raise SystemExit(
                f"expected each of {args.cards} objects patched once; got {len(patched)} objects, "
                f"counts {sorted(set(patched.values()))}, errors {google.errors[:3]}"
            )
        accepted = google.achieved_rate(status=200)
        print(
            f"{args.workers} sender processes, quota {args.quota:.0f} requests/s, "
            f"{len(google.recorded())} requests in {wall:.1f} s (processes started to finished)"
        )
        print(f"  accepted requests/s (first to last): {accepted:8.1f}")
        print(f"  busiest second:                      {google.max_rate(window=1.0):8.1f}")
        requests = len(google.recorded())
        print(
            f"  CPU per request: senders {sender_cpu / requests * 1000:.2f} ms, "
            f"fake API {fake_cpu / requests * 1000:.2f} ms (2 cores: when their sum nears "
            f"{2 / args.quota * 1000:.0f} ms the machine, not the limiter, sets the pace)"
        )
        print(f"achieved / quota = {accepted / args.quota:.3f} (target >= 0.95)")
        print(f"429 answers: {google.count_429} (target 0)")


if __name__ == "__main__":
    main()
