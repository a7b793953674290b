"""APNs pushes per second: our h2 client against aioapns 4.x, same fake APNs, same run.

What is measured: how fast ONE sender process gets pass update pushes (``POST /3/device/<token>``,
body ``{}``, push type background, priority 5, certificate authentication) answered by the fake
APNs of the tests (``tests/fake_apns.py``) over TLS on loopback. Each client pushes to
``--tokens`` distinct device tokens (default 100,000); pushes/s = tokens / wall time of the whole
send, answers included. aioapns, the usual asyncio APNs library, is the baseline, measured in
the same run (target: ours >= 3 x aioapns).

Each client is used as its documentation shows, with its defaults: ours is one
``ApnsClient.send(tokens)`` over its 2 connections, each filled with as many streams as the
server allows; aioapns is one ``APNs`` object and a ``send_notification`` per push from N
concurrent tasks, its pool opening connections as the load needs them. aioapns gets worse the
more streams it has in flight (h2 walks every open stream for each new one), so N is not
guessed: ``--aioapns-concurrency auto`` (the default) tries several on a short run and keeps
the fastest; the trials are printed with the ratio to each. On loopback answers come back at
once, so a few dozen pushes in flight suffice, which suits aioapns; across a real network to
APNs a sender needs rate x round trip in flight (hundreds). ``--rtt-ms`` makes the fake answer
that late. Both clients are warmed up (connections open) before the clock starts.

Why two processes: the fake runs in a process of its own (the machine this was written for has
two cores: one for the sender, one for the fake), so the sender never waits for the fake's GIL.
The fake checks every push as in the tests (client certificate, topic, headers, body); its
process does not collect garbage while a client is measured (it keeps a record of every push,
which the collector would otherwise walk again and again) but between clients. The table also
shows the CPU time each side spent per push: when the fake's is close to the wall time per push,
the fake, not the client, set the pace.

After each client the bench checks that the fake answered exactly the tokens sent, each once,
with 200 (a count check, not a timing assertion; timings are only reported). Nothing leaves
loopback: aioapns's hard-coded Apple host is rerouted to the fake inside this process only
(see :func:`route_aioapns_to`).

Needs the ``bench`` extra for aioapns: ``pip install -e '.[bench]'``. Run from the repository:
``.venv/bin/python bench/push.py`` (about a minute; ``--tokens 10000`` for a quick look).
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import gc
import hashlib
import importlib.metadata
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from passes.push.apns import ApnsClient, tls_context  # noqa: E402
from passes.wallet.apple.devcerts import DevChain, create_dev_chain  # noqa: E402

TOPIC = "pass.bench.loyalpass"
TEAM = "BENCH00001"
STREAMS = 1000  # the fake's SETTINGS_MAX_CONCURRENT_STREAMS, APNs's usual value
WARM_UP = 1000  # pushes before the clock starts, per client
TRIAL = 5000  # pushes per aioapns concurrency tried by --aioapns-concurrency auto
CONCURRENCIES = (50, 100, 200, 500, 1000, 2000)


# -- the fake APNs, in its own process --------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What the fake saw since its last reset, and the CPU time its process spent on it."""

    pushes: int
    delivered: int  # answered 200
    distinct: int  # distinct device tokens answered 200
    digest: str  # of the sorted tokens answered 200
    connections: int  # accepted since the client started
    refused_streams: int
    errors: list[str]
    cpu_seconds: float


def token_digest(tokens: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(tokens)).encode()).hexdigest()


def serve(
    chain: DevChain, directory: Path, delay: float, pipe: multiprocessing.connection.Connection
) -> None:
    """Run the fake APNs until told to stop; reset and report when asked."""
    from fake_apns import FakeAPNs

    with FakeAPNs(
        directory,
        client_ca_files=[chain.root_certificate, chain.wwdr_certificate],
        max_concurrent_streams=STREAMS,
        response_delay=delay,
    ) as server:
        pipe.send((server.port, str(server.ca_file)))
        cpu = time.process_time()
        connections = 0
        while True:
            command = pipe.recv()
            if command == "stop":
                break
            if command == "begin":  # a new client: count its connections from here
                connections = server.connections_accepted
                pipe.send(None)
            elif command == "reset":
                server.reset()
                gc.enable()
                gc.collect()
                gc.disable()  # until the next reset: see the module docstring
                cpu = time.process_time()
                pipe.send(None)
            elif command == "report":
                spent = time.process_time() - cpu
                pushes = server.pushes
                delivered = [push.token for push in pushes if push.status == 200]
                pipe.send(
                    Received(
                        pushes=len(pushes),
                        delivered=len(delivered),
                        distinct=len(set(delivered)),
                        digest=token_digest(delivered),
                        connections=server.connections_accepted - connections,
                        refused_streams=server.refused_streams,
                        errors=list(server.errors),
                        cpu_seconds=spent,
                    )
                )
    gc.enable()
    pipe.send("stopped")


