"""A thin APNs client for pass update pushes: HTTP/2 over TLS on ``h2`` and asyncio.

Pass pushes are all alike (``POST /3/device/<token>``, body ``{}``, topic = pass type id), so the
client is a loop that keeps a few long-lived connections open and fills each one with as many
concurrent streams as the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` allows (Apple may lower it,
even to 1). Connections are reused across batches: Apple treats rapid reconnects as abuse.

Throughput is bounded by the CPU time per push in Python, so the hot path is kept short: each
answer starts the next push from the connection's own callback (no task or future per push),
whatever a read made due leaves in one write, the headers shared by a batch are encoded once,
and h2 is spared its per-header checks and its walk over every open stream (see the helpers).

:class:`ApnsClient` is async; :class:`BlockingApnsClient` runs one in its own thread so the
scheduler's synchronous jobs can use it, keeping connections open between runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
import jwt

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.push.apple.com"
MAX_STREAMS_CAP = 1000  # our own ceiling per connection, whatever the server allows
JWT_LIFETIME = 50 * 60
T = TypeVar("T")  # Apple: refresh no more often than every 20 and at least every 60 min


@dataclass(frozen=True)
class PushResult:
    """APNs's answer for one token. ``status`` 0 means no answer (connection lost, stream refused):
    retry. ``timestamp_ms`` comes with 410: the token is dead since then."""

    token: str
    status: int
    reason: str | None = None
    timestamp_ms: int | None = None

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


class TokenSigner:
    """The ES256 provider token for token-based authentication, cached for 50 minutes."""

    def __init__(self, key_file: Path, key_id: str, team_id: str) -> None:
        self._key = key_file.read_bytes()
        self.key_id = key_id
        self.team_id = team_id
        self._token: str | None = None
        self._issued = 0.0

    def token(self) -> str:
        now = time.time()
        if self._token is None or now - self._issued >= JWT_LIFETIME:
            self._issued = now
            self._token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
        return self._token


def tls_context(
    *,
    ca_file: str | None,
    certificate: str | None = None,
    private_key: str | None = None,
    key_password: bytes | None = None,
) -> ssl.SSLContext:
    """Verifying TLS with ALPN h2; the pass certificate as client certificate when given.
    ``ca_file`` replaces the system trust store (for a test server); verification stays on."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    if certificate is not None:
        context.load_cert_chain(certificate, private_key, password=key_password)
    return context


