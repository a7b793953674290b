"""The fake APNs checks what APNs checks, so client tests against it mean something.

Exercised with a tiny synchronous raw-h2 client written here, independent of the real client.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fake_apns import FakeAPNs, create_server_certificates
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes

from passes.wallet.apple.devcerts import DevChain, create_dev_chain

TOPIC = "pass.test.loyalpass"
TEAM_ID = "TEAM000001"
KEY_ID = "KEY0000001"
TOKEN = "0123456789abcdef" * 4  # 64 hex digits, like a real device token


@dataclass
class Response:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: int | None = None  # RST_STREAM error code, if the server reset the stream
    done: bool = False

    @property
    def reason(self) -> str | None:
        return json.loads(self.body)["reason"] if self.body else None


class _UnlimitedH2(H2Connection):
    """A client connection that ignores the server's stream limit, to test that it is enforced."""

    @property
    def open_outbound_streams(self) -> int:
        return 0


class Client:
    """A minimal synchronous HTTP/2 client: one TLS socket, one h2 connection, no threads."""

    def __init__(
        self,
        apns: FakeAPNs,
        *,
        cert: DevChain | None = None,
        ca_file: Path | None = None,
        alpn: tuple[str, ...] = ("h2",),
        server_hostname: str = "127.0.0.1",
        unlimited: bool = False,
        initial_window: int | None = None,
        port: int | None = None,
    ) -> None:
        context = ssl.create_default_context(cafile=str(ca_file or apns.ca_file))
        if cert is not None:
            context.load_cert_chain(cert.certificate, cert.private_key)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        raw = socket.create_connection(("127.0.0.1", port or apns.port), timeout=10)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        config = H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = (_UnlimitedH2 if unlimited else H2Connection)(config)
        self.conn.initiate_connection()
        if initial_window is not None:
            self.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
        self.sock.sendall(self.conn.data_to_send())
        self.responses: dict[int, Response] = {}
        self.server_settings: dict[int, int] = {}
        self.terminated: ConnectionTerminated | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        token: str = TOKEN,
        *,
        headers: dict[str, str | None] | None = None,
        body: bytes = b"{}",
        method: str = "POST",
        path: str | None = None,
        flush: bool = True,
    ) -> int:
        """Open a stream with a (by default valid) pass update push; return its id."""
        fields: dict[str, str | None] = {
            "apns-topic": TOPIC,
            "apns-push-type": "background",
            "apns-priority": "5",
        }
        fields.update(headers or {})
        request = [
            (":method", method),
            (":scheme", "https"),
            (":authority", "127.0.0.1"),
            (":path", path if path is not None else f"/3/device/{token}"),
            *((name, value) for name, value in fields.items() if value is not None),
        ]
        stream_id = self.conn.get_next_available_stream_id()
        self.responses[stream_id] = Response()
        self.conn.send_headers(stream_id, request, end_stream=not body)
        while body:  # respect flow control: wait for WINDOW_UPDATE when the window is spent
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if window == 0:
                self.sock.sendall(self.conn.data_to_send())
                self._read()
                continue
            chunk, body = body[:window], body[window:]
            self.conn.send_data(stream_id, chunk, end_stream=not body)
        if flush:
            self.sock.sendall(self.conn.data_to_send())
        return stream_id

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def wait(self, *stream_ids: int) -> list[Response]:
        while not all(self.responses[stream_id].done for stream_id in stream_ids):
            self._read()
        return [self.responses[stream_id] for stream_id in stream_ids]

    def push(self, token: str = TOKEN, **kwargs: Any) -> Response:
        return self.wait(self.send(token, **kwargs))[0]

    def wait_for_settings(self, code: int, value: int) -> None:
        while self.server_settings.get(code) != value:
            self._read()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        for event in self.conn.receive_data(data):
            response = self.responses.get(getattr(event, "stream_id", 0))
            if isinstance(event, ResponseReceived) and response is not None:
                response.headers = {str(name): str(value) for name, value in event.headers}
                response.status = int(response.headers[":status"])
            elif isinstance(event, DataReceived):
                if response is not None:
                    response.body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded) and response is not None:
                response.done = True
            elif isinstance(event, StreamReset) and response is not None:
                response.reset, response.done = event.error_code, True
            elif isinstance(event, RemoteSettingsChanged):
                for code, change in event.changed_settings.items():
                    self.server_settings[code] = change.new_value
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
        outgoing = self.conn.data_to_send()
        if outgoing:
            self.sock.sendall(outgoing)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    return create_dev_chain(
        tmp_path_factory.mktemp("certs"), pass_type_identifier=TOPIC, team_identifier=TEAM_ID
    )


