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
import statistics
import time
import uuid

from _common import Request, bench_database, cpu_seconds, drive, gunicorn, postmaster_pid

from passes import create_app
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Program, Store
from passes.migrate import upgrade
from passes.web.api.keys import issue_key


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--cards", type=int, default=1000)
    args = parser.parse_args()

    with bench_database() as (env, cluster):
        token, numbers = prepare(env, args.cards)
        with gunicorn(env, args.workers) as server:
            measure(args, server.port, token, numbers, (server.pid, postmaster_pid(cluster)))


def measure(
    args: argparse.Namespace,
    port: int,
    token: str,
    numbers: list[str],
    servers: tuple[int, int],
) -> None:
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

    def timed(request: Request) -> tuple[int, list[float], str]:
        """Drive ``request``; also the CPU each request cost the server, the database and this
        client (where the two routes' difference goes)."""
        web, sql, client = cpu_seconds(servers[0]), cpu_seconds(servers[1]), time.process_time()
        count, latencies = drive(port, args.seconds, args.threads, request)
        web, sql = cpu_seconds(servers[0]) - web, cpu_seconds(servers[1]) - sql
        client = time.process_time() - client
        costs = ", ".join(
            f"{name} {seconds / count * 1000:.2f}"
            for name, seconds in (("gunicorn", web), ("PostgreSQL", sql), ("client", client))
        )
        return count, latencies, f"CPU ms per request: {costs}"

    drive(port, 2.0, args.threads, purchase)  # warm up: connections, caches, JIT of plans
    drive(port, 1.0, args.threads, hello)
    hello_count, _, hello_cpu = timed(hello)
    purchase_count, latencies, purchase_cpu = timed(purchase)
    hello_rate = hello_count / args.seconds
    purchase_rate = purchase_count / args.seconds
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"gunicorn {args.workers} gthread workers x 4 threads, {args.threads} client "
        f"connections, {args.seconds:.0f} s per route, PostgreSQL, {args.cards} cards"
    )
    print(f"  hello-world (/healthz):   {hello_rate:8.1f} requests/s   ({hello_cpu})")
    print(f"  purchases (idempotent):   {purchase_rate:8.1f} requests/s   ({purchase_cpu})")
    p50, p99 = quantiles[49] * 1000, quantiles[98] * 1000
    print(f"  purchase latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    ratio = purchase_rate / hello_rate
    print(f"purchases/s / hello-world requests/s = {ratio:.3f} (target >= 0.3)")


if __name__ == "__main__":
    main()
