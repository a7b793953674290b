"""The PassKit web service under a real WSGI server on PostgreSQL: 304s and update listings.

Devices call two routes far more than any other. After a push every device holding the pass asks
for it again, mostly with ``If-Modified-Since`` of the copy it holds, so a pass download that
answers 304 must cost about what a hello-world route costs: the ratio of 304 answers per second to
/healthz requests per second on the same gunicorn server is printed (target >= 0.6), and every one
of those answers is checked to be a 304. Rates move with whatever else runs on the machine, so the
CPU time per request of gunicorn's workers, PostgreSQL's backends and this client is printed too,
and the ratio of the totals: when those processes saturate the cores, rates relate inversely to it.

And every device asks "which of my passes changed since <tag>?" (list updated serials): that must
stay an indexed read whose cost depends on the device's handful of passes, not on the table. Its
latency p50/p99 is measured, with and without ``passesUpdatedSince``, for the same devices at a
small table (1,000 registrations by default) and after growing it to 1,000,000, with the buffers
one execution touches at each size; the plan at the large size is printed and checked for index
scans (a sanity check, like the status checks: nothing here asserts a time).

Starts a throw-away PostgreSQL cluster and gunicorn (gthread workers) on loopback, creates one
program through the ORM and bulk-loads members, cards, devices and registrations with
``INSERT ... SELECT generate_series`` (rows as the ORM would store them, under the same
constraints; VACUUM ANALYZE after each load, as autovacuum would). Each card is on two devices
(a phone and a watch) and each device holds ``--per-device`` passes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import NamedTuple

from _common import (
    Request,
    bench_database,
    bench_program,
    cpu_seconds,
    drive,
    gunicorn,
    postmaster_pid,
    succeeded,
)
from sqlalchemy import Connection, Engine, create_engine, text

from passes import create_app
from passes.migrate import upgrade
from passes.push.registrations import _UPDATED_SINCE

# Registration r (0-based): card r // 2 on device 2 * (card // per_device) + r % 2, i.e. cards
# come in groups of ``per_device`` held by one phone and one watch. Any prefix of the registration
# numbers (a multiple of 2 * per_device) is a consistent world, so the table grows in place.
_MEMBERS = text(
    "INSERT INTO members (program_id, name, email, email_key, consent_at, created_at)"
    " SELECT :program, 'Member ' || c, 'm' || c || '@bench.example', 'm' || c || '@bench.example',"
    " now(), now()"
    " FROM generate_series(CAST(:first_card AS bigint), CAST(:last_card AS bigint)) AS c"
)
_CARDS = text(
    "INSERT INTO cards (program_id, member_id, number, serial_number, authentication_token,"
    " page_token, barcode_payload, points_balance, lifetime_spend, content_version,"
    " pass_updated_at, change_seq, created_at)"
    " SELECT :program, members.id, '99' || lpad(c::text, 14, '0'),"
    " 'bench-' || lpad(c::text, 10, '0'),"
    " md5(random()::text) || md5(random()::text), md5(random()::text) || lpad(c::text, 10, '0'),"
    " md5(c::text), 0, 0, 1, date_trunc('second', now()),"
    " pg_current_xact_id()::text::bigint, now()"
    " FROM generate_series(CAST(:first_card AS bigint), CAST(:last_card AS bigint)) AS c"
    " JOIN members ON members.program_id = :program"
    " AND members.email_key = 'm' || c || '@bench.example'"
)
_DEVICES = text(
    "INSERT INTO apple_devices (library_identifier, push_token, registered_at, created_at)"
    " SELECT 'bench-device-' || d, md5('phone' || d) || md5('token' || d), now(), now()"
    " FROM generate_series(CAST(:first_device AS bigint), CAST(:last_device AS bigint)) AS d"
)
_REGISTRATIONS = text(
    "INSERT INTO apple_registrations (device_id, card_id, created_at)"
    " SELECT apple_devices.id, cards.id, now()"
    " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS r"
    " JOIN cards ON cards.serial_number = 'bench-' || lpad((r / 2)::text, 10, '0')"
    " JOIN apple_devices ON apple_devices.library_identifier"
    "  = 'bench-device-' || (2 * (r / 2 / :per_device) + r % 2)"
)
# A change to some of the passes, as loyalty.pass_versions.bump_card stamps it (without the
# wallet outbox row, which nothing here reads).
_BUMP = text(
    "UPDATE cards SET content_version = content_version + 1,"
    " change_seq = pg_current_xact_id()::text::bigint,"
    " pass_updated_at"
    "  = greatest(pass_updated_at + interval '1 second', date_trunc('second', now()))"
    " WHERE serial_number = ANY(:serials)"
)
_SAMPLE = text(
    "SELECT cards.serial_number, cards.authentication_token,"
    " greatest(cards.pass_updated_at, programs.design_updated_at) AS updated_at"
    " FROM cards JOIN programs ON programs.id = cards.program_id"
    " WHERE EXISTS (SELECT 1 FROM apple_registrations WHERE card_id = cards.id)"
    " ORDER BY random() LIMIT :limit"
)
_BIG_TABLES = ("apple_devices", "apple_registrations", "cards", "members")


class Servers(NamedTuple):
    gunicorn: int  # the arbiter; its workers are its children
    postgres: int  # the postmaster; its backends are its children


def pass_type() -> str:
    """The development chain's pass type (create_program put the app's settings in environ)."""
    return os.environ["PASSES_APPLE_PASS_TYPE_IDENTIFIER"]


def serial(card: int) -> str:
    return f"bench-{card:010d}"


def device_name(device: int) -> str:
    return f"bench-device-{device}"


def create_program(env: dict[str, str]) -> int:
    """Migrate and create the program through the ORM; its id."""
    os.environ.update(env)
    app = create_app()
    state = app.extensions["passes"]
    upgrade(state.engine)
    with state.sessionmaker() as session:
        program = bench_program()
        session.add(program)
        session.commit()
        program_id = program.id
    state.engine.dispose()
    return program_id


def grow(engine: Engine, program: int, start: int, stop: int, per_device: int) -> float:
    """Load registrations ``start`` to ``stop`` (and their cards and devices); seconds taken."""
    began = time.perf_counter()
    cards = {"first_card": start // 2, "last_card": stop // 2 - 1, "program": program}
    devices = {"first_device": start // per_device, "last_device": stop // per_device - 1}
    with engine.begin() as connection:
        connection.execute(_MEMBERS, cards)
        connection.execute(_CARDS, cards)
        connection.execute(_DEVICES, devices)
        connection.execute(
            _REGISTRATIONS, {"first": start, "last": stop - 1, "per_device": per_device}
        )
    with engine.connect() as connection:  # as autovacuum would, before anyone reads much
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in _BIG_TABLES:
            autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))  # a constant name
    return time.perf_counter() - began


def count(connection: Connection, table: str) -> int:
    statement = text(f"SELECT count(*) FROM {table}")  # noqa: S608 (one of _BIG_TABLES)
    return int(connection.execute(statement).scalar_one())


def listing_path(device: str, since: str | None) -> str:
    path = f"/passkit/v1/devices/{device}/registrations/{pass_type()}"
    return path if since is None else f"{path}?passesUpdatedSince={since}"


def list_serials(
    connection: http.client.HTTPConnection, device: str, since: str | None
) -> tuple[int, dict[str, object]]:
    connection.request("GET", listing_path(device, since))
    response = connection.getresponse()
    body = response.read()
    return response.status, json.loads(body) if body else {}


def device_serials(device: int, per_device: int, changed_only: bool = False) -> list[str]:
    """What a listing for ``device`` must answer: all its passes, or the changed ones."""
    first = device // 2 * per_device
    held = range(first, first + per_device)
    return [serial(card) for card in held if not changed_only or changed(card, per_device)]


def changed(card: int, per_device: int) -> bool:
    """The passes _BUMP changes after the tag: 2 of each device's."""
    return card % per_device < 2


