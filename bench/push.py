"""APNs pushes per second: our client against aioapns 4.x, same fake APNs, same run.

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

Why several processes: the fake is not what is measured (APNs is a fleet of servers), but it is
written on h2, a general HTTP/2 engine, and spends several times the CPU per push that our client
does; in one process it would set the pace. So it runs in ``--fake-processes`` processes of
its own (default 2): a thread here accepts each connection and hands it to the next process in
turn, which does the TLS handshake and serves it (``FakeAPNs.adopt``). Our 2 connections land in
different processes; aioapns's one connection in one, which keeps up with it. The sender never
waits for a fake's GIL. The fake checks every push as in the tests (client certificate, topic,
headers, body); its processes do not collect garbage while a client is measured (they keep a
record of every push, which the collector would otherwise walk again and again) but between
clients. The table also shows the CPU time each side spent per push, and how busy each side was
(the fake's summed over its processes: 200% is two cores): on a machine with two cores the
sender and the fakes share them, and when the sum is close to 200% the machine, not the
client, set the pace.

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
import multiprocessing.reduction
import os
import platform
import random
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_apns import ServerCertificates  # noqa: E402

from passes.push.apns import ApnsClient, tls_context  # noqa: E402
from passes.wallet.apple.devcerts import DevChain, create_dev_chain  # noqa: E402

TOPIC = "pass.bench.loyalpass"
TEAM = "BENCH00001"
STREAMS = 1000  # the fake's SETTINGS_MAX_CONCURRENT_STREAMS, APNs's usual value
WARM_UP = 1000  # pushes before the clock starts, per client
TRIAL = 5000  # pushes per aioapns concurrency tried by --aioapns-concurrency auto
CONCURRENCIES = (50, 100, 200, 500, 1000, 2000)


# -- the fake APNs, in processes of its own ---------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What the fakes saw since their last reset, and the CPU time their processes spent on it."""

    pushes: int
    delivered: list[str]  # device tokens answered 200
    connections: int  # accepted since the client started
    refused_streams: int
    errors: list[str]
    cpu_seconds: float

    @staticmethod
    def total(parts: list[Received]) -> Received:
        return Received(
            pushes=sum(part.pushes for part in parts),
            delivered=[token for part in parts for token in part.delivered],
            connections=sum(part.connections for part in parts),
            refused_streams=sum(part.refused_streams for part in parts),
            errors=[error for part in parts for error in part.errors],
            cpu_seconds=sum(part.cpu_seconds for part in parts),
        )


def token_digest(tokens: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(tokens)).encode()).hexdigest()


def serve(
    chain: DevChain,
    certificates: ServerCertificates,
    directory: Path,
    delay: float,
    pipe: multiprocessing.connection.Connection,
    handles: multiprocessing.connection.Connection,
) -> None:
    """Run one fake APNs until told to stop, serving the connections handed to it through
    ``handles``; reset and report when asked."""
    from fake_apns import FakeAPNs

    with FakeAPNs(
        directory,
        client_ca_files=[chain.root_certificate, chain.wwdr_certificate],
        max_concurrent_streams=STREAMS,
        response_delay=delay,
        certificates=certificates,
    ) as server:

        def adopt() -> None:
            while True:
                try:
                    descriptor = multiprocessing.reduction.recv_handle(handles)
                except (EOFError, OSError):
                    return
                server.adopt(socket.socket(fileno=descriptor))

        threading.Thread(target=adopt, name="adopt", daemon=True).start()
        pipe.send(None)
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
                pipe.send(
                    Received(
                        pushes=len(pushes),
                        delivered=[push.token for push in pushes if push.status == 200],
                        connections=server.connections_accepted - connections,
                        refused_streams=server.refused_streams,
                        errors=list(server.errors),
                        cpu_seconds=spent,
                    )
                )
    gc.enable()
    pipe.send("stopped")


class FakeServer:
    """The fake APNs in ``processes`` child processes behind one port on loopback.

    A thread here accepts each connection and hands it, round-robin, to the next process, which
    does the TLS handshake and serves it (``FakeAPNs.adopt``); all present one server
    certificate. Remote-controlled through a pipe per process.
    """

    def __init__(self, chain: DevChain, directory: Path, delay: float, processes: int) -> None:
        from fake_apns import create_server_certificates

        certificates = create_server_certificates(directory / "server")
        self.ca_file = certificates.ca_file
        context = multiprocessing.get_context("spawn")
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._handles: list[tuple[multiprocessing.connection.Connection, int]] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for number in range(processes):
            pipe, child_pipe = context.Pipe()
            handles, child_handles = context.Pipe()
            process = context.Process(
                target=serve,
                args=(
                    chain,
                    certificates,
                    directory / f"fake-{number}",
                    delay,
                    child_pipe,
                    child_handles,
                ),
                name=f"fake-apns-{number}",
                daemon=True,
            )
            process.start()
            self._pipes.append(pipe)
            self._handles.append((handles, process.pid or 0))
            self._processes.append(process)
        for pipe in self._pipes:
            pipe.recv()  # serving
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def _accept(self) -> None:
        turn = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with sock:
                handles, pid = self._handles[turn % len(self._handles)]
                multiprocessing.reduction.send_handle(handles, sock.fileno(), pid)
            turn += 1

    def _ask(self, command: str) -> list[Any]:
        for pipe in self._pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self._pipes]

    def begin(self) -> None:
        self._ask("begin")

    def reset(self) -> None:
        self._ask("reset")

    def report(self) -> Received:
        return Received.total(self._ask("report"))

    def stop(self) -> None:
        self._listener.close()
        self._ask("stop")
        for process in self._processes:
            process.join(timeout=30)


# -- the two clients --------------------------------------------------------------------------


class Sender(abc.ABC):
    """One client, connected to the fake: ``send`` returns how many pushes were answered 200."""

    name = ""

    @abc.abstractmethod
    async def send(self, tokens: list[str]) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class Ours(Sender):
    name = "ours, 1 send()"

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
    answered, distinct = len(received.delivered), len(set(received.delivered))
    if (received.pushes, answered, distinct) != (count, count, count):
        problems.append(
            f"the fake received {received.pushes} pushes, answered {answered} with "
            f"200, for {distinct} distinct tokens; expected {count} of each"
        )
    elif token_digest(received.delivered) != token_digest(tokens):
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
    parser.add_argument(
        "--fake-processes",
        type=int,
        default=2,
        help="processes the fake APNs is spread over, connections handed out round-robin "
        "(default 2: one per connection of ours)",
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
    server = FakeServer(chain, workdir / "apns", args.rtt_ms / 1000, args.fake_processes)

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
        f"{args.tokens} pushes per client from 1 sender process to the fake APNs "
        f"({args.fake_processes} other processes), TLS on loopback{delay}, answers checked"
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