@pytest.fixture
def apns(chain: DevChain, tmp_path: Path) -> Iterator[FakeAPNs]:
    with FakeAPNs(
        tmp_path, client_ca_files=[chain.root_certificate, chain.wwdr_certificate]
    ) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def client(apns: FakeAPNs, chain: DevChain) -> Iterator[Client]:
    with Client(apns, cert=chain) as connected:
        yield connected


# -- TLS and authentication ------------------------------------------------------------------


def test_a_valid_push_is_delivered(apns: FakeAPNs, client: Client) -> None:
    response = client.push()
    assert (response.status, response.body) == (200, b"")
    uuid.UUID(response.headers["apns-id"])
    assert apns.delivered() == [TOKEN]
    assert apns.delivered(topic=TOPIC) == [TOKEN] and apns.delivered(topic="pass.other") == []
    [push] = apns.pushes
    assert (push.token, push.topic, push.body, push.status) == (TOKEN, TOPIC, b"{}", 200)
    assert push.headers["apns-push-type"] == "background" and push.headers[":method"] == "POST"
    assert apns.connections_accepted == 1
    assert apns.url == f"https://127.0.0.1:{apns.port}"


def test_the_request_apns_id_is_echoed(client: Client) -> None:
    apns_id = str(uuid.uuid4())
    assert client.push(headers={"apns-id": apns_id}).headers["apns-id"] == apns_id
    assert client.push(headers={"apns-id": "not-a-uuid"}).reason == "BadMessageId"


def test_the_topic_must_be_the_certificates_pass_type_identifier(
    apns: FakeAPNs, client: Client
) -> None:
    response = client.push(headers={"apns-topic": "pass.someone.else"})
    assert (response.status, response.reason) == (400, "TopicDisallowed")
    assert apns.delivered() == [] and apns.pushes[0].status == 400