class _H2Connection(h2.connection.H2Connection):
    """h2, minus its two costliest habits for this client.

    h2 counts open streams by walking all of them on every new stream: with a thousand in flight
    that is most of the cost of a push. The client counts its own streams (it never opens more
    than the server allows) and lets h2 walk them, dropping closed ones, only now and then. And
    request headers are encoded by :class:`_Encoder`.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        self.in_flight = 0  # request streams sent and not yet answered or reset
        self.encoder = _Encoder()

    @property
    def open_outbound_streams(self) -> int:
        if len(self.streams) > 2 * self.in_flight + 64:
            return max(self.in_flight, super().open_outbound_streams)
        return self.in_flight


class _Encoder(hpack.Encoder):
    """HPACK for pushes, without Huffman coding (which, in Python, costs more than the 20 bytes a
    path saves).

    Every request of a batch has the same headers but for ``:path``, which is never indexed (a
    device token is personal, and indexing unique values only churns the table). So after the
    first request the table no longer changes, and the others encode to the same bytes around
    the path: those are kept and reused, with the path written in between.
    """

    def __init__(self) -> None:
        super().__init__()
        self._constant: list[Any] | None = None  # the headers around the path, as cached
        self._before = self._after = b""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        headers = list(headers)
        if len(headers) < 4 or headers[3][0] != b":path":
            return super().encode(headers, huffman=False)
        path = headers[3][1]
        constant = headers[:3] + headers[4:]
        if (
            constant == self._constant
            and len(path) < 0x7F
            and not self.header_table.resized
            and type(headers[3]) is hpack.NeverIndexedHeaderTuple
        ):
            # never indexed, name :path (static index 4), then the length and the raw value
            return b"".join((self._before, b"\x14", bytes((len(path),)), path, self._after))
        block = super().encode(headers, huffman=False)
        self._constant = None
        # Reusable only if encoding them again leaves the table alone: each is in the table
        # already, or never indexed (a table too small to hold them all keeps changing).
        if self._reusable(constant):
            self._before = super().encode(headers[:3], huffman=False)
            self._after = super().encode(headers[4:], huffman=False)
            self._constant = constant
        return block

    def _reusable(self, headers: list[Any]) -> bool:
        if self.header_table.resized:
            return False
        for header in headers:
            if type(header) is not hpack.NeverIndexedHeaderTuple:
                found = self.header_table.search(header[0], header[1])
                if found is None or found[2] is None:
                    return False
        return True


# h2's per-header, per-character checks cost more than the rest of a push. Our request headers
# are normalised and checked by us as h2 would: the constant ones once per batch, the device path
# once per push. Of APNs's answer only :status is read, and checked where it is read.
_H2_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
)
_UNSENDABLE = re.compile(rb"[\x00\r\n]")  # in a header value, once stripped (RFC 9113 8.2.1)
_STATUS = re.compile(rb"[1-5][0-9][0-9]")
_DEVICE_PATH = b"/3/device/"
_EMPTY_JSON = b"{}"
# A read may answer a thousand pushes; the next ones leave this many at a time, so that the server
# works on them while the rest are being started.
_FLUSH_EVERY = 100


class _Batch:
    """One ``send``: feeds tokens to the connections as streams free up, collects the answers."""

    def __init__(
        self,
        tokens: deque[str],
        prefix: list[tuple[bytes, bytes]],
        suffix: list[tuple[bytes, bytes]],
        done: asyncio.Future[None],
    ) -> None:
        self.queue = tokens
        self.prefix = prefix  # headers before :path
        self.suffix = suffix  # headers after it
        self.results: list[PushResult] = []
        self.done = done
        self.connections: list[_Connection] = []

    def feed(self, connection: _Connection) -> None:
        queue = self.queue
        while queue and connection.can_start():
            token = queue.popleft()
            if not connection.start(token):
                self.results.append(PushResult(token, 0))  # never sent: try again later

    def answered(self, connection: _Connection, token: str, status: int, body: bytes) -> None:
        self.results.append(_result(token, status, body) if body else PushResult(token, status))
        if status >= 500:
            connection.recycle = True
        if self.queue and not connection.closed:
            self.feed(connection)
        self.check()

    def check(self) -> None:
        """Done when nothing is in flight and nothing more can start."""
        if self.done.done():
            return
        for connection in self.connections:
            if connection.h2.in_flight or (self.queue and not connection.closed):
                return
        self.done.set_result(None)


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection and its in-flight streams. Streams are started from callbacks as
    answers come in, without a task or future per push, and everything that is due goes out in
    one write per read."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.h2 = _H2Connection(_H2_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, list[Any]] = {}  # stream id -> [token, status, body]
        self.limit = 1  # until the server's SETTINGS arrive
        self.settings_received = asyncio.Event()
        self.closed = False
        self.recycle = False  # a 5xx asks for a fresh connection
        self.batch: _Batch | None = None
        self.unflushed = 0  # streams started since the last write

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(
            lambda: self, self.host, self.port, ssl=self.context, server_hostname=self.host
        )
        if self.closed:
            transport.close()
            raise ConnectionError(f"{self.host}:{self.port} did not negotiate HTTP/2")
        # The server's first SETTINGS say how many streams it takes; do not guess.
        try:
            await asyncio.wait_for(self.settings_received.wait(), timeout=10)
        except TimeoutError:
            transport.close()
            raise
        if self.closed:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self.closed = True  # open() hangs up
            return
        # Our preface goes out before anything the server sends can be read.
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.flush()
        self.limit = min(MAX_STREAMS_CAP, self.h2.remote_settings.max_concurrent_streams)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("APNs connection lost: %s", exc)
        self._close_pending()
        self.settings_received.set()  # an open() still waiting gives up at once

    def data_received(self, data: bytes) -> None:
        if self.closed and not self.pending:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.info("APNs connection lost: %s", exc)
            self.flush()  # h2's GOAWAY
            if self.transport is not None:
                self.transport.close()
            self._close_pending()
            return
        for event in events:
            self._handle(event)
            if self.unflushed >= _FLUSH_EVERY:
                self.flush()
        self.flush()

    def flush(self) -> None:
        self.unflushed = 0
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _handle(self, event: h2.events.Event) -> None:
        kind = type(event)
        if kind is h2.events.ResponseReceived:
            entry = self.pending.get(event.stream_id)  # type: ignore[attr-defined]
            if entry is not None:
                for name, value in event.headers or ():  # type: ignore[attr-defined]
                    if name == b":status":
                        entry[1] = int(value) if _STATUS.fullmatch(value) else 0
        elif kind is h2.events.StreamEnded:
            self._finish(event.stream_id)  # type: ignore[attr-defined]
        elif kind is h2.events.DataReceived:
            assert isinstance(event, h2.events.DataReceived)
            entry = self.pending.get(event.stream_id or 0)
            if entry is not None:
                entry[2] += event.data or b""
            self.h2.acknowledge_received_data(
                event.flow_controlled_length or 0, event.stream_id or 0
            )
        elif kind is h2.events.StreamReset:
            self._finish(event.stream_id, refused=True)  # type: ignore[attr-defined]
        elif kind is h2.events.RemoteSettingsChanged:
            self.limit = max(
                1, min(MAX_STREAMS_CAP, self.h2.remote_settings.max_concurrent_streams)
            )
            self.settings_received.set()
            if self.batch is not None:
                self.batch.feed(self)
        elif kind is h2.events.ConnectionTerminated:
            self._close_pending()

    def can_start(self) -> bool:
        return not self.closed and self.h2.in_flight < self.limit

    def start(self, token: str) -> bool:
        """Open a stream pushing to ``token`` (its answer goes to the batch); False if it could
        not be sent."""
        batch = self.batch
        assert batch is not None
        # What h2 would send, or refuse to (device tokens are hex, checked at registration).
        path = (_DEVICE_PATH + token.encode()).rstrip()
        if _UNSENDABLE.search(path):
            return False
        h2_connection = self.h2
        try:
            stream_id = h2_connection.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.closed = self.recycle = True  # used up: finish what is in flight, then renew
            batch.queue.appendleft(token)
            return True
        try:
            h2_connection.send_headers(
                stream_id,
                [*batch.prefix, hpack.NeverIndexedHeaderTuple(b":path", path), *batch.suffix],
            )
            h2_connection.send_data(stream_id, _EMPTY_JSON, end_stream=True)
        except h2.exceptions.H2Error:
            stream = h2_connection.streams.get(stream_id)
            if stream is not None and not stream.closed:
                h2_connection.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            return False
        self.pending[stream_id] = [token, 0, b""]
        h2_connection.in_flight += 1
        self.unflushed += 1
        return True

    def _finish(self, stream_id: int, refused: bool = False) -> None:
        entry = self.pending.pop(stream_id, None)
        if entry is None:
            return
        self.h2.in_flight -= 1
        token, status, body = entry
        if self.batch is not None:
            self.batch.answered(self, token, 0 if refused else status, body)

    def _close_pending(self) -> None:
        self.closed = True
        for stream_id in list(self.pending):
            self._finish(stream_id, refused=True)
        if self.batch is not None:
            self.batch.check()

    async def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                self.h2.close_connection()
                self.flush()
            except h2.exceptions.H2Error:
                pass
            transport.close()
        self.closed = True


class ApnsClient:
    """Pushes to many device tokens over a small pool of long-lived HTTP/2 connections."""

    def __init__(
        self,
        topic: str,
        context: ssl.SSLContext,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        token_signer: TokenSigner | None = None,
        connections: int = 2,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"APNS_ENDPOINT must be an https URL, not {endpoint!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.topic = topic
        self.context = context
        self.token_signer = token_signer
        self.size = max(1, connections)
        self._pool: list[_Connection] = []

    async def _connections(self) -> list[_Connection]:
        alive = [c for c in self._pool if not c.closed and not c.recycle]
        for stale in (c for c in self._pool if c not in alive):
            await stale.close()
        while len(alive) < self.size:
            connection = _Connection(self.host, self.port, self.context)
            await connection.open()
            alive.append(connection)
        self._pool = alive
        return alive

    def _headers(self) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """The request headers before and after :path, the same for every push of a batch."""
        headers: list[tuple[str, str]] = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", self.host),
            ("apns-topic", self.topic),
            ("apns-push-type", "background"),
            ("apns-priority", "5"),
        ]
        if self.token_signer is not None:
            headers.append(("authorization", f"bearer {self.token_signer.token()}"))
        encoded = [_encode_header(name, value) for name, value in headers]
        return encoded[:3], encoded[3:]

    async def send(self, tokens: Iterable[str]) -> list[PushResult]:
        """Push to every token (each once); results in no particular order."""
        queue = deque(dict.fromkeys(tokens))
        if not queue:
            return []
        try:
            pool = await self._connections()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.warning("cannot reach APNs at %s:%d: %s", self.host, self.port, exc)
            return [PushResult(token, 0, "ConnectionFailed") for token in queue]
        try:
            prefix, suffix = self._headers()
        except ValueError as exc:  # a topic or credential no header can carry
            log.warning("cannot push: %s", exc)
            return [PushResult(token, 0, "BadHeader") for token in queue]
        batch = _Batch(queue, prefix, suffix, asyncio.get_running_loop().create_future())
        batch.connections = pool
        try:
            for connection in pool:
                connection.batch = batch
                batch.feed(connection)
                connection.flush()
            batch.check()
            await batch.done
        finally:
            for connection in pool:
                connection.batch = None
        results = batch.results
        results.extend(PushResult(token, 0, "NotSent") for token in queue)
        return results

    async def close(self) -> None:
        for connection in self._pool:
            await connection.close()
        self._pool = []


def _encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """A request header as h2 would send it (value stripped, a credential never indexed);
    ValueError where h2 would refuse it."""
    raw_value = value.encode().strip()
    if _UNSENDABLE.search(raw_value):
        raise ValueError(f"not a valid HTTP/2 header value for {name}: {value!r}")
    if name == "authorization":  # kept out of HPACK tables, as h2 does
        return hpack.NeverIndexedHeaderTuple(name.encode(), raw_value)
    return name.encode(), raw_value


def _result(token: str, status: int, body: bytes) -> PushResult:
    reason = None
    timestamp = None
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        if isinstance(document, dict):
            reason = document.get("reason")
            if isinstance(document.get("timestamp"), int):
                timestamp = document["timestamp"]
    return PushResult(token, status, reason, timestamp)


class BlockingApnsClient:
    """An :class:`ApnsClient` on its own event loop thread, callable from synchronous code."""

    def __init__(self, factory: Callable[[], ApnsClient]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"apns-{uuid.uuid4().hex[:6]}", daemon=True
        )
        self._thread.start()
        self.client = factory()  # its connections are opened on the loop, at the first send

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def send(self, tokens: Iterable[str]) -> list[PushResult]:
        result: list[PushResult] = self._call(self.client.send(list(tokens)))
        return result

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self.client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