class FakeServer:
    """The fake APNs in a child process, remote-controlled through a pipe."""

    def __init__(self, chain: DevChain, directory: Path, delay: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(chain, directory, delay, child), name="fake-apns", daemon=True
        )
        self._process.start()
        self.port, ca_file = self._pipe.recv()
        self.ca_file = Path(ca_file)

    def begin(self) -> None:
        self._pipe.send("begin")
        self._pipe.recv()

    def reset(self) -> None:
        self._pipe.send("reset")
        self._pipe.recv()

    def report(self) -> Received:
        self._pipe.send("report")
        received: Received = self._pipe.recv()
        return received

    def stop(self) -> None:
        self._pipe.send("stop")
        self._pipe.recv()
        self._process.join(timeout=30)


# -- the two clients --------------------------------------------------------------------------


class Sender(abc.ABC):
    """One client, connected to the fake: ``send`` returns how many pushes were answered 200."""

    name = ""

    @abc.abstractmethod
    async def send(self, tokens: list[str]) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class Ours(Sender):
    name = "ours (h2), 1 send()"

    def __init__(self, server: FakeServer, chain: DevChain) -> None:
        context = tls_context(
            ca_file=str(server.ca_file),
            certificate=str(chain.certificate),
            private_key=str(chain.private_key),
        )
        self.client = ApnsClient(TOPIC, context, endpoint=f"https://127.0.0.1:{server.port}")

    async def send(self, tokens: list[str]) -> int:
        results = await self.client.send(tokens)
        return sum(1 for result in results if result.status == 200)

    async def close(self) -> None:
        await self.client.close()


def route_aioapns_to(loop: asyncio.AbstractEventLoop, port: int) -> None:
    """Make aioapns's connections to Apple's (hard-coded) APNs hosts go to the fake instead.

    aioapns calls ``loop.create_connection(host=APNS_SERVER, port=443, ssl=...)``; this wraps
    that one method of this process's event loop so those two hosts become 127.0.0.1:``port``,
    and refuses any other destination, so nothing can leave loopback. With the host rewritten,
    TLS verifies the fake's certificate for 127.0.0.1 against the fake's own CA: verification
    stays on (aioapns's ``no_cert_validation`` is not used).
    """
    from aioapns.connection import APNsDevelopmentClientProtocol, APNsProductionClientProtocol

    apple = {
        (APNsProductionClientProtocol.APNS_SERVER, APNsProductionClientProtocol.APNS_PORT),
        (APNsDevelopmentClientProtocol.APNS_SERVER, APNsDevelopmentClientProtocol.APNS_PORT),
    }
    create_connection = loop.create_connection

    async def to_fake(protocol_factory: Any, host: Any = None, *args: Any, **kwargs: Any) -> Any:
        destination = (host, args[0] if args else kwargs.pop("port", None))
        if destination not in apple or len(args) > 1:
            raise ConnectionRefusedError(f"bench: not connecting to {destination}")
        return await create_connection(protocol_factory, "127.0.0.1", port, **kwargs)

    loop.create_connection = to_fake  # type: ignore[method-assign]


class Aioapns(Sender):
    name = "aioapns 4"

    def __init__(self, server: FakeServer, chain: DevChain, directory: Path, tasks: int) -> None:
        from aioapns import APNs

        route_aioapns_to(asyncio.get_running_loop(), server.port)
        # aioapns wants certificate and key in one PEM file.
        client_pem = directory / "aioapns-client.pem"
        client_pem.write_bytes(chain.certificate.read_bytes() + chain.private_key.read_bytes())
        # Its default context trusts the system store and offers no ALPN; the fake (like APNs)
        # speaks only HTTP/2, so the context passed for the fake's private CA also offers h2.
        context = ssl.create_default_context(cafile=str(server.ca_file))
        context.set_alpn_protocols(["h2"])
        self.client = APNs(
            client_cert=str(client_pem), topic=TOPIC, use_sandbox=True, ssl_context=context
        )
        self.tasks = tasks
        self.name = f"aioapns 4, {tasks} tasks"

    async def send(self, tokens: list[str]) -> int:
        from aioapns import NotificationRequest, PushType

        queue = iter(tokens)
        delivered = 0

        async def task() -> None:
            nonlocal delivered
            for token in queue:
                request = NotificationRequest(
                    device_token=token, message={}, priority=5, push_type=PushType.BACKGROUND
                )
                result = await self.client.send_notification(request)
                delivered += result.is_successful

        await asyncio.gather(*(task() for _ in range(min(self.tasks, len(tokens)))))
        return delivered

    async def close(self) -> None:
        self.client.pool.close()