def test_the_server_certificate_names_loopback_and_localhost(apns: FakeAPNs) -> None:
    with socket.create_connection(("127.0.0.1", apns.port)) as raw:
        context = ssl.create_default_context(cafile=str(apns.ca_file))
        context.set_alpn_protocols(["h2"])
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    names = (
        x509.load_der_x509_certificate(der)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_a_client_without_certificate_is_turned_away(apns: FakeAPNs) -> None:
    # With TLS 1.3 the client learns only when it reads: either way, no push gets through.
    with pytest.raises(OSError), Client(apns) as anonymous:
        anonymous.push()
    assert apns.connections_accepted == 0 and apns.pushes == []


def test_a_certificate_from_another_chain_is_turned_away(apns: FakeAPNs, tmp_path: Path) -> None:
    stranger = create_dev_chain(tmp_path / "other", pass_type_identifier=TOPIC, team_identifier="X")
    with pytest.raises(OSError), Client(apns, cert=stranger) as client:
        client.push()
    assert apns.connections_accepted == 0


def test_an_expired_certificate_is_turned_away(apns: FakeAPNs, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expired = create_dev_chain(
        tmp_path / "expired",
        pass_type_identifier=TOPIC,
        team_identifier=TEAM_ID,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    server = FakeAPNs(
        tmp_path / "apns", client_ca_files=[expired.root_certificate, expired.wwdr_certificate]
    )
    with server, pytest.raises(OSError), Client(server, cert=expired) as client:
        client.push()
    assert server.connections_accepted == 0 and server.errors == []


def test_a_client_trusting_another_ca_does_not_trust_the_fake(
    apns: FakeAPNs, chain: DevChain, tmp_path: Path
) -> None:
    other_ca = create_server_certificates(tmp_path / "other-ca").ca_file
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(apns, cert=chain, ca_file=other_ca)


@pytest.mark.parametrize("alpn", [("http/1.1",), ()])
def test_connections_without_h2_are_dropped(
    apns: FakeAPNs, chain: DevChain, alpn: tuple[str, ...]
) -> None:
    with pytest.raises(OSError), Client(apns, cert=chain, alpn=alpn) as client:
        client.push()
    assert apns.connections_rejected == 1 and apns.connections_accepted == 0


# -- request validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"apns-topic": None}, 400, "MissingTopic"),
        ({"apns-push-type": "alert"}, 400, "InvalidPushType"),
        ({"apns-push-type": None}, 400, "InvalidPushType"),
        ({"apns-priority": "10"}, 400, "BadPriority"),
        ({"apns-priority": None}, 400, "BadPriority"),
        ({"apns-expiration": "tomorrow"}, 400, "BadExpirationDate"),
        ({"apns-collapse-id": "x" * 65}, 400, "BadCollapseId"),
    ],
)
def test_bad_headers_are_refused(
    client: Client, headers: dict[str, str | None], status: int, reason: str
) -> None:
    response = client.push(headers=headers)
    assert (response.status, response.reason) == (status, reason)
    assert response.headers["content-type"] == "application/json"
    uuid.UUID(response.headers["apns-id"])


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", f"/3/device/{TOKEN}", 405, "MethodNotAllowed"),
        ("PUT", f"/3/device/{TOKEN}", 405, "MethodNotAllowed"),
        ("POST", f"/3/devices/{TOKEN}", 404, "BadPath"),
        ("POST", f"/2/device/{TOKEN}", 404, "BadPath"),
        ("POST", "/3/device/", 400, "MissingDeviceToken"),
        ("POST", "/3/device/not-hex-at-all", 400, "BadDeviceToken"),
        ("POST", "/3/device/" + "ab" * 31, 400, "BadDeviceToken"),  # 62 hex digits
        ("POST", "/3/device/" + "ab" * 101, 400, "BadDeviceToken"),  # 202 hex digits
    ],
)
def test_bad_methods_and_paths_are_refused(
    apns: FakeAPNs, client: Client, method: str, path: str, status: int, reason: str
) -> None:
    response = client.push(method=method, path=path)
    assert (response.status, response.reason) == (status, reason)
    assert apns.pushes[0].status == status and apns.delivered() == []


def test_long_device_tokens_are_accepted(apns: FakeAPNs, client: Client) -> None:
    token = "AB" * 100
    assert client.push(token).status == 200
    assert apns.delivered() == [token]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "PayloadEmpty"),
        (b"[]", 400, "BadPayload"),
        (b"not json", 400, "BadPayload"),
        (b'"{}"', 400, "BadPayload"),
        (b"{" + b" " * 4096 + b"}", 413, "PayloadTooLarge"),
        (b'{"aps": {}}', 200, None),
    ],
)
def test_the_body_must_be_a_json_object(
    client: Client, body: bytes, status: int, reason: str | None
) -> None:
    response = client.push(body=body)
    assert (response.status, response.reason) == (status, reason)


def test_large_bodies_flow_with_window_updates(apns: FakeAPNs, client: Client) -> None:
    # 300 kB exceeds the initial 64 kB windows: the client can only finish sending if the
    # server acknowledges what it read.
    response = client.push(body=b"{" + b" " * 300_000 + b"}")
    assert (response.status, response.reason) == (413, "PayloadTooLarge")
    assert len(apns.pushes[0].body) == 300_002
    assert client.push().status == 200  # and the connection's window was replenished


def test_error_bodies_wait_for_the_clients_window(apns: FakeAPNs, chain: DevChain) -> None:
    with Client(apns, cert=chain, initial_window=5) as client:
        client.wait_for_settings(SettingCodes.MAX_CONCURRENT_STREAMS, 1000)  # settings acked
        response = client.push(headers={"apns-topic": "pass.someone.else"})
    assert response.reason == "TopicDisallowed"


