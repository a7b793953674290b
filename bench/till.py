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

from _common import (
    Request,
    bench_database,
    bench_program,
    cpu_seconds,
    drive,
    gunicorn,
    postmaster_pid,
)

from passes import create_app
from passes.accounts.api_keys import issue_key
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Store
from passes.migrate import upgrade


def prepare(env: dict[str, str], cards: int) -> tuple[str, list[str]]:
    """Migrate, create a program with ``cards`` members and a store key; (key, card numbers)."""
    os.environ.update(env)
    app = create_app()
    state = app.extensions["passes"]
    upgrade(state.engine)
    with state.sessionmaker() as session:
        program = bench_program(stores=[Store(name="Till", latitude=55.7, longitude=37.6)])
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
    parser.add_argument("--seconds", type=float, default=10.0, help="per route, in all")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two routes")
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

    class Totals:
        """Requests, seconds and CPU seconds (server, database, client) of one route."""

        def __init__(self) -> None:
            self.count, self.seconds, self.latencies = 0, 0.0, list[float]()
            self.cpu = [0.0, 0.0, 0.0]

        def run(self, request: Request, seconds: float) -> float:
            """Drive ``request`` for ``seconds``; its rate in this run."""
            before = (cpu_seconds(servers[0]), cpu_seconds(servers[1]), time.process_time())
            count, latencies = drive(port, seconds, args.threads, request)
            after = (cpu_seconds(servers[0]), cpu_seconds(servers[1]), time.process_time())
            self.cpu = [total + a - b for total, a, b in zip(self.cpu, after, before, strict=True)]
            self.count, self.seconds = self.count + count, self.seconds + seconds
            self.latencies += latencies
            return count / seconds

        def rate(self) -> float:
            return self.count / self.seconds

        def costs(self) -> str:
            """Where the CPU went, per request (where the two routes' difference goes)."""
            names = ("gunicorn", "PostgreSQL", "client")
            return "CPU ms per request: " + ", ".join(
                f"{name} {spent / self.count * 1000:.2f}"
                for name, spent in zip(names, self.cpu, strict=True)
            )

    drive(port, 2.0, args.threads, purchase)  # warm up: connections, caches, JIT of plans
    drive(port, 1.0, args.threads, hello)
    # The routes take turns, so that a slower or faster spell of a shared machine weighs on
    # both alike rather than on whichever ran during it.
    hellos, purchases = Totals(), Totals()
    ratios = []
    for _round in range(args.rounds):
        hello_rate = hellos.run(hello, args.seconds / args.rounds)
        ratios.append(purchases.run(purchase, args.seconds / args.rounds) / hello_rate)
    quantiles = statistics.quantiles(purchases.latencies, n=100)
    print(
        f"gunicorn {args.workers} gthread workers x 4 threads, {args.threads} client "
        f"connections, {args.seconds:.0f} s per route in {args.rounds} alternating rounds, "
        f"PostgreSQL, {args.cards} cards"
    )
    print(f"  hello-world (/healthz):   {hellos.rate():8.1f} requests/s   ({hellos.costs()})")
    print(f"  purchases (idempotent):   {purchases.rate():8.1f} requests/s   ({purchases.costs()})")
    p50, p99 = quantiles[49] * 1000, quantiles[98] * 1000
    print(f"  purchase latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  ratio by round: {', '.join(f'{ratio:.3f}' for ratio in ratios)}")
    ratio = purchases.rate() / hellos.rate()
    print(f"purchases/s / hello-world requests/s = {ratio:.3f} (target >= 0.3)")


if __name__ == "__main__":
    main()
