"""Till throughput under a real WSGI server on PostgreSQL, against a hello-world baseline.

Starts a throw-away PostgreSQL cluster and gunicorn (gthread workers) on loopback, loads a program
with many cards, then drives both routes with the same client (keep-alive connections, several
threads) and prints purchases/s (each with its own Idempotency-Key, ledger entry, point lot and
outbox row), /healthz requests/s, their ratio (target >= 0.3) and purchase latency p50/p99.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from passes import create_app  # noqa: E402
from passes.loyalty.enrollment import Applicant, enroll  # noqa: E402
from passes.loyalty.models import Program, Store  # noqa: E402
from passes.migrate import upgrade  # noqa: E402
from passes.wallet.apple.devcerts import create_dev_chain  # noqa: E402
from passes.web.api.keys import issue_key  # noqa: E402
from postgres import start_cluster  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare(env: dict[str, str], cards: int) -> tuple[str, list[str]]:
    """Migrate, create a program with ``cards`` members and a store key; (key, card numbers)."""
    os.environ.update(env)
    app = create_app()
    state = app.extensions["passes"]
    upgrade(state.engine)
    with state.sessionmaker() as session:
        program = Program(
            slug="bench",
            name="Bench",
            organization_name="Bench Ltd",
            description="Bench card",
            card_prefix="99",
            rules={"currency": "RUB", "earning": {"points": 1, "per_amount": 1000}},
            stores=[Store(name="Till", latitude=55.7, longitude=37.6)],
        )
        session.add(program)
        session.flush()
        numbers = [
            enroll(
                session,
                program,
                Applicant(f"Member {i}", f"m{i}@bench.example", None, None),
                barcode_key=state.barcode_key,
            ).card.number
            for i in range(cards)
        ]
        token = issue_key(
            session, program, role="store", name="till", store=program.stores[0]
        ).token
        session.commit()
    state.engine.dispose()
    return token, numbers


Request = Callable[[http.client.HTTPConnection, int], int]


def drive(port: int, seconds: float, threads: int, request: Request) -> tuple[int, list[float]]:
    """``request(connection, index)`` from ``threads`` keep-alive clients: (count, latencies)."""
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        index = slot
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = request(connection, index)
            latencies[slot].append(time.perf_counter() - started)
            if status >= 300:
                failures.append(str(status))
            index += threads
        connection.close()

    pool = [threading.Thread(target=worker, args=(slot,)) for slot in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. HTTP {failures[0]}")
    flat = [value for values in latencies for value in values]
    return len(flat), flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--cards", type=int, default=1000)
    args = parser.parse_args()

    cluster = start_cluster()
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-"))
    server = None
    try:
        chain = create_dev_chain(
            workdir / "certs",
            pass_type_identifier="pass.bench.loyalpass",
            team_identifier="BENCH00001",
        )
        admin = cluster.url()
        subprocess.run(
            [str(cluster.bin_dir / "createdb"), "-h", str(cluster.root), "-U", "postgres", "bench"],
            check=True,
        )
        env = {
            "PASSES_DATABASE_URL": admin.replace("/postgres?", "/bench?"),
            "PASSES_SECRET_KEY": "bench-secret",
            "PASSES_PUBLIC_URL": "https://bench.example",
            "PASSES_APPLE_PASS_TYPE_IDENTIFIER": chain.pass_type_identifier,
            "PASSES_APPLE_TEAM_IDENTIFIER": chain.team_identifier,
            "PASSES_APPLE_CERTIFICATE": str(chain.certificate),
            "PASSES_APPLE_PRIVATE_KEY": str(chain.private_key),
            "PASSES_APPLE_WWDR_CERTIFICATE": str(chain.wwdr_certificate),
        }
        token, numbers = prepare(env, args.cards)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(args.workers),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "app:app",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)

        def hello(connection: http.client.HTTPConnection, _index: int) -> int:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            return response.status

        def purchase(connection: http.client.HTTPConnection, index: int) -> int:
            body = json.dumps(
                {"card": numbers[index % len(numbers)], "amount": 12_345, "currency": "RUB"}
            )
            connection.request(
                "POST",
                "/api/v1/purchases",
                body=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": str(uuid.uuid4()),
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status

        drive(port, 2.0, args.threads, purchase)  # warm up: connections, caches, JIT of plans
        drive(port, 1.0, args.threads, hello)
        hello_count, _ = drive(port, args.seconds, args.threads, hello)
        purchase_count, latencies = drive(port, args.seconds, args.threads, purchase)
        hello_rate = hello_count / args.seconds
        purchase_rate = purchase_count / args.seconds
        quantiles = statistics.quantiles(latencies, n=100)
        print(
            f"gunicorn {args.workers} gthread workers x 4 threads, {args.threads} client "
            f"connections, {args.seconds:.0f} s per route, PostgreSQL, {args.cards} cards"
        )
        print(f"  hello-world (/healthz):   {hello_rate:8.1f} requests/s")
        print(f"  purchases (idempotent):   {purchase_rate:8.1f} requests/s")
        p50, p99 = quantiles[49] * 1000, quantiles[98] * 1000
        print(f"  purchase latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        ratio = purchase_rate / hello_rate
        print(f"purchases/s / hello-world requests/s = {ratio:.3f} (target >= 0.3)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        cluster.stop()


if __name__ == "__main__":
    main()
