"""A fake APNs (Apple Push Notification service) for tests: HTTP/2 over TLS on loopback.

Wallet pass updates are pushed to APNs, which we cannot reach from tests. This double checks
what APNs checks for such pushes (TLS with ALPN h2, client certificate or provider token,
path, headers, payload) and answers like APNs, so the real client code can be tested against
it unchanged. It is built on raw h2 + asyncio + ssl so that the HTTP/2 behaviour a client must
cope with (SETTINGS, MAX_CONCURRENT_STREAMS, REFUSED_STREAM, flow control, GOAWAY) is real.

The server runs its own event loop in a background thread; the test thread talks to it only
through thread-safe methods and records.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import json
import os
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from h2.utilities import HeaderValidationFlags, validate_headers
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.exceptions import HPACKDecodingError, OversizedHeaderListError
from hpack.hpack import decode_integer
from hyperframe.frame import Frame, HeadersFrame

__all__ = ["FakeAPNs", "Push", "ServerCertificates", "create_server_certificates"]

HOST = "127.0.0.1"
DEVICE_PATH = "/3/device/"
MAX_PAYLOAD = 4096  # APNs' limit for everything but VoIP pushes
FLUSH_EVERY = 100  # answers written at a time, when a read holds more requests
TOKEN_LIFETIME = 3600  # APNs refuses provider tokens older than one hour
TOKEN_CLOCK_SKEW = 60  # ... and, here, tokens issued more than a minute in the future

_TOKEN_RE = re.compile(r"[0-9a-fA-F]{64,200}")
_DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
_STATUS = {code: str(code).encode("ascii") for code in range(100, 600)}
_JSON = (b"content-type", b"application/json")
_UNSEEN: Any = object()


@dataclass(frozen=True, slots=True)
class Push:
    """One request the fake answered, valid or not, as the test needs to assert on it."""

    token: str  # the device token from the path ("" when the path was not /3/device/...)
    topic: str | None  # apns-topic, if sent
    headers: dict[str, str]  # all request headers, pseudo-headers included
    body: bytes
    status: int
    reason: str | None = None  # the error reason answered, None for 200
    apns_id: str = ""  # the apns-id answered


@dataclass(frozen=True)
class ServerCertificates:
    """PEM files of a throw-away CA and the server certificate it issued."""

    ca_file: Path
    certificate_file: Path
    key_file: Path


def create_server_certificates(
    directory: Path,
    *,
    ip_addresses: Iterable[str] = (HOST,),
    dns_names: Iterable[str] = ("localhost",),
) -> ServerCertificates:
    """Create a test CA and a server certificate for loopback in `directory`.

    A fresh CA per server means clients must trust exactly this CA file: nothing else on
    the machine can vouch for the fake, and the client never needs to switch verification off.
    EC keys keep start-up fast; the extensions satisfy strict X.509 verification.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(hours=1), now + timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake APNs test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(IPv4Address(ip)) for ip in ip_addresses]
    names += [x509.DNSName(name) for name in dns_names]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake APNs")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.pem"
    certificate_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    certificate_file.write_bytes(certificate.public_bytes(pem))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return ServerCertificates(ca_file, certificate_file, key_file)


@dataclass(slots=True)
class _Canned:
    status: int
    reason: str | None
    timestamp_ms: int | None
    remaining: int | None  # None: forever


class _PlainEncoder(Encoder):
    """HPACK without Huffman coding: valid HPACK, and the unique apns-id costs less to send.

    The usual answer, 200 with a never-indexed apns-id, touches no table: it is written out
    directly, byte for byte what hpack would write, without hpack's per-field work.
    """

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        if (
            len(headers) == 2
            and headers[0] == _OK_STATUS
            and headers[1].__class__ is NeverIndexedHeaderTuple
            and headers[1][0] == b"apns-id"
            and len(headers[1][1]) < 0x7F
            and not self.header_table.resized
        ):
            value = headers[1][1]
            return _OK_APNS_ID_PREFIX + bytes((len(value),)) + value
        return super().encode(headers, huffman=False)


