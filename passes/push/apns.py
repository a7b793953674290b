"""A thin APNs client for pass update pushes: HTTP/2 over TLS on ``h2`` and asyncio.

Pass pushes are all alike (``POST /3/device/<token>``, body ``{}``, topic = pass type id), so the
client is a loop that keeps a few long-lived connections open and fills each one with as many
concurrent streams as the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` allows (Apple may lower it,
even to 1). Connections are reused across batches: Apple treats rapid reconnects as abuse.

:class:`ApnsClient` is async; :class:`BlockingApnsClient` runs one in its own thread so the
scheduler's synchronous jobs can use it, keeping connections open between runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
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
import jwt

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.push.apple.com"
MAX_STREAMS_CAP = 1000  # our own ceiling per connection, whatever the server allows
READ_SIZE = 65536
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


class _Connection:
    """One HTTP/2 connection and its in-flight streams."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.pending: dict[int, tuple[asyncio.Future[tuple[int, bytes]], list[int], bytearray]] = {}
        self.limit = 1  # until the server's SETTINGS arrive
        self.active = 0
        self.slot_freed = asyncio.Event()
        self.settings_received = asyncio.Event()
        self.closed = False
        self.recycle = False  # a 5xx asks for a fresh connection

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.context, server_hostname=self.host
        )
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            writer.close()
            raise ConnectionError(f"{self.host}:{self.port} did not negotiate HTTP/2")
        self.writer = writer
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        writer.write(self.h2.data_to_send())
        self.limit = min(MAX_STREAMS_CAP, self.h2.remote_settings.max_concurrent_streams)
        self.reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        # The server's first SETTINGS say how many streams it takes; do not guess.
        await asyncio.wait_for(self.settings_received.wait(), timeout=10)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                for event in self.h2.receive_data(data):
                    self._handle(event)
                outgoing = self.h2.data_to_send()
                if outgoing and self.writer is not None:
                    self.writer.write(outgoing)
        except (ConnectionError, ssl.SSLError, h2.exceptions.ProtocolError) as exc:
            log.info("APNs connection lost: %s", exc)
        finally:
            self._close_pending()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            entry = self.pending.get(event.stream_id)
            if entry is not None:
                for name, value in event.headers or ():
                    if name in (":status", b":status"):
                        entry[1].append(int(value))
        elif isinstance(event, h2.events.DataReceived):
            entry = self.pending.get(event.stream_id)
            if entry is not None:
                entry[2].extend(event.data)
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._finish(event.stream_id, refused=True)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.limit = max(
                1, min(MAX_STREAMS_CAP, self.h2.remote_settings.max_concurrent_streams)
            )
            self.slot_freed.set()
            self.settings_received.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True
            self._close_pending()

    def _finish(self, stream_id: int, refused: bool = False) -> None:
        entry = self.pending.pop(stream_id, None)
        if entry is None:
            return
        future, status, body = entry
        self.active -= 1
        self.slot_freed.set()
        if not future.done():
            future.set_result((0 if refused or not status else status[0], bytes(body)))

    def _close_pending(self) -> None:
        self.closed = True
        for stream_id in list(self.pending):
            self._finish(stream_id, refused=True)
        self.slot_freed.set()

    async def post(
        self, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        while self.active >= self.limit and not self.closed:
            self.slot_freed.clear()
            await self.slot_freed.wait()
        if self.closed or self.writer is None:
            return 0, b""
        stream_id = self.h2.get_next_available_stream_id()
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.pending[stream_id] = (future, [], bytearray())
        self.active += 1
        request = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", self.host),
            (":path", path),
            *headers,
        ]
        try:
            self.h2.send_headers(stream_id, request)
            self.h2.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.H2Error:
            self._finish(stream_id, refused=True)
            return await future
        self.writer.write(self.h2.data_to_send())
        return await future

    async def close(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            try:
                self.h2.close_connection()
                self.writer.write(self.h2.data_to_send())
            except h2.exceptions.H2Error:
                pass
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()
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

    def _headers(self) -> list[tuple[str, str]]:
        headers = [
            ("apns-topic", self.topic),
            ("apns-push-type", "background"),
            ("apns-priority", "5"),
        ]
        if self.token_signer is not None:
            headers.append(("authorization", f"bearer {self.token_signer.token()}"))
        return headers

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
        headers = self._headers()
        results: list[PushResult] = []

        async def worker(connection: _Connection) -> None:
            while queue:
                token = queue.popleft()
                status, body = await connection.post(f"/3/device/{token}", headers, b"{}")
                results.append(_result(token, status, body))
                if status >= 500:
                    connection.recycle = True
                if connection.closed:
                    return

        workers = [
            worker(connection)
            for connection in pool
            for _ in range(min(connection.limit, MAX_STREAMS_CAP, len(queue)))
        ]
        await asyncio.gather(*workers)
        answered = {result.token for result in results}
        results.extend(PushResult(token, 0, "NotSent") for token in queue if token not in answered)
        return results

    async def close(self) -> None:
        for connection in self._pool:
            await connection.close()
        self._pool = []


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
