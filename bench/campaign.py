"""A campaign to a million cards, from the console's click to the last push.

Starts a throw-away PostgreSQL cluster and the fake APNs of the tests (its own process, TLS on
loopback, every push checked), bulk-loads ``--cards`` members with a card each and an iPhone
registered for each card (``INSERT ... SELECT generate_series``, rows as the ORM stores them),
schedules an offer to all of them, then runs one worker process that does what the scheduler
does: ``send_due`` (offers written, pass versions bumped, wallet updates queued, all inside the
database) and the Apple push job until the outbox is empty. Prints the seconds to enqueue, the
seconds until the last push was answered, and the worker's peak resident memory (targets:
under 5 minutes in all, under 300 MB: the worker streams, it never loads the members).

After the run the bench checks that the fake received exactly one push for every device token
(a count check; timings are only reported). Run from the repository:
``.venv/bin/python bench/campaign.py`` (``--cards 50000`` for a quick look).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import bench_database
from push import TEAM, TOPIC, FakeServer
from sqlalchemy import Engine, create_engine, text
from webservice import create_program

from passes import create_app
from passes.db import utcnow
from passes.loyalty.models import Program
from passes.marketing.campaigns import Draft, schedule
from passes.wallet.apple.devcerts import create_dev_chain

CHUNK = 100_000
_MEMBERS = text(
    "INSERT INTO members (program_id, name, email, email_key, consent_at, created_at)"
    " SELECT :program, 'Member ' || c, 'm' || c || '@bench.example', 'm' || c || '@bench.example',"
    " now(), now() FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS c"
)
_CARDS = text(
    "INSERT INTO cards (program_id, member_id, number, serial_number, authentication_token,"
    " page_token, barcode_payload, points_balance, lifetime_spend, content_version,"
    " pass_updated_at, change_seq, created_at)"
    " SELECT :program, members.id, '99' || lpad(c::text, 14, '0'),"
    " 'bench-' || lpad(c::text, 10, '0'), md5(random()::text) || md5(random()::text),"
    " md5(random()::text) || lpad(c::text, 10, '0'), md5(c::text), 0, 0, 1,"
    " date_trunc('second', now()), pg_current_xact_id()::text::bigint, now()"
    " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS c"
    " JOIN members ON members.program_id = :program"
    " AND members.email_key = 'm' || c || '@bench.example'"
)
_DEVICES = text(
    "INSERT INTO apple_devices (library_identifier, push_token, registered_at, created_at)"
    " SELECT 'bench-device-' || c, md5('phone' || c) || md5('token' || c), now(), now()"
    " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS c"
)
_REGISTRATIONS = text(
    "INSERT INTO apple_registrations (device_id, card_id, created_at)"
    " SELECT apple_devices.id, cards.id, now()"
    " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS c"
    " JOIN cards ON cards.serial_number = 'bench-' || lpad(c::text, 10, '0')"
    " JOIN apple_devices ON apple_devices.library_identifier = 'bench-device-' || c"
)


def load(engine: Engine, program_id: int, cards: int) -> float:
    """Members, cards, one iPhone per card; seconds taken."""
    started = time.perf_counter()
    for statement in (_MEMBERS, _CARDS, _DEVICES, _REGISTRATIONS):
        for first in range(0, cards, CHUNK):
            with engine.begin() as connection:
                connection.execute(
                    statement,
                    {"program": program_id, "first": first, "last": min(first + CHUNK, cards) - 1},
                )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def worker(env: dict[str, str], pipe: multiprocessing.connection.Connection) -> None:
    """The scheduler's two jobs, timed, in a process of their own (its memory is the worker's)."""
    os.environ.update(env)
    from sqlalchemy import func, select

    from passes.jobs import push_service
    from passes.loyalty.models import WalletUpdate
    from passes.marketing.campaigns import send_due

    app = create_app()
    state = app.extensions["passes"]
    started = time.perf_counter()
    with state.sessionmaker() as session:
        sent = send_due(session)
    enqueued = time.perf_counter() - started
    service = push_service(app)
    assert service is not None, "pushes are off"
    pushed = 0
    while True:
        report = service.run_once()
        pushed += report.pushed if report is not None else 0
        with state.sessionmaker() as session:
            pending = session.scalar(
                select(func.count()).select_from(WalletUpdate).where(WalletUpdate.apple_pending)
            )
        if not pending:
            break
    finished = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pipe.send((len(sent), enqueued, finished, pushed, peak_kib))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument(
        "--fake-processes", type=int, default=2, help="processes of the fake APNs (default 2)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-campaign-"))
    chain = create_dev_chain(workdir / "certs", pass_type_identifier=TOPIC, team_identifier=TEAM)
    server = FakeServer(chain, workdir / "apns", 0.0, args.fake_processes)
    try:
        with bench_database() as (env, _cluster):
            env = {
                **env,
                "PASSES_APPLE_CERTIFICATE": str(chain.certificate),
                "PASSES_APPLE_PRIVATE_KEY": str(chain.private_key),
                "PASSES_APPLE_WWDR_CERTIFICATE": str(chain.wwdr_certificate),
                "PASSES_APNS_ENDPOINT": f"https://127.0.0.1:{server.port}",
                "PASSES_APNS_CA_FILE": str(server.ca_file),
            }
            program_id = create_program(env)  # migrates too; sets os.environ
            state = create_app().extensions["passes"]
            engine = create_engine(state.engine.url)
            loaded = load(engine, program_id, args.cards)
            now = utcnow()
            with state.sessionmaker() as session:
                draft = Draft(
                    "Кофе за полцены",
                    "Любой кофе −50 % до воскресенья",
                    {"kind": "all"},
                    now,
                    now + timedelta(days=7),
                    now,
                )
                schedule(session, session.get(Program, program_id), draft, "bench")  # type: ignore[arg-type]
                session.commit()
            state.engine.dispose()
            engine.dispose()
            server.begin()
            server.reset()
            context = multiprocessing.get_context("spawn")
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=worker, args=(env, send), name="campaign-worker")
            process.start()
            campaigns, enqueued, finished, pushed, peak_kib = receive.recv()
            process.join()
            received = server.report()
    finally:
        server.stop()
    print(f"{args.cards:,} cards, each with an iPhone registered; loaded in {loaded:.0f} s")
    delivered, distinct = len(received.delivered), len(set(received.delivered))
    print(f"  campaigns sent: {campaigns}; pushes answered 200: {delivered:,}")
    print(f"  seconds to enqueue (offers, versions, outbox): {enqueued:8.1f}")
    print(f"  seconds until the last push was out:           {finished:8.1f} (target < 300)")
    print(f"  worker peak RSS: {peak_kib / 1024:.0f} MB (target < 300)")
    if (received.pushes, delivered, distinct) != (args.cards,) * 3:
        raise SystemExit(
            f"the fake received {received.pushes} pushes, {delivered} answered 200, "
            f"for {distinct} tokens; expected {args.cards} of each"
        )
    if pushed != args.cards or received.errors:
        raise SystemExit(f"the worker pushed {pushed}; fake errors: {received.errors[:3]}")


if __name__ == "__main__":
    main()
