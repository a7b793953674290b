"""The APNs client against a scripted HTTP/2 peer: the frames a real server may send that the
fake (h2) never does, and the ways a server can go wrong.

The peer reads and writes frames with ``hyperframe`` and ``hpack`` (not with the client's own
framing code), one connection, in a thread; each test says how it answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hpack
import pytest
from fake_apns import create_server_certificates
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from passes.push.apns import ApnsClient, PushResult, tls_context

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TOPIC = "pass.test.scripted"
TOKENS = [f"{n:064x}" for n in range(1, 6)]


class Peer(threading.Thread):
    """A one-connection HTTP/2 server over TLS whose answers the test scripts.

    ``on_request(peer, stream_id, headers)`` runs for each request; it may answer at once,
    later, or never. Everything the client sent is kept in ``frames`` (its request header
    blocks decoded into ``requests``).
    """

    def __init__(
        self,
        directory: Path,
        on_request: Callable[[Peer, int, dict[bytes, bytes]], None],
        settings: dict[int, int] | None = None,
        decoder_table_limit: int = 4096,
    ) -> None:
        super().__init__(daemon=True)
        certificates = create_server_certificates(directory)
        self.ca_file = certificates.ca_file
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.certificate_file, certificates.key_file)
        self.context.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.on_request = on_request
        self.settings = (
            settings if settings is not None else {SettingsFrame.MAX_CONCURRENT_STREAMS: 100}
        )
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = decoder_table_limit
        self.frames: list[Frame] = []
        self.requests: dict[int, dict[bytes, bytes]] = {}
        self.open_streams: set[int] = set()
        self.most_open = 0
        self.problems: list[str] = []
        self.sock: ssl.SSLSocket | None = None
        self.closed = threading.Event()
        self.start()

    def run(self) -> None:
        raw, _ = self.listener.accept()
        self.listener.close()
        try:
            self.sock = self.context.wrap_socket(raw, server_side=True)
            if self._read_exactly(len(PREFACE)) != PREFACE:
                self.problems.append("no client preface")
                return
            self.send(SettingsFrame(0, settings=self.settings))
            while (frame := self._read_frame()) is not None:
                self.frames.append(frame)
                if isinstance(frame, HeadersFrame):
                    if "END_HEADERS" not in frame.flags:
                        self.problems.append("request headers split: not expected of the client")
                    headers = dict(self.decoder.decode(frame.data, raw=True))
                    self.requests[frame.stream_id] = headers
                    self.open_streams.add(frame.stream_id)
                    self.most_open = max(self.most_open, len(self.open_streams))
                    self.on_request(self, frame.stream_id, headers)
                elif isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                    self.send(SettingsFrame(0, flags=["ACK"]))
        except Exception as exc:  # the test asserts there were none
            self.problems.append(repr(exc))
        finally:
            self.closed.set()

    def _read_exactly(self, size: int) -> bytes | None:
        assert self.sock is not None
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _read_frame(self) -> Frame | None:
        header = self._read_exactly(9)
        if header is None:
            return None
        frame, length = Frame.parse_frame_header(memoryview(header))
        body = self._read_exactly(length) if length else b""
        if body is None:
            return None
        frame.parse_body(memoryview(body))
        return frame

    def send(self, *frames: Frame) -> None:
        assert self.sock is not None
        for frame in frames:
            if frame.stream_id in self.open_streams and "END_STREAM" in frame.flags:
                self.open_streams.discard(frame.stream_id)
            if isinstance(frame, RstStreamFrame):
                self.open_streams.discard(frame.stream_id)
        self.sock.sendall(b"".join(frame.serialize() for frame in frames))

    def block(self, *headers: tuple[str, str]) -> bytes:
        return bytes(self.encoder.encode([(n.encode(), v.encode()) for n, v in headers]))

    def answer(self, stream_id: int, status: int, body: bytes = b"") -> None:
        headers = HeadersFrame(stream_id, self.block((":status", str(status))))
        headers.flags.add("END_HEADERS")
        if not body:
            headers.flags.add("END_STREAM")
            self.send(headers)
            return
        data = DataFrame(stream_id, body)
        data.flags.add("END_STREAM")
        self.send(headers, data)

    def sent_by_client(self, kind: type[Frame]) -> list[Any]:
        return [frame for frame in self.frames if isinstance(frame, kind)]


def add_flags(frame: Frame, *flags: str) -> None:
    for flag in flags:
        frame.flags.add(flag)


def push(peer: Peer, tokens: list[str], **options: Any) -> dict[str, PushResult]:
    """One send to the peer by a client of one connection, closed after; returns once the peer
    has read all the client sent."""
    client = ApnsClient(
        TOPIC,
        tls_context(ca_file=str(peer.ca_file)),
        endpoint=f"https://127.0.0.1:{peer.port}",
        connections=1,
        **{"answer_timeout": 5.0, **options},
    )

    async def run() -> list[PushResult]:
        try:
            return await client.send(tokens)
        finally:
            await client.close()

    results = asyncio.run(run())
    assert peer.closed.wait(timeout=10)
    return {result.token: result for result in results}


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    made: list[Peer] = []

    def make(on_request: Callable[[Peer, int, dict[bytes, bytes]], None], **kw: Any) -> Peer:
        peer = Peer(tmp_path / f"peer-{len(made)}", on_request, **kw)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.closed.wait(timeout=10)
        assert peer.problems == []


def ok(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
    peer.answer(stream_id, 200)


def test_requests_are_what_apns_expects(peers: Callable[..., Peer]) -> None:
    peer = peers(ok)
    results = push(peer, TOKENS[:2])
    assert {token: r.status for token, r in results.items()} == dict.fromkeys(TOKENS[:2], 200)
    assert sorted(peer.requests) == [1, 3]  # client streams: odd, rising
    request = peer.requests[1]
    assert request[b":method"] == b"POST" and request[b":path"] == f"/3/device/{TOKENS[0]}".encode()
    assert (request[b"apns-topic"], request[b"apns-push-type"]) == (TOPIC.encode(), b"background")
    bodies = [
        (f.stream_id, f.data, "END_STREAM" in f.flags) for f in peer.sent_by_client(DataFrame)
    ]
    assert bodies == [(1, b"{}", True), (3, b"{}", True)]
    goaway = peer.sent_by_client(GoAwayFrame)  # closing says goodbye
    assert [(g.error_code, g.last_stream_id) for g in goaway] == [(0, 0)]


def test_answers_split_padded_and_with_priority_are_read(peers: Callable[..., Peer]) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        block = peer.block((":status", "410"), ("apns-id", "x" * 40))
        first = HeadersFrame(stream_id, block[:3], pad_length=7, depends_on=0, stream_weight=15)
        add_flags(first, "PADDED", "PRIORITY")
        rest = ContinuationFrame(stream_id, block[3:])
        rest.flags.add("END_HEADERS")
        body = json.dumps({"reason": "Unregistered", "timestamp": 1_700_000_000_000}).encode()
        data = DataFrame(stream_id, body, pad_length=12)
        add_flags(data, "PADDED", "END_STREAM")
        peer.send(first, rest, data)

    peer = peers(answer)
    [result] = push(peer, TOKENS[:1]).values()
    assert result == PushResult(TOKENS[0], 410, "Unregistered", 1_700_000_000_000)


def test_informational_answers_are_skipped_and_pings_answered(peers: Callable[..., Peer]) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        early = HeadersFrame(stream_id, peer.block((":status", "103")))
        early.flags.add("END_HEADERS")
        peer.send(PingFrame(0, opaque_data=b"12345678"), early)
        peer.answer(stream_id, 200)

    peer = peers(answer)
    [result] = push(peer, TOKENS[:1]).values()
    assert result.status == 200
    pongs = peer.sent_by_client(PingFrame)
    assert [(p.opaque_data, "ACK" in p.flags) for p in pongs] == [(b"12345678", True)]
    # and the server's SETTINGS were acknowledged
    assert any("ACK" in f.flags for f in peer.sent_by_client(SettingsFrame))


def test_goaway_retries_only_the_streams_the_server_did_not_take(
    peers: Callable[..., Peer],
) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        if stream_id == 5:  # three requests in: take the first two, refuse the rest
            peer.answer(1, 200)
            goaway = GoAwayFrame(0, last_stream_id=3, error_code=0)
            peer.send(goaway)
            peer.answer(3, 200)

    peer = peers(answer)
    results = push(peer, TOKENS[:3])
    assert sorted(r.status for r in results.values()) == [0, 200, 200]
    assert results[peer.requests[5][b":path"].decode().rsplit("/", 1)[1]].retryable


def test_a_refused_stream_is_retried_later(peers: Callable[..., Peer]) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        if stream_id == 1:
            peer.send(RstStreamFrame(1, error_code=7))  # REFUSED_STREAM
        else:
            peer.answer(stream_id, 200)

    peer = peers(answer)
    results = push(peer, TOKENS[:2])
    assert sorted((r.status, r.retryable) for r in results.values()) == [(0, True), (200, False)]


def test_the_servers_settings_are_obeyed(peers: Callable[..., Peer]) -> None:
    """One stream at a time, and no HPACK table at all: the client must announce the size
    change before indexing anything (the peer's decoder refuses a table over 0)."""
    settings = {SettingsFrame.MAX_CONCURRENT_STREAMS: 1, SettingsFrame.HEADER_TABLE_SIZE: 0}
    peer = peers(ok, settings=settings, decoder_table_limit=0)
    results = push(peer, TOKENS)
    assert [r.status for r in results.values()] == [200] * len(TOKENS)
    assert peer.most_open == 1
    assert all(request[b"apns-topic"] == TOPIC.encode() for request in peer.requests.values())


def test_a_connection_limit_of_zero_sends_nothing_and_ends(peers: Callable[..., Peer]) -> None:
    peer = peers(ok, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 0})
    results = push(peer, TOKENS[:2])
    assert [(r.status, r.reason) for r in results.values()] == [(0, "NotSent")] * 2
    assert peer.requests == {}