# -- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    name: str
    tokens: int
    seconds: float
    sender_cpu: float
    received: Received

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def device_tokens(count: int, rng: random.Random) -> list[str]:
    """Distinct 64-hex-digit device tokens (random: no two runs share one)."""
    tokens = {rng.randbytes(32).hex() for _ in range(count)}
    while len(tokens) < count:
        tokens.add(rng.randbytes(32).hex())
    return list(tokens)


def measure(make: Callable[[], Sender], server: FakeServer, count: int, rng: random.Random) -> Run:
    """Warm up, then time one send of ``count`` new tokens; check what the fake received."""
    warm_up, tokens = device_tokens(WARM_UP, rng), device_tokens(count, rng)

    async def run() -> tuple[str, float, float, int]:
        await asyncio.to_thread(server.begin)
        sender = make()
        await sender.send(warm_up)
        await asyncio.to_thread(server.reset)
        start, cpu = time.perf_counter(), time.process_time()
        delivered = await sender.send(tokens)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        await sender.close()
        return sender.name, seconds, cpu, delivered

    name, seconds, cpu, delivered = asyncio.run(run())
    received = server.report()
    problems = []
    if delivered != count:
        problems.append(f"the client saw {delivered} answers 200, not {count}")
    if (received.pushes, received.delivered, received.distinct) != (count, count, count):
        problems.append(
            f"the fake received {received.pushes} pushes, answered {received.delivered} with "
            f"200, for {received.distinct} distinct tokens; expected {count} of each"
        )
    elif received.digest != token_digest(tokens):
        problems.append("the fake answered other tokens than those sent")
    if received.errors:
        problems.append(f"errors inside the fake: {received.errors[:3]}")
    if problems:
        raise SystemExit(f"{name}: " + "; ".join(problems))
    return Run(name, count, seconds, cpu, received)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=100_000, help="pushes per client")
    parser.add_argument(
        "--aioapns-concurrency",
        default="auto",
        help="concurrent send_notification tasks for aioapns, or 'auto': the fastest of "
        + ", ".join(map(str, CONCURRENCIES))
        + f" on {TRIAL} pushes each",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="the fake answers each push this late, like APNs across a network (default 0: "
        "loopback, where few pushes in flight are enough)",
    )
    parser.add_argument("--seed", type=int, default=None, help="for the random device tokens")
    args = parser.parse_args()
    try:
        importlib.metadata.version("aioapns")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("aioapns is missing: pip install -e '.[bench]'") from None

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-push-"))
    chain = create_dev_chain(workdir / "certs", pass_type_identifier=TOPIC, team_identifier=TEAM)
    server = FakeServer(chain, workdir / "apns", args.rtt_ms / 1000)

    def aioapns(tasks: int) -> Callable[[], Sender]:
        return lambda: Aioapns(server, chain, workdir, tasks)

    try:
        trials: list[tuple[int, Run]] = []
        if args.aioapns_concurrency == "auto":
            for tasks in CONCURRENCIES:
                trials.append((tasks, measure(aioapns(tasks), server, TRIAL, rng)))
            concurrency = max(trials, key=lambda trial: trial[1].rate)[0]
        else:
            concurrency = int(args.aioapns_concurrency)
        ours = measure(lambda: Ours(server, chain), server, args.tokens, rng)
        baseline = measure(aioapns(concurrency), server, args.tokens, rng)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("h2", "hpack", "aioapns")
    )
    print(f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs")
    if trials:
        print(f"aioapns concurrency trials ({TRIAL} pushes each):")
        for tasks, run in trials:
            chosen = "  <- used" if tasks == concurrency else ""
            print(
                f"  {tasks:5d} tasks {run.rate:8.0f} pushes/s  (ours: {ours.rate / run.rate:.2f} x)"
                f"{chosen}"
            )
    delay = f", answers {args.rtt_ms:g} ms late" if args.rtt_ms else ""
    print(
        f"{args.tokens} pushes per client from 1 sender process to the fake APNs (another "
        f"process), TLS on loopback{delay}, answers checked"
    )
    width = max(len(ours.name), len(baseline.name))
    print(
        f"  {'client':<{width}} {'conns':>5} {'seconds':>8} {'pushes/s':>9}"
        f" {'CPU us/push: sender':>20} {'fake':>5}   {'busy: sender':>12} {'fake':>5}"
    )
    for run in (ours, baseline):
        sender_cpu, fake_cpu = run.sender_cpu, run.received.cpu_seconds
        print(
            f"  {run.name:<{width}} {run.received.connections:>5}"
            f" {run.seconds:8.2f} {run.rate:9.0f}"
            f" {sender_cpu / run.tokens * 1e6:20.0f} {fake_cpu / run.tokens * 1e6:5.0f}"
            f"   {sender_cpu / run.seconds:12.0%} {fake_cpu / run.seconds:5.0%}"
        )
    print(f"ours / aioapns = {ours.rate / baseline.rate:.2f} (target >= 3)")


if __name__ == "__main__":
    main()