# -- canned answers --------------------------------------------------------------------------


def test_a_canned_410_carries_its_timestamp_once(apns: FakeAPNs, client: Client) -> None:
    apns.answer(TOKEN, 410, "Unregistered", timestamp_ms=1_700_000_000_000)
    response = client.push()
    assert response.status == 410
    assert json.loads(response.body) == {"reason": "Unregistered", "timestamp": 1_700_000_000_000}
    assert client.push().status == 200  # consumed
    assert apns.delivered() == [TOKEN] and [p.status for p in apns.pushes] == [410, 200]


def test_a_410_defaults_to_now(apns: FakeAPNs, client: Client) -> None:
    apns.answer(TOKEN.upper(), 410)  # tokens match whatever their case
    before = int(time.time() * 1000)
    response = client.push()
    assert json.loads(response.body)["reason"] == "Unregistered"
    assert before <= json.loads(response.body)["timestamp"] <= int(time.time() * 1000)


def test_canned_answers_count_down_and_apply_only_to_valid_pushes(
    apns: FakeAPNs, client: Client
) -> None:
    other = "f" * 64
    apns.answer(TOKEN, 400, "BadDeviceToken", times=2)
    assert client.push(headers={"apns-priority": "10"}).reason == "BadPriority"  # not consumed
    assert [client.push().reason for _ in range(3)] == ["BadDeviceToken", "BadDeviceToken", None]
    assert client.push(other).status == 200
    apns.answer(other, 429, "TooManyRequests", times=None)
    assert {client.push(other).reason for _ in range(3)} == {"TooManyRequests"}


def test_answers_for_everyone(apns: FakeAPNs, client: Client) -> None:
    apns.answer_all(503, "ServiceUnavailable", times=2)
    apns.answer("e" * 64, 410, "Unregistered")
    assert client.push("e" * 64).status == 410  # the token's own answer goes first
    statuses = [client.push(token).status for token in ("a" * 64, "b" * 64, "c" * 64)]
    assert statuses == [503, 503, 200]
    apns.answer_all(500)
    assert client.push().reason == "InternalServerError"  # reason by status


def test_reset_forgets_records_and_answers(apns: FakeAPNs, client: Client) -> None:
    apns.answer_all(500, "InternalServerError", times=None)
    assert client.push().status == 500
    apns.reset()
    assert apns.pushes == [] and apns.max_observed_concurrency == 0
    assert client.push().status == 200
    assert apns.delivered() == [TOKEN]


# -- token authentication --------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(
    key: ec.EllipticCurvePrivateKey,
    *,
    kid: str = KEY_ID,
    iss: str = TEAM_ID,
    iat: int | None = None,
    alg: str = "ES256",
) -> str:
    """An APNs provider token: ES256 JWS with a raw r || s signature."""
    header = _b64url(json.dumps({"alg": alg, "kid": kid}).encode())
    claims = {"iss": iss, "iat": int(time.time()) if iat is None else iat}
    signing_input = f"{header}.{_b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture(scope="module")
def token_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def token_apns(tmp_path: Path, token_key: ec.EllipticCurvePrivateKey) -> Iterator[FakeAPNs]:
    with FakeAPNs(
        tmp_path,
        auth="token",
        team_id=TEAM_ID,
        key_id=KEY_ID,
        token_key=token_key.public_key(),
        topics=[TOPIC],
    ) as server:
        yield server
        assert server.errors == []


def test_token_auth_accepts_a_good_token_without_client_certificate(
    token_apns: FakeAPNs, token_key: ec.EllipticCurvePrivateKey
) -> None:
    bearer = {"authorization": f"bearer {make_jwt(token_key)}"}
    with Client(token_apns) as client:
        assert [client.push(headers=bearer).status for _ in range(3)] == [200, 200, 200]
        assert client.push(headers={**bearer, "apns-topic": "pass.x"}).reason == "TopicDisallowed"
    assert token_apns.distinct_tokens == 1 and token_apns.delivered() == [TOKEN] * 3