_OK_STATUS = (b":status", b"200")
# ":status: 200" is static table entry 8; then a never-indexed literal with a literal name.
_OK_APNS_ID_PREFIX = b"\x88\x10\x07apns-id"


class _Decoder(Decoder):
    """hpack's decoder with a short path for the commonest field, an indexed one in one byte.

    hpack logs, and builds the header tuple twice, for every field; a request is mostly indexed
    fields. Literals, table size updates and all the limits are still hpack's own code.
    """

    def decode(self, data: bytes, raw: bool = False) -> Any:
        if not raw:  # h2 asks for raw bytes; anything else gets hpack's own path
            return super().decode(data, raw)
        get_by_index = self.header_table.get_by_index
        view = memoryview(data)
        headers: list[HeaderTuple] = []
        inflated_size = 0
        index = 0
        end = len(data)
        while index < end:
            first = data[index]
            header: HeaderTuple | None
            if first & 0x80:  # indexed field
                if first != 0xFF:
                    number, consumed = first & 0x7F, 1
                else:
                    number, consumed = decode_integer(view[index:], 7)
                header = HeaderTuple(*get_by_index(number))  # index 0: InvalidTableIndex
            elif first & 0x40:  # literal with incremental indexing
                header, consumed = self._decode_literal(view[index:], should_index=True)
            elif first & 0x20:  # dynamic table size update: only before any field
                if headers:
                    raise HPACKDecodingError("Table size update not at the start of the block")
                consumed = self._update_encoding_context(view[index:])
                header = None
            else:  # literal without indexing, or never indexed
                header, consumed = self._decode_literal(view[index:], should_index=False)
            if header is not None:
                headers.append(header)
                inflated_size += 32 + len(header[0]) + len(header[1])
                if inflated_size > self.max_header_list_size:
                    raise OversizedHeaderListError(
                        f"A header list larger than {self.max_header_list_size} has been received"
                    )
            index += consumed
        self._assert_valid_table_size()
        return headers


class _Connection(H2Connection):
    """An h2 server connection that refuses streams beyond MAX_CONCURRENT_STREAMS one by one.

    Plain h2 treats one stream too many as a connection error (GOAWAY); real servers, APNs
    among them, answer RST_STREAM REFUSED_STREAM and carry on, and clients must cope with that.
    It also counts open request streams itself: h2's own count walks every stream, which
    would make each request cost O(open streams).
    """

    def __init__(self, config: H2Configuration, server: FakeAPNs) -> None:
        super().__init__(config)
        self.encoder = _PlainEncoder()
        decoder = _Decoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        decoder.max_allowed_table_size = self.decoder.max_allowed_table_size
        self.decoder = decoder
        self.server = server
        self.active: set[int] = set()  # request streams opened and not yet fully answered
        self._admit_any = False

    @property
    def open_inbound_streams(self) -> int:
        if self._admit_any:
            return 0
        if len(self.streams) > 2 * len(self.active) + 64:
            self._open_streams(1)  # drop closed streams now and then (h2 does it on every call)
        return len(self.active)

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Frame], list[Any]]:
        stream_id = frame.stream_id
        if stream_id in self.streams:  # trailers, or HEADERS on a stream already refused
            return self._receive_checked(frame)
        if len(self.active) < self.local_settings.max_concurrent_streams:
            frames, events = self._receive_checked(frame)
            active = self.active
            active.add(stream_id)
            if len(active) > self.server.max_observed_concurrency:
                self.server.max_observed_concurrency = len(active)
            return frames, events
        # Over the limit: let h2 open the stream (which keeps HPACK state and stream ids in
        # step), then reset it and swallow its events.
        self._admit_any = True
        try:
            frames, events = self._receive_checked(frame)
        finally:
            self._admit_any = False
        self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
        self.server.refused_streams += 1
        return frames, [e for e in events if getattr(e, "stream_id", None) != stream_id]

    def _receive_checked(self, frame: HeadersFrame) -> tuple[list[Frame], list[Any]]:
        """h2's handling of a HEADERS frame, then h2's header validation (RFC 9113 8.2, 8.3).

        h2 itself is configured not to validate: its chain of per-header, per-character checks
        costs more than the rest of a request. Blocks that plainly pass them (the usual request)
        are let through after one cheap scan; anything else gets h2's own checks, whose
        ProtocolError ends the connection exactly as when h2 runs them itself.
        """
        frames, events = super()._receive_headers_frame(frame)
        if self.server.validate_headers:
            event: Any
            for event in events:
                cls = event.__class__
                if cls is RequestReceived:
                    if not _plainly_valid_request(event.headers):
                        list(validate_headers(event.headers, _REQUEST_FLAGS))
                elif cls is TrailersReceived:
                    list(validate_headers(event.headers, _TRAILER_FLAGS))
        return frames, events


