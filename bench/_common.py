"""What the server benchmarks share: a throw-away PostgreSQL database with a development signing
chain, gunicorn (gthread workers) on loopback, and a keep-alive HTTP load driver."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from passes.loyalty.models import Program  # noqa: E402
from passes.wallet.apple.devcerts import create_dev_chain  # noqa: E402
from postgres import Cluster, start_cluster  # noqa: E402

Request = Callable[[http.client.HTTPConnection, int], int]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def bench_database() -> Iterator[tuple[dict[str, str], Cluster]]:
    """A fresh cluster with an empty ``bench`` database: (the app's environment, the cluster)."""
    cluster = start_cluster()
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-"))
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
        yield (
            {
                "PASSES_DATABASE_URL": admin.replace("/postgres?", "/bench?"),
                "PASSES_SECRET_KEY": "bench-secret",
                "PASSES_PUBLIC_URL": "https://bench.example",
                "PASSES_APPLE_PASS_TYPE_IDENTIFIER": chain.pass_type_identifier,
                "PASSES_APPLE_TEAM_IDENTIFIER": chain.team_identifier,
                "PASSES_APPLE_CERTIFICATE": str(chain.certificate),
                "PASSES_APPLE_PRIVATE_KEY": str(chain.private_key),
                "PASSES_APPLE_WWDR_CERTIFICATE": str(chain.wwdr_certificate),
            },
            cluster,
        )
    finally:
        cluster.stop()


def bench_program(**fields: Any) -> Program:
    """The program every server benchmark measures (unsaved): one point per 10 roubles."""
    values: dict[str, Any] = {
        "slug": "bench",
        "name": "Bench",
        "organization_name": "Bench Ltd",
        "description": "Bench card",
        "card_prefix": "99",
        "rules": {"currency": "RUB", "earning": {"points": 1, "per_amount": 1000}},
    }
    return Program(**{**values, **fields})


class Server(NamedTuple):
    port: int
    pid: int  # gunicorn's arbiter; its workers are its children


@contextmanager
def gunicorn(env: dict[str, str], workers: int, threads: int = 4) -> Iterator[Server]:
    """``gunicorn app:app`` with gthread workers on a free loopback port."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:app",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield Server(port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def succeeded(status: int) -> bool:
    return status < 300


def drive(
    port: int,
    seconds: float,
    threads: int,
    request: Request,
    accept: Callable[[int], bool] = succeeded,
) -> tuple[int, list[float]]:
    """``request(connection, index)`` from ``threads`` keep-alive clients: (count, latencies).
    Exits if any answer's status is not accepted (by default: anything but 2xx)."""
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
            if not accept(status):
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


def postmaster_pid(cluster: Cluster) -> int:
    """The cluster's server process; its backends are its children."""
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def cpu_seconds(root: int) -> float:
    """User plus system CPU time used so far by process ``root`` and its live descendants
    (Linux /proc)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += ticks.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")