def listing_latency(
    port: int, devices: list[int], per_device: int, since: str | None, requests: int
) -> tuple[float, float]:
    """p50 and p99 (ms) of ``requests`` sequential listings over ``devices``, one connection;
    exits unless each answer lists exactly the device's (changed, with ``since``) passes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    for index in range(requests):
        device = devices[index % len(devices)]
        started = time.perf_counter()
        status, body = list_serials(connection, device_name(device), since)
        latencies.append(time.perf_counter() - started)
        expected = device_serials(device, per_device, changed_only=since is not None)
        if status != 200 or body.get("serialNumbers") != expected:
            raise SystemExit(f"listing for device {device}: HTTP {status} {body}, not {expected}")
    connection.close()
    return p50_p99(latencies)


def hello_latency(port: int, requests: int) -> tuple[float, float]:
    """p50 and p99 (ms) of sequential /healthz requests, the floor under any route's latency."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"/healthz: HTTP {response.status}")
    connection.close()
    return p50_p99(latencies)


def p50_p99(latencies: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in milliseconds."""
    quantiles = statistics.quantiles(latencies, n=100)
    return quantiles[49] * 1000, quantiles[98] * 1000


_EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "


def explain(
    connection: Connection, device: str, since: int, indexed: bool
) -> tuple[list[str], list[str]]:
    """The plans of the statement the listing runs, executed: as planned for these values, and
    generic (what a prepared statement may settle on after five executions). If ``indexed``,
    exits unless both read the big tables through indexes (on a tiny table a sequential scan is
    right)."""
    sql = _UPDATED_SINCE["postgresql"].statement.text  # type: ignore[attr-defined]
    values = {"device": device, "since": since}
    custom = [row[0] for row in connection.execute(text(_EXPLAIN + sql), values)]
    numbered = sql.replace(":device", "$1").replace(":since", "$2")
    connection.execute(text("SET plan_cache_mode = force_generic_plan"))
    connection.execute(text(f"PREPARE listing (text, bigint) AS {numbered}"))
    # EXECUTE takes no bind parameters here; these are our own device name and a number.
    execute = text(f"{_EXPLAIN}EXECUTE listing ('{device}', {since:d})")
    generic = [row[0] for row in connection.execute(execute)]
    connection.execute(text("DEALLOCATE listing"))
    connection.execute(text("RESET plan_cache_mode"))
    for plan in (custom, generic):
        scanned = [line for line in plan if "Seq Scan on" in line]
        if indexed and any(table in line for line in scanned for table in _BIG_TABLES):
            raise SystemExit("the listing reads a big table sequentially:\n" + "\n".join(plan))
    return custom, generic


def plan_summary(plan: list[str]) -> str:
    """The plan's root buffer count and execution time (EXPLAIN ANALYZE, BUFFERS)."""
    buffers = next((line.strip() for line in plan if "Buffers:" in line), "Buffers: ?")
    execution = next((line.strip() for line in plan if line.startswith("Execution")), "")
    return f"{buffers}, {execution}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per route per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating 304 and hello rounds")
    parser.add_argument("--threads", type=int, default=8, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--small", type=int, default=1_000, help="registrations, small table")
    parser.add_argument("--large", type=int, default=1_000_000, help="registrations, large")
    parser.add_argument("--per-device", type=int, default=5, help="passes on each device")
    parser.add_argument("--requests", type=int, default=2_000, help="listings per measurement")
    parser.add_argument("--passes", type=int, default=10_000, help="distinct passes for 304s")
    args = parser.parse_args()
    unit = 2 * args.per_device
    if args.per_device < 2 or args.small % unit or args.large % unit or args.large <= args.small:
        parser.error(f"--per-device >= 2; --small < --large, both multiples of {unit}")

    with bench_database() as (env, cluster):
        program = create_program(env)
        engine = create_engine(env["PASSES_DATABASE_URL"])
        grow(engine, program, 0, args.small, args.per_device)
        with gunicorn(env, args.workers) as server:
            measure_listings(args, engine, program, server.port)
            servers = Servers(gunicorn=server.pid, postgres=postmaster_pid(cluster))
            measure_304(args, engine, server.port, servers)
        engine.dispose()


def measure_listings(args: argparse.Namespace, engine: Engine, program: int, port: int) -> None:
    """Listing latency for the same devices at the small and the large table; the plan."""
    per_device = args.per_device
    devices = list(range(args.small // per_device))  # the same devices at both table sizes
    print(
        f"gunicorn {args.workers} gthread workers x 4 threads, PostgreSQL; "
        f"{per_device} passes per device, each pass on 2 devices"
    )

    # A tag from before a change to 2 of every device's passes: listing since it gives those 2.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _status, body = list_serials(connection, device_name(0), None)
    connection.close()
    tag = str(body["lastUpdated"])
    bumped = [serial(card) for card in range(args.small // 2) if changed(card, per_device)]
    with engine.begin() as db:
        db.execute(_BUMP, {"serials": bumped})

    print(f"list updated serials: {args.requests} sequential requests over {len(devices)} devices")
    plan: list[str] = []
    generic: list[str] = []
    for size in (args.small, args.large):
        loaded = ""
        if size != args.small:
            loaded = f", loaded in {grow(engine, program, args.small, size, per_device):.0f} s"
        with engine.connect() as db:
            rows = {table: count(db, table) for table in _BIG_TABLES}
        if rows["apple_registrations"] != size:
            raise SystemExit(f"expected {size} registrations, found {rows}")
        listing_latency(port, devices, per_device, None, 200)  # warm up
        hello = hello_latency(port, args.requests)
        full = listing_latency(port, devices, per_device, None, args.requests)
        since = listing_latency(port, devices, per_device, tag, args.requests)
        with engine.connect() as db:  # after the listings, so it sees the cache they see
            plan, generic = explain(db, device_name(devices[-1]), int(tag), size == args.large)
        print(
            f"  {size:>9,} registrations ({rows['cards']:,} cards, "
            f"{rows['apple_devices']:,} devices{loaded})"
        )
        print(f"    /healthz, for comparison:       p50 {hello[0]:5.2f} ms, p99 {hello[1]:5.2f} ms")
        print(
            f"    all {per_device} passes (no tag):          "
            f"p50 {full[0]:5.2f} ms, p99 {full[1]:5.2f} ms"
        )
        print(f"    2 changed (passesUpdatedSince): p50 {since[0]:5.2f} ms, p99 {since[1]:5.2f} ms")
        print(f"    one listing, as planned:        {plan_summary(plan)}")
        print(f"    one listing, generic plan:      {plan_summary(generic)}")
    print(
        f"  plan at {args.large:,} registrations, passesUpdatedSince={tag} (checked, as is the "
        "generic plan: no big table read sequentially):"
    )
    for line in plan:
        print(f"    {line}")


@dataclass
class Totals:
    """One route's answers, latencies and CPU seconds (server side, and this client) over all
    rounds."""

    answers: int = 0
    latencies: list[float] = field(default_factory=list)
    gunicorn_cpu: float = 0.0
    postgres_cpu: float = 0.0
    client_cpu: float = 0.0

    def per_request(self) -> tuple[float, float, float]:
        """CPU microseconds per request: gunicorn, PostgreSQL, client."""
        web, sql, client = (
            cpu / self.answers * 1e6
            for cpu in (self.gunicorn_cpu, self.postgres_cpu, self.client_cpu)
        )
        return web, sql, client

    def line(self, name: str, seconds: float) -> str:
        web, sql, client = self.per_request()
        return (
            f"  {name:<22} {self.answers / seconds:7.1f} requests/s; CPU per request: "
            f"{web:4.0f} us gunicorn + {sql:3.0f} us PostgreSQL, client {client:3.0f} us"
        )


def measure_304(args: argparse.Namespace, engine: Engine, port: int, servers: Servers) -> None:
    """304s/s vs /healthz requests/s on the same server, and the CPU time that gunicorn's workers,
    PostgreSQL's backends and this client spend on each (which, unlike rates, hardly moves when
    other programs compete for the cores)."""
    with engine.connect() as db:
        sample = db.execute(_SAMPLE, {"limit": args.passes}).all()
    passes = [
        (
            f"/passkit/v1/passes/{pass_type()}/{row.serial_number}",
            {
                "Authorization": f"ApplePass {row.authentication_token}",
                "If-Modified-Since": http_date(row.updated_at),
            },
        )
        for row in sample
    ]
    # The server's own Last-Modified for one pass (a full, signed download) is what we send back.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path, headers = passes[0]
    connection.request("GET", path, headers={"Authorization": headers["Authorization"]})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200 or response.headers["Last-Modified"] != headers["If-Modified-Since"]:
        raise SystemExit(
            f"full download: HTTP {response.status}, Last-Modified "
            f"{response.headers['Last-Modified']!r}, expected {headers['If-Modified-Since']!r}"
        )

    def hello(connection: http.client.HTTPConnection, _index: int) -> int:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status

    def not_modified(connection: http.client.HTTPConnection, index: int) -> int:
        path, headers = passes[index % len(passes)]
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    def is_304(status: int) -> bool:
        return status == 304

    def measure(totals: Totals, request: Request, accept: Callable[[int], bool]) -> None:
        web, sql = cpu_seconds(servers.gunicorn), cpu_seconds(servers.postgres)
        client = time.process_time()
        answers, latencies = drive(port, args.seconds, args.threads, request, accept)
        totals.client_cpu += time.process_time() - client
        totals.gunicorn_cpu += cpu_seconds(servers.gunicorn) - web
        totals.postgres_cpu += cpu_seconds(servers.postgres) - sql
        totals.answers += answers
        totals.latencies += latencies

    drive(port, 2.0, args.threads, not_modified, is_304)  # warm up: connections, plans
    drive(port, 1.0, args.threads, hello)
    hellos, answered = Totals(), Totals()
    for _ in range(args.rounds):  # alternate, so that machine noise hits both alike
        measure(hellos, hello, succeeded)
        measure(answered, not_modified, is_304)
    elapsed = args.rounds * args.seconds
    p50, p99 = p50_p99(answered.latencies)
    print(
        f"pass downloads answered 304: {len(passes):,} passes, {args.threads} client connections, "
        f"{args.rounds} x {args.seconds:.0f} s per route, alternating"
    )
    print(hellos.line("hello-world (/healthz):", elapsed))
    print(answered.line("304 Not Modified:", elapsed))
    print(
        f"  304 latency p50 {p50:.1f} ms, p99 {p99:.1f} ms under load; "
        f"all {answered.answers:,} answers were 304"
    )
    # Client, server and database share the cores, so when they are the bottleneck the rates
    # relate inversely to the total CPU per request: the same ratio, from far less noisy figures.
    by_cpu = sum(hellos.per_request()) / sum(answered.per_request())
    print(f"  hello-world CPU per request / 304 CPU per request (all processes) = {by_cpu:.3f}")
    ratio = answered.answers / hellos.answers
    print(f"304 answers/s / hello-world requests/s = {ratio:.3f} (target >= 0.6)")


def http_date(moment: datetime) -> str:
    """``Last-Modified`` as passes.web.conditional.mark_private writes it."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


if __name__ == "__main__":
    main()