# Header blocks _plainly_valid_request accepts pass h2's validate_headers: lower-case token
# names, printable ASCII values without surrounding whitespace, the request pseudo-headers
# first and once each. Anything it does not recognise is left to h2.
_PLAIN_NAME = re.compile(rb"[a-z0-9!#$%&'*+.^_`|~-]+")
_PLAIN_VALUE = re.compile(rb"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")
_REQUEST_PSEUDO_HEADERS = frozenset([b":method", b":scheme", b":path", b":authority"])
_LEFT_TO_H2 = frozenset(
    [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"]
)
_REQUEST_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)
_TRAILER_FLAGS = _REQUEST_FLAGS._replace(is_trailer=True)


def _plainly_valid_request(headers: list[tuple[bytes, bytes]]) -> bool:
    """True if h2 would accept this request header block; False: ask h2 (it may still)."""
    pseudo: set[bytes] = set()
    regular = False
    authority = host = method = path = None
    plain_value = _PLAIN_VALUE.fullmatch
    for name, value in headers:
        if not plain_value(value):
            return False
        if name[:1] == b":":
            if regular or name in pseudo or name not in _REQUEST_PSEUDO_HEADERS:
                return False
            pseudo.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
        else:
            regular = True
            if name in _LEFT_TO_H2 or not _PLAIN_NAME.fullmatch(name):
                return False
            if name == b"host":
                if host is not None:
                    return False
                host = value
    return (
        bool(path)
        and method not in (None, b"CONNECT")
        and b":scheme" in pseudo
        and (authority is not None or host is not None)
        and (authority is None or host is None or authority == host)
    )