def _other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda key: None, "MissingProviderToken"),
        (lambda key: make_jwt(key, kid="OTHERKEY01"), "InvalidProviderToken"),
        (lambda key: make_jwt(key, iss="OTHERTEAM1"), "InvalidProviderToken"),
        (lambda key: make_jwt(key, alg="ES384"), "InvalidProviderToken"),
        (lambda key: make_jwt(_other_key()), "InvalidProviderToken"),
        (lambda key: make_jwt(key, iat=int(time.time()) + 600), "InvalidProviderToken"),
        (lambda key: make_jwt(key)[:-4] + "AAAA", "InvalidProviderToken"),
        (lambda key: "not.a.jwt", "InvalidProviderToken"),
        (lambda key: make_jwt(key, iat=int(time.time()) - 3700), "ExpiredProviderToken"),
    ],
)
def test_token_auth_refuses_bad_tokens(
    token_apns: FakeAPNs, token_key: ec.EllipticCurvePrivateKey, make: Any, reason: str
) -> None:
    jwt = make(token_key)
    headers = {"authorization": f"bearer {jwt}"} if jwt else {}
    with Client(token_apns) as client:
        response = client.push(headers=headers)
    assert (response.status, response.reason) == (403, reason)
    assert token_apns.delivered() == []


def test_token_auth_counts_distinct_tokens(
    token_apns: FakeAPNs, token_key: ec.EllipticCurvePrivateKey
) -> None:
    with Client(token_apns) as client:
        for iat in (int(time.time()) - 10, int(time.time()) - 20, int(time.time()) - 10):
            token = make_jwt(token_key, iat=iat)
            assert client.push(headers={"authorization": f"bearer {token}"}).status == 200
    assert token_apns.distinct_tokens in (2, 3)  # ECDSA signatures are randomized
    assert token_apns.distinct_tokens == len(
        {p.headers["authorization"] for p in token_apns.pushes}
    )


def test_token_auth_needs_its_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="team_id"):
        FakeAPNs(tmp_path, auth="token", team_id=TEAM_ID)
    with pytest.raises(ValueError, match="client_ca_files"):
        FakeAPNs(tmp_path)


# -- HTTP/2 streams and connections ----------------------------------------------------------


def test_the_stream_limit_is_announced_and_enforced(chain: DevChain, tmp_path: Path) -> None:
    with FakeAPNs(
        tmp_path,
        client_ca_files=[chain.root_certificate, chain.wwdr_certificate],
        max_concurrent_streams=1,
        response_delay=0.3,
    ) as apns:
        with Client(apns, cert=chain, unlimited=True) as client:
            streams = [client.send(flush=False) for _ in range(3)]
            client.flush()  # three streams in one write: the 2nd and 3rd are over the limit
            first, *others = client.wait(*streams)
            assert client.server_settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 1
            assert first.status == 200
            assert [other.reset for other in others] == [ErrorCodes.REFUSED_STREAM] * 2
            assert client.push().status == 200  # a refused stream does not end the connection
        assert apns.refused_streams == 2 and apns.max_observed_concurrency == 1
        assert len(apns.pushes) == 2 and apns.errors == []


def test_the_stream_limit_changes_on_live_connections(apns: FakeAPNs, chain: DevChain) -> None:
    with Client(apns, cert=chain, unlimited=True) as client:
        assert client.push().status == 200
        assert client.server_settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 1000
        apns.set_max_concurrent_streams(2)
        client.wait_for_settings(SettingCodes.MAX_CONCURRENT_STREAMS, 2)
        assert client.push().status == 200  # the server has our ACK by now
        apns.response_delay = 0.3
        responses = client.wait(*(client.send() for _ in range(3)))
        assert [r.status for r in responses] == [200, 200, None]
        assert responses[2].reset == ErrorCodes.REFUSED_STREAM
    with Client(apns, cert=chain) as newcomer:
        newcomer.wait_for_settings(SettingCodes.MAX_CONCURRENT_STREAMS, 2)
    assert apns.max_concurrent_streams == 2


