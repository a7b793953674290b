"""A thin APNs client for pass update pushes: HTTP/2 over TLS on asyncio.

Pass pushes are all alike (``POST /3/device/<token>``, body ``{}``, topic = pass type id), so the
client is a loop that keeps a few long-lived connections open and fills each one with as many
concurrent streams as the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` allows (Apple may lower it,
even to 1). Connections are reused across batches: Apple treats rapid reconnects as abuse.

Throughput is bounded by the CPU time per push in Python, so the hot path is kept short: frames
are written and read directly (:mod:`passes.push.http2`) rather than through a general HTTP/2
engine, each answer starts the next push from the connection's own callback (no task or future
per push), whatever a read made due leaves in one write, and the headers shared by a batch are
encoded once. The README records the measurements behind this choice.

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

import hpack
import jwt

from passes.push import http2

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.push.apple.com"
MAX_STREAMS_CAP = 1000  # our own ceiling per connection, whatever the server allows
JWT_LIFETIME = 50 * 60  # Apple: refresh no more often than every 20 and at least every 60 min
ANSWER_TIMEOUT = 30.0  # seconds a connection may owe answers without a word
T = TypeVar("T")


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


class _RequestEncoder:
    """HPACK for push requests, without Huffman coding (which, in Python, costs more than the
    20 bytes a path saves).

    Every request of a batch has the same headers but for ``:path``, which is never indexed (a
    device token is personal, and indexing unique values only churns the table). So after the
    first request the table no longer changes, and the others encode to the same bytes around
    the path: those are kept and reused, with the path written in between. ``hpack`` does the
    encoding (and the table size updates the server asks for); this only remembers.
    """

    def __init__(self) -> None:
        self.hpack = hpack.Encoder()
        self._constant: tuple[list[Any], list[Any]] | None = None
        self._before = self._after = b""

    def set_table_size(self, size: int) -> None:
        self.hpack.header_table_size = size  # announced in the next block
        self._constant = None

    def encode(self, prefix: list[Any], path: bytes, suffix: list[Any]) -> bytes:
        constant = self._constant
        if (
            constant is not None
            and constant[0] is prefix
            and constant[1] is suffix
            and len(path) < 0x7F
        ):
            # never indexed, name :path (static index 4), then the length and the raw value
            return b"".join((self._before, b"\x14", bytes((len(path),)), path, self._after))
        encoder = self.hpack
        block: bytes = encoder.encode(
            [*prefix, hpack.NeverIndexedHeaderTuple(b":path", path), *suffix], huffman=False
        )
        self._constant = None
        # Reusable only if encoding them again leaves the table alone: each is in the table
        # already, or never indexed (a table too small to hold them all keeps changing).
        if self._reusable([*prefix, *suffix]):
            self._before = encoder.encode(prefix, huffman=False)
            self._after = encoder.encode(suffix, huffman=False)
            self._constant = (prefix, suffix)
        return block

    def _reusable(self, headers: list[Any]) -> bool:
        table = self.hpack.header_table
        if table.resized:
            return False
        for header in headers:
            if type(header) is not hpack.NeverIndexedHeaderTuple:
                found = table.search(header[0], header[1])
                if found is None or found[2] is None:
                    return False
        return True


_UNSENDABLE = re.compile(rb"[\x00\r\n]")  # in a header value, once stripped (RFC 9113 8.2.1)
_STATUS = re.compile(rb"[1-5][0-9][0-9]")
_DEVICE_PATH = b"/3/device/"
_EMPTY_JSON = b"{}"
_DATA_EMPTY_JSON = http2.frame(http2.DATA, http2.END_STREAM, 0, _EMPTY_JSON)[:5]  # + stream id
# A read may answer a thousand pushes; the next ones leave this many at a time, so that the server
# works on them while the rest are being started.
_FLUSH_EVERY = 100
_MAX_PATH = 4096  # device tokens are at most 200 hex digits; headers stay far below a frame
_MAX_ANSWER_BODY = 16_384  # APNs answers with a few dozen bytes of JSON; more is not APNs
_RECEIVE_WINDOW_UPDATE_AT = 32_768  # bytes of DATA read before the connection window is renewed
_OUR_SETTINGS = {http2.ENABLE_PUSH: 0, http2.MAX_CONCURRENT_STREAMS: 0}  # we accept no streams


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
            if connection.pending or (self.queue and connection.can_start()):
                return
        self.done.set_result(None)


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection to APNs and its in-flight streams.

    Frames are read and written directly (:mod:`passes.push.http2`): the client keeps just the
    state RFC 9113 asks of a peer that only opens request streams with tiny bodies: the
    server's settings (acknowledged), stream ids, the send window for our DATA, the receive
    window for the server's (renewed as it is used), HPACK tables both ways, PING answers and
    GOAWAY. Streams are started from callbacks as answers come in, without a task or future per
    push, and everything that is due goes out in one write per read. Any breach of the protocol
    by the server ends the connection with GOAWAY; its streams are retried later.
    """

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.out: list[bytes] = []
        self.encoder = _RequestEncoder()
        self.decoder = hpack.Decoder()
        self.pending: dict[int, list[Any]] = {}  # stream id -> [token, status, body]
        self.next_stream_id = 1
        self.limit = 0  # streams the server allows: none until its SETTINGS arrive
        self.send_window = http2.DEFAULT_WINDOW  # connection-level, for our DATA
        self.stream_window = http2.DEFAULT_WINDOW  # each new stream's (server's setting)
        self.received_unacknowledged = 0  # DATA bytes read since we last renewed the window
        self.headers_in_progress: tuple[int, int, bytearray] | None = None  # CONTINUATION
        self.settings_received = asyncio.Event()
        self.closed = False  # no new streams (GOAWAY, lost, used up)
        self.recycle = False  # a 5xx asks for a fresh connection
        self.batch: _Batch | None = None
        self.unflushed = 0  # streams started since the last write
        self.last_heard = 0.0  # loop time of the last read, for the answer timeout

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
        self.last_heard = asyncio.get_running_loop().time()
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self.closed = True  # open() hangs up
            return
        # Our preface goes out before anything the server sends can be read.
        transport.write(http2.PREFACE + http2.settings_frame(_OUR_SETTINGS))

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("APNs connection lost: %s", exc)
        self.transport = None
        self._close_pending()
        self.settings_received.set()  # an open() still waiting gives up at once

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last_heard = asyncio.get_running_loop().time()
        buffer = self.buffer
        buffer += data
        try:
            for frame in http2.frames(buffer):
                self._handle(frame)
                if self.unflushed >= _FLUSH_EVERY:
                    self.flush()
        except http2.ProtocolViolation as exc:
            self._fail(exc.code, str(exc))
            return
        self.flush()

    def flush(self) -> None:
        self.unflushed = 0
        out = self.out
        if out:
            data = b"".join(out)
            out.clear()
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(data)

    def _handle(self, frame: http2.Frame) -> None:
        kind = frame.type
        if self.headers_in_progress is not None and kind != http2.CONTINUATION:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "header block interrupted")
        if kind == http2.HEADERS:
            if not frame.stream_id:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "HEADERS on stream 0")
            block = http2.unpad(frame)
            if frame.flags & http2.END_HEADERS:
                self._headers(frame.stream_id, block, frame.flags & http2.END_STREAM)
            else:
                self.headers_in_progress = (frame.stream_id, frame.flags, bytearray(block))
        elif kind == http2.DATA:
            self._data(frame)
        elif kind == http2.CONTINUATION:
            self._continuation(frame)
        elif kind == http2.RST_STREAM:
            if not frame.stream_id:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "RST_STREAM on stream 0")
            http2.parse_uint32(frame.payload, "RST_STREAM")
            self._finish(frame.stream_id, refused=True)
        elif kind == http2.SETTINGS:
            self._settings(frame)
        elif kind == http2.WINDOW_UPDATE:
            self._window_update(frame)
        elif kind == http2.PING:
            if frame.stream_id or len(frame.payload) != 8:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "malformed PING")
            if not frame.flags & http2.ACK:
                self.out.append(http2.frame(http2.PING, http2.ACK, 0, frame.payload))
        elif kind == http2.GOAWAY:
            self._goaway(frame)
        elif kind == http2.PUSH_PROMISE:  # we said ENABLE_PUSH 0
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "PUSH_PROMISE")
        # PRIORITY and unknown frame types are ignored, as RFC 9113 says.

    def _headers(self, stream_id: int, block: bytes, end_stream: int) -> None:
        try:
            headers = self.decoder.decode(block, raw=True)
        except hpack.HPACKError as exc:
            raise http2.ProtocolViolation(http2.COMPRESSION_ERROR, str(exc)) from exc
        entry = self.pending.get(stream_id)
        if entry is None:
            if stream_id % 2 == 0 or stream_id >= self.next_stream_id:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "HEADERS on an idle stream")
            return  # a stream we reset: its block was decoded to keep HPACK in step
        if not entry[1]:  # the response headers; a second block is trailers
            for name, value in headers:
                if name == b":status":
                    entry[1] = int(value) if _STATUS.fullmatch(value) else -1
                    break
            else:
                entry[1] = -1
            if 100 <= entry[1] < 200:
                entry[1] = 0  # informational: the real answer follows
                return
            if entry[1] == -1:  # no usable :status: a malformed answer (RFC 9113 8.1.1)
                self._reset(stream_id, http2.PROTOCOL_ERROR)
                return
        if end_stream:
            self._finish(stream_id)

    def _continuation(self, frame: http2.Frame) -> None:
        in_progress = self.headers_in_progress
        if in_progress is None or in_progress[0] != frame.stream_id:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "unexpected CONTINUATION")
        stream_id, flags, block = in_progress
        block += frame.payload
        if len(block) > 65_536:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "header block too large")
        if frame.flags & http2.END_HEADERS:
            self.headers_in_progress = None
            self._headers(stream_id, bytes(block), flags & http2.END_STREAM)

    def _data(self, frame: http2.Frame) -> None:
        stream_id = frame.stream_id
        if not stream_id:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "DATA on stream 0")
        self.received_unacknowledged += len(frame.payload)  # padding counts too
        if self.received_unacknowledged >= _RECEIVE_WINDOW_UPDATE_AT:
            self.out.append(http2.window_update_frame(0, self.received_unacknowledged))
            self.received_unacknowledged = 0
        entry = self.pending.get(stream_id)
        if entry is None:
            if stream_id % 2 == 0 or stream_id >= self.next_stream_id:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "DATA on an idle stream")
            return
        if not entry[1]:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "DATA before the headers")
        entry[2] += http2.unpad(frame)
        if len(entry[2]) > _MAX_ANSWER_BODY:
            self._reset(stream_id, http2.CANCEL)  # not an APNs answer: retry later
        elif frame.flags & http2.END_STREAM:
            self._finish(stream_id)

    def _settings(self, frame: http2.Frame) -> None:
        if frame.stream_id:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "SETTINGS on a stream")
        if frame.flags & http2.ACK:
            if frame.payload:
                raise http2.ProtocolViolation(http2.FRAME_SIZE_ERROR, "SETTINGS ACK with data")
            return
        if not self.settings_received.is_set():
            self.limit = MAX_STREAMS_CAP  # unless the server's first SETTINGS say otherwise
        for setting, value in http2.parse_settings(frame.payload):
            if setting == http2.MAX_CONCURRENT_STREAMS:
                self.limit = min(MAX_STREAMS_CAP, value)
            elif setting == http2.INITIAL_WINDOW_SIZE:
                if value > http2.MAX_WINDOW:
                    raise http2.ProtocolViolation(http2.FLOW_CONTROL_ERROR, "window too large")
                self.stream_window = value
            elif setting == http2.MAX_FRAME_SIZE:
                if not http2.DEFAULT_MAX_FRAME_SIZE <= value <= 2**24 - 1:
                    raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "bad MAX_FRAME_SIZE")
            elif setting == http2.HEADER_TABLE_SIZE:
                self.encoder.set_table_size(value)
            elif setting == http2.ENABLE_PUSH and value > 1:
                raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "bad ENABLE_PUSH")
        self.out.append(http2.frame(http2.SETTINGS, http2.ACK, 0))
        self.settings_received.set()
        if self.batch is not None:
            self.batch.feed(self)
            self.batch.check()

    def _window_update(self, frame: http2.Frame) -> None:
        increment = http2.parse_uint32(frame.payload, "WINDOW_UPDATE") & http2.MAX_WINDOW
        if frame.stream_id:
            return  # our streams send two bytes, within any stream's initial window
        if not increment:
            raise http2.ProtocolViolation(http2.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        self.send_window += increment
        if self.send_window > http2.MAX_WINDOW:
            raise http2.ProtocolViolation(http2.FLOW_CONTROL_ERROR, "send window overflow")
        if self.batch is not None:
            self.batch.feed(self)

    def _goaway(self, frame: http2.Frame) -> None:
        last_stream_id, code, debug = http2.parse_goaway(frame.payload)
        if code != http2.NO_ERROR:
            log.warning(
                "APNs ended the connection: %s %s",
                http2.ERROR_NAMES.get(code, hex(code)),
                debug[:200].decode("utf-8", "replace"),
            )
        self.closed = True  # no new streams; those the server will not process are retried
        for stream_id in [s for s in self.pending if s > last_stream_id]:
            self._finish(stream_id, refused=True)
        if not self.pending and self.transport is not None:
            self.flush()
            self.transport.close()

    def can_start(self) -> bool:
        return (
            not self.closed
            and len(self.pending) < self.limit
            and self.send_window >= len(_EMPTY_JSON)
            and self.stream_window >= len(_EMPTY_JSON)
        )

    def start(self, token: str) -> bool:
        """Open a stream pushing to ``token`` (its answer goes to the batch); False if it could
        not be sent."""
        batch = self.batch
        assert batch is not None
        # What h2 would send, or refuse to (device tokens are hex, checked at registration).
        path = (_DEVICE_PATH + token.encode()).rstrip()
        if _UNSENDABLE.search(path):
            return False
        stream_id = self.next_stream_id
        if stream_id > http2.MAX_STREAM_ID:
            self.closed = self.recycle = True  # used up: finish what is in flight, then renew
            batch.queue.appendleft(token)
            return True
        if len(path) > _MAX_PATH:  # checked before HPACK, whose tables would move for nothing
            return False
        block = self.encoder.encode(batch.prefix, path, batch.suffix)
        self.next_stream_id = stream_id + 2
        if not self.pending:  # an idle connection: the wait for answers starts now
            self.last_heard = asyncio.get_running_loop().time()
        self.send_window -= len(_EMPTY_JSON)
        self.out.append(
            b"".join(
                (
                    http2.frame_header(http2.HEADERS, http2.END_HEADERS, stream_id, len(block)),
                    block,
                    _DATA_EMPTY_JSON,
                    stream_id.to_bytes(4, "big"),
                    _EMPTY_JSON,
                )
            )
        )
        self.pending[stream_id] = [token, 0, b""]
        self.unflushed += 1
        return True

    def _reset(self, stream_id: int, code: int) -> None:
        self.out.append(http2.rst_stream_frame(stream_id, code))
        self._finish(stream_id, refused=True)

    def _finish(self, stream_id: int, refused: bool = False) -> None:
        entry = self.pending.pop(stream_id, None)
        if entry is None:
            return
        token, status, body = entry
        if self.batch is not None:
            self.batch.answered(self, token, 0 if refused else status, body)
        if self.closed and not self.pending and self.transport is not None:
            self.flush()
            self.transport.close()  # after GOAWAY, or used up: the last answer is in

    def _fail(self, code: int, reason: str) -> None:
        """The server broke the protocol: say so with GOAWAY, hang up, retry its streams."""
        log.warning("APNs connection ended: %s", reason)
        self.closed = True
        self.out.append(http2.goaway_frame(0, code, reason.encode()[:200]))
        self.flush()
        if self.transport is not None:
            self.transport.close()
        self._close_pending()

    def abort(self) -> None:
        """No answer for too long: drop the connection, its streams are retried later."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._close_pending()

    def _close_pending(self) -> None:
        self.closed = True
        for stream_id in list(self.pending):
            self._finish(stream_id, refused=True)
        if self.batch is not None:
            self.batch.check()

    async def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.out.append(http2.goaway_frame(0, http2.NO_ERROR))
            self.flush()
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
        answer_timeout: float = ANSWER_TIMEOUT,
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
        self.answer_timeout = answer_timeout
        self._pool: list[_Connection] = []

    async def _connections(self) -> list[_Connection]:
        alive = [c for c in self._pool if not c.closed and not c.recycle]
        for stale in (c for c in self._pool if c not in alive):
            await stale.close()
        try:
            while len(alive) < self.size:
                connection = _Connection(self.host, self.port, self.context)
                await connection.open()
                alive.append(connection)
        finally:
            self._pool = alive  # those opened stay pooled (and are closed with the client)
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
            await self._wait(batch)
        finally:
            for connection in pool:
                connection.batch = None
        results = batch.results
        results.extend(PushResult(token, 0, "NotSent") for token in queue)
        return results

    async def _wait(self, batch: _Batch) -> None:
        """Until every push is answered; a connection silent for ``answer_timeout`` while it
        owes answers is dropped (its pushes are retried later), so a stuck peer cannot hold
        the worker."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(batch.done), self.answer_timeout / 4)
                return
            except TimeoutError:
                for connection in batch.connections:
                    silent = loop.time() - connection.last_heard
                    if connection.pending and silent > self.answer_timeout:
                        log.warning(
                            "APNs did not answer %d pushes in %.0f s: reconnecting",
                            len(connection.pending),
                            silent,
                        )
                        connection.abort()
                batch.check()

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