class _Protocol(asyncio.Protocol):
    """One client connection: feeds bytes to h2, answers requests, writes once per read."""

    def __init__(self, server: FakeAPNs) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.conn: _Connection | None = None
        self.topic: str | None = None  # the client certificate's UID (certificate auth)
        self.requests: dict[int, list[Any]] = {}  # stream id -> [headers, body]
        self.unsent: dict[int, bytes] = {}  # response bodies waiting for flow-control window
        self.flush_scheduled = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            # APNs speaks HTTP/2 only; a client that did not negotiate it is broken.
            server.connections_rejected += 1
            self.closed = True
            transport.abort()
            return
        if server.auth == "certificate":
            self.topic = _certificate_topic(ssl_object)
        conn = _Connection(server._h2_config, server)
        conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: server._max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        conn.initiate_connection()
        self.conn = conn
        server._protocols.add(self)
        server.connections_accepted += 1
        transport.write(conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._protocols.discard(self)

    def pause_writing(self) -> None:
        # A client that does not read its answers gets no more answers, like from APNs.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or self.closed:
            return
        try:
            try:
                # Any: events are dispatched on their exact class, cheaper than isinstance chains
                events: list[Any] = conn.receive_data(data)
            except ProtocolError:
                # h2 has queued a GOAWAY with the right error code: send it and hang up.
                self._flush()
                self._close_transport()
                return
            requests = self.requests
            answered = 0
            for event in events:
                cls = event.__class__
                if cls is RequestReceived:
                    requests[event.stream_id] = [event.headers, b""]
                elif cls is DataReceived:
                    request = requests.get(event.stream_id)
                    if request is not None:
                        request[1] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif cls is StreamEnded:
                    self._request_complete(event.stream_id)
                    answered += 1
                    if answered % FLUSH_EVERY == 0:
                        # A read may hold thousands of requests: the first answers leave now,
                        # so the client works on them while the rest are being answered.
                        self._flush()
                elif cls is StreamReset:
                    requests.pop(event.stream_id, None)
                    self.unsent.pop(event.stream_id, None)
                    conn.active.discard(event.stream_id)
                elif cls is WindowUpdated:
                    if self.unsent:
                        self._send_unsent()
                elif cls is ConnectionTerminated:
                    self._flush()
                    self._close_transport()
                    return
            self._flush()
        except Exception:
            self.server._record_error(traceback.format_exc())
            self._abort()

    def _request_complete(self, stream_id: int) -> None:
        request = self.requests.pop(stream_id, None)
        if request is None:
            return
        delay = self.server.response_delay
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._respond_later, stream_id, request)
        else:
            self._respond(stream_id, request[0], request[1])

    def _respond_later(self, stream_id: int, request: list[Any]) -> None:
        try:
            self._respond(stream_id, request[0], request[1])
            self._schedule_flush()
        except Exception:
            self.server._record_error(traceback.format_exc())
            self._abort()

    def _respond(self, stream_id: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        conn = self.conn
        if self.closed or conn is None or stream_id not in conn.active:
            return  # the client reset the stream, or the connection is gone
        status, payload, apns_id = self.server._answer(headers, body, self.topic)
        # apns-id differs every time: never index it, it would only churn the HPACK table.
        response = [
            (b":status", _STATUS[status]),
            NeverIndexedHeaderTuple(b"apns-id", apns_id.encode("ascii")),
        ]
        try:
            if payload is None:
                conn.send_headers(stream_id, response, end_stream=True)
                conn.active.discard(stream_id)
            else:
                response += [_JSON, (b"content-length", str(len(payload)).encode("ascii"))]
                conn.send_headers(stream_id, response)
                self._send_body(stream_id, payload)
        except StreamClosedError:
            conn.active.discard(stream_id)

    def _send_body(self, stream_id: int, data: bytes) -> None:
        """Send as much as flow control allows; the rest waits for WINDOW_UPDATE."""
        conn = self.conn
        assert conn is not None
        while data:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                self.unsent[stream_id] = data
                return
            chunk, data = data[:window], data[window:]
            conn.send_data(stream_id, chunk, end_stream=not data)
        self.unsent.pop(stream_id, None)
        conn.active.discard(stream_id)

    def _send_unsent(self) -> None:
        for stream_id, data in list(self.unsent.items()):
            try:
                self._send_body(stream_id, data)
            except StreamClosedError:
                self.unsent.pop(stream_id, None)
                if self.conn is not None:
                    self.conn.active.discard(stream_id)

    def _schedule_flush(self) -> None:
        # Answers due at the same moment leave in one write.
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.conn is None or self.closed or self.transport is None:
            return
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)

    def apply_max_concurrent_streams(self, value: int) -> None:
        """Announce a new limit on a live connection (in force once the client acknowledges)."""
        if self.conn is None or self.closed:
            return
        self.conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: value})
        self._flush()

    def shut_down(self) -> None:
        """Say GOAWAY like APNs does before it closes a connection, then close it."""
        if self.conn is not None and not self.closed:
            with contextlib.suppress(ProtocolError):
                self.conn.close_connection()
            self._flush()
        self._close_transport()

    def _close_transport(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _certificate_topic(ssl_object: ssl.SSLObject) -> str | None:
    """The client certificate's subject UID: the pass type identifier it may push to.

    Read from the DER form with cryptography, which names the attribute by OID, rather than
    from getpeercert()'s dict, whose key names depend on the OpenSSL build.
    """
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    certificate = x509.load_der_x509_certificate(der)
    values = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value) if values else None


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_uuid(text: str) -> bool:
    # APNs wants the canonical 8-4-4-4-12 form; uuid.UUID alone would accept more.
    if len(text) != 36:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _load_public_key(
    key: ec.EllipticCurvePublicKey | bytes | str | Path,
) -> ec.EllipticCurvePublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        loaded: Any = key
    else:
        data = Path(key).read_bytes() if isinstance(key, Path | str) else key
        loaded = serialization.load_pem_public_key(data)
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or loaded.curve.name != "secp256r1":
        raise ValueError("APNs provider tokens are ES256: the key must be a P-256 public key")
    return loaded