def test_concurrent_streams_are_observed(apns: FakeAPNs, client: Client) -> None:
    apns.response_delay = 0.2
    responses = client.wait(*(client.send(f"{index:064x}") for index in range(20)))
    assert {response.status for response in responses} == {200}
    assert apns.max_observed_concurrency == 20
    assert sorted(apns.delivered()) == [f"{index:064x}" for index in range(20)]


def test_many_streams_and_connections_at_once(apns: FakeAPNs, chain: DevChain) -> None:
    clients = [Client(apns, cert=chain) for _ in range(10)]
    try:
        sent = [
            [c.send(f"{i:02x}{j:062x}", flush=False) for j in range(100)]
            for i, c in enumerate(clients)
        ]
        for c in clients:
            c.flush()
        results = [c.wait(*streams) for c, streams in zip(clients, sent, strict=True)]
    finally:
        for c in clients:
            c.close()
    assert all(response.status == 200 for batch in results for response in batch)
    assert apns.connections_accepted == 10 and len(set(apns.delivered())) == 1000
    assert 1 <= apns.max_observed_concurrency <= 100


def test_pushes_from_many_threads_are_all_recorded(apns: FakeAPNs, chain: DevChain) -> None:
    def pusher(index: int) -> None:
        with Client(apns, cert=chain) as client:
            for j in range(20):
                assert client.push(f"{index:02x}{j:062x}").status == 200

    threads = [threading.Thread(target=pusher, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(apns.delivered()) == 160 and apns.connections_accepted == 8


def test_stop_says_goaway_closes_connections_and_joins(chain: DevChain, tmp_path: Path) -> None:
    apns = FakeAPNs(tmp_path, client_ca_files=[chain.root_certificate, chain.wwdr_certificate])
    apns.start()
    client = Client(apns, cert=chain)
    try:
        assert client.push().status == 200
        thread = apns._thread
        apns.stop()
        assert thread is not None and not thread.is_alive()
        with pytest.raises(OSError):
            while True:
                client._read()
        assert client.terminated is not None
        assert client.terminated.error_code == ErrorCodes.NO_ERROR
    finally:
        client.close()
    apns.stop()  # twice is fine
    with pytest.raises(OSError):
        Client(apns, cert=chain)
    # and it can start again, with the same CA
    with apns, Client(apns, cert=chain) as again:
        assert again.push().status == 200
    assert apns.errors == []


def test_connections_accepted_elsewhere_can_be_handed_to_fakes(
    chain: DevChain, tmp_path: Path
) -> None:
    """What bench/push.py does to spread one port's connections over fakes in several processes."""
    shared = create_server_certificates(tmp_path / "shared")
    cas = [chain.root_certificate, chain.wwdr_certificate]
    first = FakeAPNs(tmp_path / "a", client_ca_files=cas, certificates=shared)
    second = FakeAPNs(tmp_path / "b", client_ca_files=cas, certificates=shared)
    with pytest.raises(RuntimeError, match="not running"):
        first.adopt(socket.socket())
    with first, second, socket.create_server(("127.0.0.1", 0)) as listener:
        assert first.ca_file == second.ca_file == shared.ca_file
        port = listener.getsockname()[1]
        clients = []
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            for fake in (first, second, first):
                # The client's TLS handshake waits for the fake that adopts the connection.
                connecting = pool.submit(Client, first, cert=chain, port=port)
                sock, _ = listener.accept()
                fake.adopt(sock)
                clients.append(connecting.result(timeout=10))
        try:
            for number, client in enumerate(clients):
                assert client.push(token=f"{number:064x}").status == 200
        finally:
            for client in clients:
                client.close()
        assert sorted(first.delivered()) == [f"{0:064x}", f"{2:064x}"]
        assert second.delivered() == [f"{1:064x}"]
        assert (first.connections_accepted, second.connections_accepted) == (2, 1)
        assert first.errors == second.errors == []