def test_a_silent_server_is_dropped_after_the_answer_timeout(peers: Callable[..., Peer]) -> None:
    peer = peers(lambda peer, stream_id, headers: None)  # never answers
    started = time.monotonic()
    results = push(peer, TOKENS[:2], answer_timeout=0.4)
    assert [r.status for r in results.values()] == [0, 0]
    assert 0.4 <= time.monotonic() - started < 5


def test_a_server_breaking_the_protocol_gets_goaway(peers: Callable[..., Peer]) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        pushed = HeadersFrame(2, peer.block((":status", "200")))  # servers cannot open streams
        add_flags(pushed, "END_HEADERS", "END_STREAM")
        peer.send(pushed)

    peer = peers(answer)
    results = push(peer, TOKENS[:1])
    assert [r.status for r in results.values()] == [0]
    peer.closed.wait(timeout=10)
    [goaway] = peer.sent_by_client(GoAwayFrame)
    assert goaway.error_code == 1  # PROTOCOL_ERROR


def test_the_receive_window_is_renewed_and_oversized_answers_cancelled(
    peers: Callable[..., Peer],
) -> None:
    def answer(peer: Peer, stream_id: int, headers: dict[bytes, bytes]) -> None:
        if stream_id == 1:  # larger than any APNs answer: the client gives up on it
            head = HeadersFrame(1, peer.block((":status", "400")))
            head.flags.add("END_HEADERS")
            peer.send(head, DataFrame(1, b"x" * 16_000), DataFrame(1, b"x" * 16_000))
        else:
            peer.answer(stream_id, 400, json.dumps({"reason": "x" * 15_000}).encode())

    peer = peers(answer)
    results = push(peer, TOKENS[:3])
    statuses = sorted((r.status, len(r.reason or "")) for r in results.values())
    assert statuses == [(0, 0), (400, 15_000), (400, 15_000)]
    assert [(f.stream_id, f.error_code) for f in peer.sent_by_client(RstStreamFrame)] == [(1, 8)]
    updates = peer.sent_by_client(WindowUpdateFrame)
    assert updates and all(u.stream_id == 0 for u in updates)
    assert sum(u.window_increment for u in updates) >= 32_768