class FakeAPNs:
    """A fake APNs on 127.0.0.1 with an OS-chosen port, run in a background thread.

    auth="certificate": clients must present a certificate that chains to one of
    `client_ca_files`; its subject UID is the only topic they may push to.
    auth="token": clients present no certificate but an ES256 provider token (JWT) signed with
    the key whose public half is `token_key`, with `kid` == key_id and `iss` == team_id;
    `topics`, if given, limits the topics they may push to.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        auth: Literal["certificate", "token"] = "certificate",
        client_ca_files: Iterable[Path | str] = (),
        team_id: str | None = None,
        key_id: str | None = None,
        token_key: ec.EllipticCurvePublicKey | bytes | str | Path | None = None,
        topics: Iterable[str] | None = None,
        max_concurrent_streams: int = 1000,
        response_delay: float = 0.0,
        validate_headers: bool = True,
        certificates: ServerCertificates | None = None,
    ) -> None:
        if auth not in ("certificate", "token"):
            raise ValueError(f"auth must be 'certificate' or 'token', not {auth!r}")
        self.auth = auth
        self.client_ca_files = [Path(path) for path in client_ca_files]
        if auth == "certificate" and not self.client_ca_files:
            raise ValueError("certificate auth needs client_ca_files to verify clients with")
        self._token_key: ec.EllipticCurvePublicKey | None = None
        if auth == "token":
            if not (team_id and key_id and token_key is not None):
                raise ValueError("token auth needs team_id, key_id and token_key")
            self._token_key = _load_public_key(token_key)
        self.team_id = team_id
        self.key_id = key_id
        self.topics = frozenset(topics) if topics is not None else None
        if max_concurrent_streams < 1:
            raise ValueError("max_concurrent_streams must be at least 1")
        self._max_concurrent_streams = max_concurrent_streams
        self.response_delay = response_delay
        self.directory = Path(directory)

        self.port = 0
        self.connections_accepted = 0
        self.connections_rejected = 0  # TLS fine, but no h2 negotiated
        # Most request streams open at once on one connection, and streams refused for
        # going over MAX_CONCURRENT_STREAMS.
        self.max_observed_concurrency = 0
        self.refused_streams = 0
        self.errors: list[str] = []  # unexpected exceptions inside the server: tests assert none

        # Given: several fakes can present one server certificate (see adopt()).
        self._certificates: ServerCertificates | None = certificates
        self._context: ssl.SSLContext | None = None
        # Our own response headers are valid by construction: skip h2's per-header checks on
        # them. Request headers are checked (APNs rejects malformed HTTP/2 headers too), by
        # _Connection rather than by h2 (see _receive_checked), unless validate_headers=False.
        self.validate_headers = validate_headers
        self._h2_config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self._lock = threading.Lock()
        self._random = random.Random()
        self._pushes: list[Push] = []
        self._canned: dict[str, deque[_Canned]] = {}
        self._canned_all: deque[_Canned] = deque()
        self._jwts: dict[str, int | None] = {}  # JWT -> iat if well-formed and signed, else None
        self._protocols: set[_Protocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Create the certificates (first time only), bind a port and serve in a thread."""
        if self._thread is not None:
            raise RuntimeError("FakeAPNs is already running")
        if self._certificates is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            where = Path(tempfile.mkdtemp(prefix="fake-apns-", dir=self.directory))
            self._certificates = create_server_certificates(where)
        context = self._context = self._ssl_context(self._certificates)
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._serve, args=(loop, context, ready), name="fake-apns", daemon=True
        )
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            thread.join(timeout=5)
            self._loop = self._thread = None
            raise
        return self

    def stop(self) -> None:
        """GOAWAY and close every connection, stop the loop and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shut_down(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=15)
            self._loop = self._thread = None
        if thread.is_alive():
            raise RuntimeError("the fake APNs thread did not stop")

    def adopt(self, sock: socket.socket) -> None:
        """Serve a TCP connection accepted elsewhere, TLS handshake and all, as if accepted here.

        One fake is one event loop on one core; a harness that needs more can accept on one
        port and hand connections to several fakes (each in its own process, all given the
        same ``certificates``). Returns once the connection is being served.
        """
        loop, context = self._loop, self._context
        if loop is None or context is None:
            raise RuntimeError("FakeAPNs is not running")

        async def serve() -> None:
            await loop.connect_accepted_socket(
                lambda: _Protocol(self), sock, ssl=context, ssl_handshake_timeout=10
            )

        asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=15)

    def _ssl_context(self, certificates: ServerCertificates) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # HTTP/2 requires TLS 1.2 or later
        context.load_cert_chain(certificates.certificate_file, certificates.key_file)
        context.set_alpn_protocols(["h2"])
        if self.auth == "certificate":
            context.verify_mode = ssl.CERT_REQUIRED
            for path in self.client_ca_files:
                context.load_verify_locations(cafile=path)
        else:
            context.verify_mode = ssl.CERT_NONE
        return context

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        context: ssl.SSLContext,
        ready: concurrent.futures.Future[None],
    ) -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._on_loop_exception)
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _Protocol(self),
                    HOST,
                    0,
                    ssl=context,
                    backlog=1024,
                    ssl_handshake_timeout=10,
                    ssl_shutdown_timeout=1,
                )
            )
        except BaseException as exc:
            loop.close()
            ready.set_exception(exc)
            return
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shut_down(self) -> None:
        assert self._server is not None
        self._server.close()
        for protocol in list(self._protocols):
            protocol.shut_down()
        deadline = time.monotonic() + 3
        while self._protocols and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for protocol in list(self._protocols):  # clients that never finish the TLS close
            protocol._abort()
            self._protocols.discard(protocol)
        await asyncio.sleep(0)
        await self._server.wait_closed()

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Failed handshakes and reset connections are the clients' business (and some tests'
        # purpose); anything else is a bug in the fake.
        if not isinstance(context.get("exception"), OSError):
            self._record_error(str(context.get("message")) + ": " + repr(context.get("exception")))

    def _record_error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def _call_in_loop(self, function: Callable[[], None]) -> None:
        """Run `function` in the server thread and wait for it: the loop owns all h2 state."""
        loop = self._loop
        if loop is None:
            return

        async def run() -> None:
            function()

        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=15)

    # -- public API ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeAPNs is not started")
        return f"https://{HOST}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that issued the server certificate: what a client must trust."""
        if self._certificates is None:
            raise RuntimeError("FakeAPNs is not started: the certificates are made by start()")
        return self._certificates.ca_file

    @property
    def max_concurrent_streams(self) -> int:
        return self._max_concurrent_streams

    def set_max_concurrent_streams(self, value: int) -> None:
        """Change the limit for new connections and send a SETTINGS frame on live ones."""
        if value < 0:
            raise ValueError("max_concurrent_streams cannot be negative")
        self._max_concurrent_streams = value

        def apply() -> None:
            for protocol in list(self._protocols):
                protocol.apply_max_concurrent_streams(value)

        self._call_in_loop(apply)

    @property
    def pushes(self) -> list[Push]:
        """A snapshot of every request answered so far, in order."""
        with self._lock:
            return list(self._pushes)

    def delivered(self, topic: str | None = None) -> list[str]:
        """Device tokens answered 200, optionally only those for `topic`."""
        return [
            push.token
            for push in self.pushes
            if push.status == 200 and (topic is None or push.topic == topic)
        ]

    @property
    def distinct_tokens(self) -> int:
        """How many different provider tokens (JWTs) clients sent: APNs wants them reused."""
        return len(self._jwts)

    def answer(
        self,
        token: str,
        status: int,
        reason: str | None = None,
        *,
        timestamp_ms: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Queue a canned answer for pushes to `token` that pass validation.

        Consumed on use, `times` times (None: forever); queued answers are used in order.
        410 answers carry a timestamp (default: when answered). Reason defaults by status.
        """
        entry = self._canned_entry(status, reason, timestamp_ms, times)
        with self._lock:
            self._canned.setdefault(token.lower(), deque()).append(entry)

    def answer_all(
        self,
        status: int,
        reason: str | None = None,
        *,
        timestamp_ms: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Like answer() for any token; answers queued for a specific token go first."""
        entry = self._canned_entry(status, reason, timestamp_ms, times)
        with self._lock:
            self._canned_all.append(entry)

    def reset(self) -> None:
        """Forget records, canned answers and seen provider tokens (not connections, not errors)."""
        with self._lock:
            self._pushes.clear()
            self._canned.clear()
            self._canned_all.clear()
            self._jwts.clear()
        self.refused_streams = 0

        def restart_peak() -> None:
            self.max_observed_concurrency = max(
                [0, *(len(p.conn.active) for p in self._protocols if p.conn is not None)]
            )

        if self._loop is None:
            self.max_observed_concurrency = 0
        else:
            self._call_in_loop(restart_peak)

    @staticmethod
    def _canned_entry(
        status: int, reason: str | None, timestamp_ms: int | None, times: int | None
    ) -> _Canned:
        if not 200 <= status <= 599:
            raise ValueError(f"not an HTTP status APNs answers with: {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if status != 200 and reason is None:
            reason = _DEFAULT_REASONS.get(status, "InternalServerError")
        return _Canned(status, reason if status != 200 else None, timestamp_ms, times)

    # -- request handling (server thread) -----------------------------------------------------

    def _answer(
        self, raw_headers: list[tuple[bytes, bytes]], body: bytes, certificate_topic: str | None
    ) -> tuple[int, bytes | None, str]:
        """Validate one request like APNs; record it; return status, error body, apns-id."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers}
        topic = headers.get("apns-topic")
        apns_id = headers.get("apns-id")
        path = headers.get(":path", "")
        token = ""
        status, reason = 400, None
        if headers.get(":method") != "POST":
            status, reason = 405, "MethodNotAllowed"
        elif not path.startswith(DEVICE_PATH):
            status, reason = 404, "BadPath"
        else:
            token = path[len(DEVICE_PATH) :]
            if not token:
                reason = "MissingDeviceToken"
            elif not _TOKEN_RE.fullmatch(token):
                reason = "BadDeviceToken"
            elif len(headers) != len(raw_headers):
                reason = "DuplicateHeaders"
            elif (denied := self._check_provider_token(headers)) is not None:
                status, reason = 403, denied
            elif topic is None:
                reason = "MissingTopic"
            elif self.auth == "certificate" and certificate_topic is None:
                status, reason = 403, "BadCertificate"  # no UID: not a push certificate
            elif not self._topic_allowed(topic, certificate_topic):
                reason = "TopicDisallowed"
            elif apns_id is not None and not _is_uuid(apns_id):
                reason = "BadMessageId"
            elif headers.get("apns-push-type") != "background":
                reason = "InvalidPushType"
            elif headers.get("apns-priority") != "5":
                reason = "BadPriority"
            elif not headers.get("apns-expiration", "0").isdigit():
                reason = "BadExpirationDate"
            elif len(headers.get("apns-collapse-id", "").encode()) > 64:
                reason = "BadCollapseId"
            elif not body:
                reason = "PayloadEmpty"
            elif len(body) > MAX_PAYLOAD:
                status, reason = 413, "PayloadTooLarge"
            elif body != b"{}" and not _is_json_object(body):
                reason = "BadPayload"
            else:
                status = 200
        if apns_id is None or reason == "BadMessageId":
            # Not uuid4(): os.urandom releases the GIL, and winning it back from a busy client
            # thread costs more than the whole request. An apns-id needs no secrecy.
            apns_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))

        timestamp_ms = None
        if status == 200 and (self._canned or self._canned_all):
            canned = self._take_canned(token.lower())
            if canned is not None:
                status, reason, timestamp_ms = canned.status, canned.reason, canned.timestamp_ms

        payload = None
        if reason is not None:
            answer: dict[str, Any] = {"reason": reason}
            if status == 410:
                answer["timestamp"] = (
                    timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
                )
            payload = json.dumps(answer, separators=(",", ":")).encode()
        push = Push(token, topic, headers, body, status, reason, apns_id)
        with self._lock:
            self._pushes.append(push)
        return status, payload, apns_id

    def _topic_allowed(self, topic: str, certificate_topic: str | None) -> bool:
        if self.auth == "certificate":
            return topic == certificate_topic
        return self.topics is None or topic in self.topics

    def _take_canned(self, token: str) -> _Canned | None:
        with self._lock:
            queue = self._canned.get(token)
            if not queue:
                queue = self._canned_all
            if not queue:
                return None
            entry = queue[0]
            if entry.remaining is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    queue.popleft()
                    if not queue and queue is not self._canned_all:
                        del self._canned[token]
            return entry

    def _check_provider_token(self, headers: dict[str, str]) -> str | None:
        """None if the request may pass, else the 403 reason APNs gives."""
        if self.auth != "token":
            return None
        value = headers.get("authorization")
        if not value:
            return "MissingProviderToken"
        scheme, _, jwt = value.partition(" ")
        jwt = jwt.strip()
        if scheme.lower() != "bearer" or not jwt:
            return "InvalidProviderToken"
        issued_at = self._jwts.get(jwt, _UNSEEN)
        if issued_at is _UNSEEN:
            issued_at = self._verify_jwt(jwt)  # signature checked once per distinct token
            with self._lock:
                self._jwts[jwt] = issued_at
        if issued_at is None:
            return "InvalidProviderToken"
        now = time.time()
        if issued_at > now + TOKEN_CLOCK_SKEW:
            return "InvalidProviderToken"
        if now - issued_at > TOKEN_LIFETIME:
            return "ExpiredProviderToken"
        return None

    def _verify_jwt(self, jwt: str) -> int | None:
        """The token's iat if it is an ES256 JWS by our key with our kid and iss, else None."""
        assert self._token_key is not None
        parts = jwt.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
            return None
        issued_at = claims.get("iat")
        if claims.get("iss") != self.team_id or type(issued_at) is not int:
            return None
        if len(signature) != 64:  # JWS ES256: raw r || s, 32 bytes each
            return None
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self._token_key.verify(
                der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, UnicodeEncodeError):
            return None
        return issued_at


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False
