"""A fake Google Wallet REST API (loyalty classes and objects) for tests: WSGI on loopback.

Google Wallet passes are written through Google's `walletobjects` REST API, which tests cannot
reach, and whose mistakes (a misspelt field, a wrong enum value, an id with a bad character, a
fourth notification in a day) only show up there as a 400 or 403. This double checks what Google
checks, so the real client can be tested against it unchanged:

* OAuth 2 as a service account does it: `POST /token` with a JWT assertion signed by the service
  account's key (verified here: signature, `iss`, `aud`, `iat`/`exp`, `scope`), answering an
  access token that every API call must then carry as `Authorization: Bearer ...`;
* every request body against Google's own discovery document, `walletobjects.v1.json` as shipped
  in google-api-python-client (unknown fields, JSON types, int32/int64 formats, enum values, and
  the fields whose description starts with "Required.");
* what the discovery document only states in prose: id format and issuer, `reviewStatus`
  transitions, draft classes, https logos, 409 on duplicate inserts, 404 on missing resources,
  3 notifications per pass per 24 h (403 `quotaExceeded`), a per-second request quota (429);
* and it answers canned 409/429/500/403 errors, shaped like Google's error JSON.

It also plays Google's side of the save/delete callbacks: it publishes root signing keys at
`/gp/m/issuer/keys` (as pay.google.com does) and `callback()` signs the message Google would POST
to a class's `callbackOptions.url` when a member saves or deletes an object (`ECv2SigningOnly`:
root key -> intermediate key -> message, ECDSA P-256, length-prefixed fields).

The server is werkzeug's threaded WSGI server in a background thread; all state is guarded by
one lock, so several client threads (or worker processes) can use it at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import importlib.resources
import ipaddress
import json
import math
import os
import re
import secrets
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = [
    "WALLET_SCOPE",
    "FakeGoogleWallet",
    "Recorded",
    "SchemaValidator",
    "Violation",
    "discovery_document",
    "schema_validator",
]

HOST = "127.0.0.1"
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_PREFIX = "/walletobjects/v1/"
TOKEN_PATH = "/token"
CALLBACK_KEYS_PATH = "/gp/m/issuer/keys"
CALLBACK_SENDER_ID = "GooglePayPasses"
CALLBACK_PROTOCOL = "ECv2SigningOnly"
CALLBACK_KEYS_MAX_AGE = 3600  # seconds, the Cache-Control of the key list
GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
)
ACCESS_TOKEN_LIFETIME = 3600  # seconds, what Google's token endpoint grants
ASSERTION_MAX_LIFETIME = 3600  # Google refuses assertions valid for more than an hour
ASSERTION_CLOCK_SKEW = 300  # ... and, here, issued more than 5 minutes in the future
NOTIFICATION_LIMIT = 3  # notifications per pass ...
NOTIFICATION_WINDOW = 24 * 3600.0  # ... per 24 hours
SAVE_JWT_MAX_LENGTH = 1800  # longer "Save to Google Wallet" JWTs break in some browsers

# URL collection -> (discovery schema, resource name in error paths)
KINDS = {"loyaltyClass": "LoyaltyClass", "loyaltyObject": "LoyaltyObject"}
ACTIONS = ("insert", "get", "list", "patch", "update", "addMessage")
_DOC_METHODS = {"addMessage": "addmessage"}  # discovery method names are lower case
_BODY_ACTIONS = frozenset({"insert", "patch", "update", "addMessage"})
_ID_RE = re.compile(r"([0-9]+)\.([A-Za-z0-9._-]+)")
_HEX_COLOR_RE = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)?"
)
_INTEGER_STRING_RE = re.compile(r"-?[0-9]+")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_BALANCE_KINDS = ("string", "int", "double", "money")
_DRAFT = frozenset({"DRAFT", "draft"})
_SETTABLE_REVIEW = frozenset({"DRAFT", "draft", "UNDER_REVIEW", "underReview"})
_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_PROTO_TYPES = {
    "string": "TYPE_STRING",
    "boolean": "TYPE_BOOL",
    "number": "TYPE_DOUBLE",
    "int32": "TYPE_INT32",
    "uint32": "TYPE_UINT32",
    "int64": "TYPE_INT64",
    "uint64": "TYPE_UINT64",
    "byte": "TYPE_BYTES",
}
# Default reason and google.rpc status of the canned answers and of the fake's own errors.
_DEFAULT_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "permissionDenied",
    404: "notFound",
    409: "alreadyExists",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}
_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_DEFAULT_MESSAGES = {
    "badRequest": "Bad Request",
    "authError": "Invalid Credentials",
    "permissionDenied": "The caller does not have permission",
    "quotaExceeded": "Quota exceeded.",
    "notFound": "Requested entity was not found.",
    "alreadyExists": "Resource already exists.",
    "rateLimitExceeded": "Rate Limit Exceeded",
    "backendError": "Backend Error",
}


# -- the discovery document as a validator ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing wrong with a request body."""

    path: str  # e.g. "loyaltyObject.barcode.type", "loyaltyClass.textModulesData[0].header"
    problem: str  # e.g. "'QR' is not one of ['BARCODE_TYPE_UNSPECIFIED', ...]"
    google: str  # the message Google gives for it, roughly

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


_Check = Callable[[Any, str, list[Violation]], None]


def discovery_document() -> dict[str, Any]:
    """Google's `walletobjects.v1.json`, as shipped in google-api-python-client."""
    return _load_discovery_document()


@functools.cache
def _load_discovery_document() -> dict[str, Any]:
    documents = importlib.resources.files("googleapiclient.discovery_cache") / "documents"
    loaded: dict[str, Any] = json.loads(
        (documents / "walletobjects.v1.json").read_text(encoding="utf-8")
    )
    return loaded


@functools.cache
def schema_validator() -> SchemaValidator:
    """The validator compiled from the discovery document, built once per process."""
    return SchemaValidator(discovery_document())


def _json_text(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


class SchemaValidator:
    """Every schema of a discovery document compiled into nested checking closures.

    Discovery schemas are not JSON Schema: `type` is one of string/boolean/integer/number/array/
    object (or absent beside `$ref`), integers carry a `format` (int32, uint32), 64-bit integers
    are `type: string` with `format: int64` (Google's JSON writes them as strings and reads both),
    enums are plain `enum` lists (often each value twice: `UNDER_REVIEW` and legacy
    `underReview`), and "required" exists only as a description starting with "Required.".
    Checks mirror Google's protobuf JSON parser: unknown names, wrong types, out-of-range
    integers and values missing from `enum` are errors; `null` means "not set".
    """

    # Field checks the discovery document states only in prose. Each returns a problem or None.
    FIELD_CHECKS: Mapping[tuple[str, str], Callable[[Any], str | None]] = {
        ("ImageUri", "uri"): lambda value: _check_absolute_uri(value),
        ("DateTime", "date"): lambda value: (
            None
            if _DATETIME_RE.fullmatch(value)
            else "not an ISO 8601 extended date/time like 1985-04-12T23:20:50.52Z"
        ),
        ("LoyaltyClass", "hexBackgroundColor"): lambda value: (
            None if _HEX_COLOR_RE.fullmatch(value) else "not a colour like #rrggbb or #rgb"
        ),
    }

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.schemas: Mapping[str, Any] = document["schemas"]
        self.required: dict[str, tuple[str, ...]] = {
            name: _required_fields(schema) for name, schema in self.schemas.items()
        }
        self._objects: dict[str, _Check] = {}  # without the schema's own required fields
        self._nested: dict[str, _Check] = {}  # with them: how a $ref'd value is checked
        for name, schema in self.schemas.items():
            self._objects[name] = self._compile_object(name, schema)
            self._nested[name] = _with_required(self._objects[name], self.required[name])

    def validate(
        self, schema: str, value: Any, path: str, *, require_top_level: bool = True
    ) -> list[Violation]:
        """All violations of `value` against schema `schema`; `path` names the root.

        Required fields ("Required." in the description) are enforced in nested objects always
        and at the top level only when `require_top_level` (insert/update, not patch).
        """
        out: list[Violation] = []
        if require_top_level:
            self._nested[schema](value, path, out)
        else:
            self._objects[schema](value, path, out)
        return out

    def _compile_object(self, name: str, schema: Mapping[str, Any]) -> _Check:
        properties = {
            prop: self._compile(name, prop, spec)
            for prop, spec in schema.get("properties", {}).items()
        }
        additional = schema.get("additionalProperties")
        additional_check = self._compile(name, "*", additional) if additional else None
        proto_name = schema.get("id", name)
        is_balance = name == "LoyaltyPointsBalance"

        def check(value: Any, path: str, out: list[Violation]) -> None:
            if not isinstance(value, dict):
                out.append(_wrong_type(path, value, "an object", proto_name))
                return
            for key, item in value.items():
                item_path = f"{path}.{key}"
                if additional_check is not None:
                    if item is not None:
                        additional_check(item, item_path, out)
                    continue
                prop_check = properties.get(key)
                if prop_check is None:
                    out.append(
                        Violation(
                            item_path,
                            f"unknown field {key!r} in {proto_name}",
                            f'Invalid JSON payload received. Unknown name "{key}" at '
                            f"'{path}': Cannot find field.",
                        )
                    )
                elif item is not None:
                    prop_check(item, item_path, out)
            if is_balance:
                present = [k for k in _BALANCE_KINDS if value.get(k) is not None]
                if len(present) > 1:
                    out.append(
                        Violation(
                            path,
                            f"more than one of string/int/double/money set: {present}",
                            f"Invalid value at '{path}': only one of string, int, double, "
                            "money may be set.",
                        )
                    )

        return check

    def _reference(self, name: str) -> _Check:
        nested = self._nested  # filled for every schema before any check runs

        def check(value: Any, path: str, out: list[Violation]) -> None:
            nested[name](value, path, out)

        return check

    def _compile(self, schema: str, prop: str, spec: Mapping[str, Any]) -> _Check:
        if "$ref" in spec:
            base = self._reference(spec["$ref"])
        else:
            base = self._compile_plain(schema, prop, spec)
        extra = self.FIELD_CHECKS.get((schema, prop))
        if extra is None:
            return base

        def checked(value: Any, path: str, out: list[Violation]) -> None:
            before = len(out)
            base(value, path, out)
            if len(out) == before:
                problem = extra(value)
                if problem is not None:
                    out.append(
                        Violation(path, problem, f"Invalid value at '{path}', {_json_text(value)}")
                    )

        return checked

    def _compile_plain(self, schema: str, prop: str, spec: Mapping[str, Any]) -> _Check:
        kind = spec.get("type")
        fmt = spec.get("format")
        if kind == "array":
            item_check = self._compile(schema, prop, spec.get("items", {}))

            def check_array(value: Any, path: str, out: list[Violation]) -> None:
                if not isinstance(value, list):
                    out.append(_wrong_type(path, value, "an array", "repeated"))
                    return
                for index, item in enumerate(value):
                    if item is None:
                        out.append(_wrong_type(f"{path}[{index}]", item, "a value", "repeated"))
                    else:
                        item_check(item, f"{path}[{index}]", out)

            return check_array
        if kind == "object":
            inline = self._compile_object(f"{schema}.{prop}", spec)
            return _with_required(inline, _required_fields(spec))
        if "enum" in spec:
            allowed = frozenset(spec["enum"])
            listed = list(spec["enum"])

            def check_enum(value: Any, path: str, out: list[Violation]) -> None:
                if not isinstance(value, str) or value not in allowed:
                    out.append(
                        Violation(
                            path,
                            f"{value!r} is not one of {listed}",
                            f"Invalid value at '{path}' (TYPE_ENUM), {_json_text(value)}",
                        )
                    )

            return check_enum
        if kind == "boolean":
            return _simple(lambda v: isinstance(v, bool), "a boolean", "TYPE_BOOL")
        if kind == "number":
            return _simple(
                lambda v: (
                    (isinstance(v, int | float) and not isinstance(v, bool))
                    or v in ("NaN", "Infinity", "-Infinity")
                ),
                "a number",
                "TYPE_DOUBLE",
            )
        if kind == "integer":
            low, high = _RANGES.get(fmt or "int32", _RANGES["int32"])
            return _simple(
                lambda v: _is_integral(v) and low <= v <= high,
                f"a number ({fmt or 'int32'})",
                _PROTO_TYPES.get(fmt or "int32", "TYPE_INT32"),
            )
        if kind == "string" and fmt in ("int64", "uint64"):
            low, high = _RANGES[fmt]

            def is_int64(v: Any) -> bool:
                if isinstance(v, str):
                    return _INTEGER_STRING_RE.fullmatch(v) is not None and low <= int(v) <= high
                return _is_integral(v) and low <= v <= high

            return _simple(is_int64, f"an {fmt} (string or number)", _PROTO_TYPES[fmt])
        if kind == "string" and fmt == "byte":
            return _simple(_is_base64, "a base64 string", "TYPE_BYTES")
        if kind == "string":
            return _simple(lambda v: isinstance(v, str), "a string", "TYPE_STRING")
        raise ValueError(f"unsupported discovery schema at {schema}.{prop}: {dict(spec)}")


def _required_fields(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The properties whose description starts with "Required.": the document's only word on it."""
    return tuple(
        name
        for name, spec in schema.get("properties", {}).items()
        if str(spec.get("description", "")).startswith("Required.")
    )


def _with_required(check: _Check, required: tuple[str, ...]) -> _Check:
    if not required:
        return check

    def checked(value: Any, path: str, out: list[Violation]) -> None:
        check(value, path, out)
        if isinstance(value, dict):
            for name in required:
                if value.get(name) in (None, "", [], {}):
                    out.append(_missing(f"{path}.{name}"))

    return checked


def _simple(accepts: Callable[[Any], bool], expected: str, proto_type: str) -> _Check:
    def check(value: Any, path: str, out: list[Violation]) -> None:
        if not accepts(value):
            out.append(_wrong_type(path, value, expected, proto_type))

    return check


def _wrong_type(path: str, value: Any, expected: str, proto_type: str) -> Violation:
    return Violation(
        path,
        f"expected {expected}, got {_type_name(value)} {_json_text(value)}",
        f"Invalid value at '{path}' ({proto_type}), {_json_text(value)}",
    )


def _missing(path: str) -> Violation:
    return Violation(path, "required field missing", f"Missing required field: '{path}'.")


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str) or not _BASE64_RE.fullmatch(value):
        return False
    padded = value.replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded.rstrip("=")) % 4) if "=" not in padded else ""
    try:
        base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_absolute_uri(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an absolute http(s) URI (Google: 'URIs must have a scheme')"
    return None


def _public_https_problem(uri: Any) -> str | None:
    """Why Google could not fetch this logo URI, or None."""
    if not isinstance(uri, str):
        return "missing"
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname:
        return f"{uri!r} is not an https URI"
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{uri!r} is not publicly reachable"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"{uri!r} is not publicly reachable"
    return None


# -- the fake ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake answered, valid or not."""

    method: str
    path: str
    kind: str | None  # "loyaltyClass" / "loyaltyObject"; None for the token endpoint or 404s
    resource_id: str | None
    action: str | None  # insert/get/list/patch/update/addMessage, "token", None if unroutable
    body: Any  # the parsed JSON body (or form, for the token endpoint); raw text if unparsable
    status: int
    reason: str | None  # the error reason answered, None for 200
    time: float  # FakeGoogleWallet.now() when the request arrived
    query: dict[str, str] = field(default_factory=dict)
    message: str | None = None  # the error message answered


@dataclass(slots=True)
class _Canned:
    status: int
    reason: str
    remaining: int | None  # None: forever
    action: str | None
    kind: str | None


@dataclass(frozen=True, slots=True)
class _AccessToken:
    expires_at: float  # wall-clock time
    scopes: frozenset[str]


class _Reject(Exception):
    """Stop handling a request and answer this error."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        violations: Iterable[Violation] = (),
        client_error: bool = True,
        rpc_status: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.violations = list(violations)
        self.client_error = client_error  # a mistake of the client's: goes to `errors`
        self.rpc_status = rpc_status or _RPC_STATUS.get(status, "UNKNOWN")
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def google_error(
    status: int,
    reason: str,
    message: str,
    *,
    rpc_status: str | None = None,
    violations: Iterable[Violation] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The error JSON Google's APIs answer with."""
    violations = list(violations)
    errors: list[dict[str, str]]
    if violations:
        errors = [{"message": v.google, "domain": "global", "reason": reason} for v in violations]
    else:
        errors = [{"message": message, "domain": "global", "reason": reason, **(extra or {})}]
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": errors,
        "status": rpc_status or _RPC_STATUS.get(status, "UNKNOWN"),
    }
    if violations:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": v.path, "description": v.problem} for v in violations
                ],
            }
        ]
    return {"error": error}


def _overridden(fields: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    for name, value in (changes or {}).items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def _length_prefixed(*fields: str) -> bytes:
    """Google's signed bytes: each field's UTF-8 after its length (4 bytes, little-endian)."""
    return b"".join(len(data).to_bytes(4, "little") + data for data in (f.encode() for f in fields))


def _spki_base64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def _ecdsa_base64(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode("ascii")


class FakeGoogleWallet:
    """Context manager: a threaded WSGI server on 127.0.0.1:<free port>, in a background thread.

    Point the client at `base_url` (API) and `service_account_info()` (whose `token_uri` is the
    fake's token endpoint). `now` is the clock for notification windows, the quota bucket and
    `Recorded.time` (default `time.monotonic`); tests may replace it. Access-token and assertion
    lifetimes use the wall clock, as google-auth signs its assertions with it.

    Test-facing state (`requests`, `classes`, `objects`, `errors`, ...) is plain lists and
    dicts mutated under the fake's lock; read it, or seed it, while no request is in flight.
    """

    def __init__(
        self,
        *,
        issuer_id: str = "3388000000012345678",
        quota_rps: float | None = None,
        now: Callable[[], float] | None = None,
        allow_private_logo_hosts: bool = False,
    ) -> None:
        if not issuer_id.isdigit():
            raise ValueError("a Google Wallet issuer id is a number")
        self.issuer_id = issuer_id
        self.now: Callable[[], float] = now or time.monotonic
        self.allow_private_logo_hosts = allow_private_logo_hosts
        self.project_id = "loyalpass-test"
        self.client_email = f"wallet-writer@{self.project_id}.iam.gserviceaccount.com"
        self.client_id = str(100000000000000000000 + secrets.randbelow(10**20))
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._key.public_key()
        self.public_key_pem: bytes = self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.private_key_pem: bytes = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Google's root key for the save/delete callbacks (``callback_root_keys`` may be
        # replaced to publish others, e.g. an expired one, or a rotation).
        self.callback_root_key = ec.generate_private_key(ec.SECP256R1())
        self.callback_root_keys: list[tuple[ec.EllipticCurvePrivateKey, float]] = [
            (self.callback_root_key, time.time() + 7 * 24 * 3600)
        ]
        self.callback_key_requests = 0
        # When set, the key list answers only once the event is set (a slow Google).
        self.callback_keys_gate: threading.Event | None = None
        self._validator = schema_validator()
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.token_requests: list[Recorded] = []
        self.classes: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.notifications: dict[str, list[float]] = {}  # object id -> times of notifying calls
        self.count_429 = 0
        self._canned: deque[_Canned] = deque()
        self._tokens: dict[str, _AccessToken] = {}
        self._quota_rps = quota_rps
        self._bucket: float | None = None  # tokens left; None: full, not yet used
        self._bucket_time = 0.0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeGoogleWallet is already started")
        connections, lock = self._connections, self._lock

        class Handler(WSGIRequestHandler):
            def setup(self) -> None:
                super().setup()
                with lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    connections.discard(self.connection)
                super().finish()

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass  # the records are in FakeGoogleWallet.requests

        server = make_server(HOST, 0, self._wsgi, threaded=True, request_handler=Handler)
        self._server = server
        self.port = server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-google-wallet-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections would keep serving
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    # -- configuration and credentials ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeGoogleWallet is not started")
        return f"http://{HOST}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    @property
    def callback_keys_url(self) -> str:
        """Where the fake publishes its callback root keys (Google's is pay.google.com)."""
        return f"{self.base_url}{CALLBACK_KEYS_PATH}"

    @property
    def api_url(self) -> str:
        """`base_url` + "/walletobjects/v1" (no trailing slash)."""
        return self.base_url + API_PREFIX.rstrip("/")

    def service_account_info(self) -> dict[str, Any]:
        """The service-account key JSON, as Google Cloud's console downloads it."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem.decode("ascii"),
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + quote(self.client_email, safe=""),
            "universe_domain": "googleapis.com",
        }

    def write_service_account(self, path: Path) -> Path:
        """Write `service_account_info()` to `path` (mode 0600) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(self.service_account_info(), file, indent=2)
        return path

    @property
    def quota_rps(self) -> float | None:
        return self._quota_rps

    @quota_rps.setter
    def quota_rps(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("quota_rps must be positive, or None for no quota")
        with self._lock:
            self._quota_rps = value
            self._bucket = None

    def answer(
        self,
        status: int,
        *,
        reason: str | None = None,
        times: int | None = 1,
        action: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Queue a canned error for the next API requests that pass authentication and
        validation (optionally only `action` and/or `kind` ones), `times` times (None: forever).

        Reasons default by status: 409 alreadyExists, 429 rateLimitExceeded, 500/503
        backendError, 403 permissionDenied (pass reason="quotaExceeded" for the quota one).
        A canned answer changes no state. Queued answers are used in order.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"not an error status: {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {tuple(KINDS)}")
        entry = _Canned(
            status, reason or _DEFAULT_REASONS.get(status, "backendError"), times, action, kind
        )
        with self._lock:
            self._canned.append(entry)

    def reset(self) -> None:
        """Forget records, resources, errors, canned answers, notifications and the quota bucket.

        Keys and issued access tokens stay valid, so a client's cached token keeps working.
        """
        with self._lock:
            self.requests.clear()
            self.token_requests.clear()
            self.classes.clear()
            self.objects.clear()
            self.errors.clear()
            self.notifications.clear()
            self._canned.clear()
            self._bucket = None
            self.count_429 = 0

    # -- helpers for tests ------------------------------------------------------------------------

    def minimal_class(self, suffix: str, **fields: Any) -> dict[str, Any]:
        """A valid loyalty class body with only the required fields (plus `fields`)."""
        body: dict[str, Any] = {
            "id": f"{self.issuer_id}.{suffix}",
            "issuerName": "Test Bakery",
            "programName": "Test Bakery Rewards",
            "programLogo": {"sourceUri": {"uri": "https://loyalpass.example/logo.png"}},
            "reviewStatus": "UNDER_REVIEW",
        }
        body.update(fields)
        return body

    def minimal_object(self, suffix: str, class_suffix: str, **fields: Any) -> dict[str, Any]:
        """A valid loyalty object body with only the required fields (plus `fields`)."""
        body: dict[str, Any] = {
            "id": f"{self.issuer_id}.{suffix}",
            "classId": f"{self.issuer_id}.{class_suffix}",
            "state": "ACTIVE",
        }
        body.update(fields)
        return body

    def recorded(
        self, *, action: str | None = None, kind: str | None = None, status: int | None = None
    ) -> list[Recorded]:
        """A snapshot of the API requests, optionally filtered."""
        with self._lock:
            records = list(self.requests)
        return [
            r
            for r in records
            if (action is None or r.action == action)
            and (kind is None or r.kind == kind)
            and (status is None or r.status == status)
        ]

    def achieved_rate(self, *, status: int | None = 200) -> float:
        """Requests per second (by `now`) from the first to the last matching request."""
        times = sorted(r.time for r in self.recorded(status=status))
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else math.inf

    def max_rate(self, window: float = 1.0, *, status: int | None = 200) -> float:
        """The most matching requests in any `window` seconds (by `now`), per second."""
        times = sorted(r.time for r in self.recorded(status=status))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best / window

    def notifications_for(self, object_id: str) -> list[float]:
        """Times (by `now`) of the accepted notifying calls for an object."""
        with self._lock:
            return list(self.notifications.get(object_id, ()))

    def decode_save_jwt(self, token: str, *, require_stored: bool = True) -> dict[str, Any]:
        """Check a "Save to Google Wallet" JWT like Google would and return its claims.

        RS256 by the service account's key, `iss` the service account, `aud` "google",
        `typ` "savetowallet", under 1,800 characters, payload entries valid against the discovery
        document; with `require_stored`, entries that are only `{id, classId}` must have been
        inserted. Raises ValueError naming the problem.
        """
        if len(token) > SAVE_JWT_MAX_LENGTH:
            raise ValueError(f"save JWT is {len(token)} characters (limit {SAVE_JWT_MAX_LENGTH})")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience="google",
                issuer=self.client_email,
                options={"require": ["iss", "aud", "typ", "payload"], "verify_iat": True},
            )
        except jwt.PyJWTError as exc:
            raise ValueError(f"save JWT rejected: {exc}") from exc
        if claims.get("typ") != "savetowallet":
            raise ValueError(f"save JWT typ is {claims.get('typ')!r}, not 'savetowallet'")
        payload = claims["payload"]
        if not isinstance(payload, dict):
            raise ValueError("save JWT payload is not an object")
        problems: list[Violation] = []
        for key, value in payload.items():
            schema = {"loyaltyClasses": "LoyaltyClass", "loyaltyObjects": "LoyaltyObject"}.get(key)
            if schema is None:
                continue  # other pass types: not this fake's business
            if not isinstance(value, list):
                raise ValueError(f"save JWT payload.{key} is not an array")
            store = self.classes if schema == "LoyaltyClass" else self.objects
            for index, entry in enumerate(value):
                path = f"payload.{key}[{index}]"
                problems += self._validator.validate(schema, entry, path, require_top_level=False)
                if (
                    require_stored
                    and isinstance(entry, dict)
                    and set(entry) <= {"id", "classId"}
                    and entry.get("id") not in store
                ):
                    raise ValueError(f"{path}: {entry.get('id')!r} was never inserted")
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        return claims

    # -- save/delete callbacks -------------------------------------------------------------------

    def callback_keys_document(self) -> dict[str, Any]:
        """The published root key list, in Google's shape (keyExpiration in ms, as a string)."""
        return {
            "keys": [
                {
                    "keyValue": _spki_base64(key),
                    "protocolVersion": CALLBACK_PROTOCOL,
                    "keyExpiration": str(int(expires * 1000)),
                }
                for key, expires in self.callback_root_keys
            ]
        }

    def callback(
        self,
        object_id: str,
        event_type: str,
        *,
        nonce: str | None = None,
        expires_in: float = 3600.0,
        intermediate_expires_in: float = 86400.0,
        root_key: ec.EllipticCurvePrivateKey | None = None,
        recipient_id: str | None = None,
        message_fields: Mapping[str, Any] | None = None,
        signed_key_fields: Mapping[str, Any] | None = None,
        other_signatures: Iterable[str] = (),
    ) -> tuple[str, bytes]:
        """What Google POSTs when a member saves (``save``) or deletes (``del``) ``object_id``:
        the class's ``callbackOptions.url`` and the signed body. The object and its class must
        have been written here, and the class must name an https callback URL (ValueError
        otherwise). The keyword arguments let a test make what Google would not: fields
        replaced in (or, given None, dropped from) the signed message or intermediate key, and
        signatures put in front of the root's over the intermediate key."""
        if event_type not in ("save", "del"):
            raise ValueError("event_type is save or del")
        with self._lock:
            stored = self.objects.get(object_id)
            klass = self.classes.get(str(stored.get("classId"))) if stored else None
        if stored is None or klass is None:
            raise ValueError(f"{object_id!r} (or its class) was never written here")
        url = (klass.get("callbackOptions") or {}).get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise ValueError(f"class {klass['id']!r} names no https callbackOptions.url: {url!r}")
        now = time.time()
        intermediate = ec.generate_private_key(ec.SECP256R1())
        signed_key = json.dumps(
            _overridden(
                {
                    "keyValue": _spki_base64(intermediate),
                    "keyExpiration": str(int((now + intermediate_expires_in) * 1000)),
                },
                signed_key_fields,
            )
        )
        message = json.dumps(
            _overridden(
                {
                    "classId": klass["id"],
                    "objectId": object_id,
                    "eventType": event_type,
                    "expTimeMillis": int((now + expires_in) * 1000),
                    "count": 1,  # Google sends it too; not documented, not relied on
                    "nonce": nonce or secrets.token_hex(16),
                },
                message_fields,
            )
        )
        root = root_key or self.callback_root_key
        body = {
            "signature": _ecdsa_base64(
                intermediate,
                _length_prefixed(
                    CALLBACK_SENDER_ID,
                    recipient_id or self.issuer_id,
                    CALLBACK_PROTOCOL,
                    message,
                ),
            ),
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [
                    *other_signatures,
                    _ecdsa_base64(
                        root, _length_prefixed(CALLBACK_SENDER_ID, CALLBACK_PROTOCOL, signed_key)
                    ),
                ],
            },
            "protocolVersion": CALLBACK_PROTOCOL,
            "signedMessage": message,
        }
        return url, json.dumps(body).encode()

    def _callback_keys(self, request: Request) -> Response:
        with self._lock:
            self.callback_key_requests += 1
        gate = self.callback_keys_gate
        if gate is not None:
            gate.wait(30)
        if request.method != "GET":
            return _json_response(405, google_error(405, "badRequest", "GET only"))
        response = Response(
            json.dumps(self.callback_keys_document()), 200, content_type="application/json"
        )
        response.headers["Cache-Control"] = f"public, max-age={CALLBACK_KEYS_MAX_AGE}"
        return response

    # -- WSGI -------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            if request.path == TOKEN_PATH:
                response = self._token_endpoint(request)
            elif request.path == CALLBACK_KEYS_PATH:
                response = self._callback_keys(request)
            else:
                response = self._api(request)
        except Exception:  # a bug in the fake: make it visible
            text = traceback.format_exc()
            with self._lock:
                self.errors.append(f"fake internal error: {text}")
            response = _json_response(500, google_error(500, "backendError", "Backend Error"))
        result: Iterable[bytes] = response(environ, start_response)
        return result

    # -- token endpoint ---------------------------------------------------------------------------

    def _token_endpoint(self, request: Request) -> Response:
        arrived = self.now()
        form = request.form.to_dict()
        status, body, reason = 200, {}, None
        try:
            if request.method != "POST":
                raise _Reject(405, "invalid_request", "POST only")
            body = self._grant(form)
        except _Reject as reject:
            status, reason = reject.status, reject.reason
            body = {"error": reject.reason, "error_description": reject.message}
            with self._lock:
                self.errors.append(f"token: {reject.reason}: {reject.message}")
        record = Recorded(
            request.method,
            request.path,
            None,
            None,
            "token",
            {k: v for k, v in form.items()},
            status,
            reason,
            arrived,
            request.args.to_dict(),
            None if status == 200 else body.get("error_description"),
        )
        with self._lock:
            self.token_requests.append(record)
        return _json_response(status, body)

    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type, assertion = form.get("grant_type"), form.get("assertion")
        if grant_type != JWT_BEARER:
            raise _Reject(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not assertion:
            raise _Reject(400, "invalid_request", "Missing required parameter: assertion")
        invalid_signature = _Reject(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise _Reject(400, "invalid_grant", f"Invalid JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise invalid_signature
        if "kid" in header and header["kid"] != self.private_key_id:
            raise invalid_signature
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise invalid_signature from exc
        except jwt.PyJWTError as exc:
            raise _Reject(400, "invalid_grant", f"Invalid JWT: {exc}") from exc
        if claims.get("iss") != self.client_email:
            raise _Reject(400, "invalid_grant", "Invalid grant: account not found")
        # google-auth signs aud = Google's token endpoint whatever token_uri says; Google accepts
        # its token endpoints' URLs. The fake accepts those and its own token_uri.
        if claims.get("aud") not in (*GOOGLE_TOKEN_AUDIENCES, self.token_uri):
            raise _Reject(
                400,
                "invalid_grant",
                "Invalid JWT: Failed audience check. The right audience is "
                f"{GOOGLE_TOKEN_AUDIENCES[0]}",
            )
        issued, expires, now = claims.get("iat"), claims.get("exp"), time.time()
        if not (
            _is_integral(issued)
            and _is_integral(expires)
            and isinstance(issued, int | float)
            and isinstance(expires, int | float)
            and issued <= now + ASSERTION_CLOCK_SKEW
            and expires > now
            and 0 < expires - issued <= ASSERTION_MAX_LIFETIME
        ):
            raise _Reject(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.split():
            # Google issues a token for any scope; calls then fail for want of the right one.
            raise _Reject(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        access_token = "ya29.fake-" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[access_token] = _AccessToken(
                time.time() + ACCESS_TOKEN_LIFETIME, frozenset(scope.split())
            )
        return {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "token_type": "Bearer",
        }

    # -- the API ----------------------------------------------------------------------------------

    def _api(self, request: Request) -> Response:
        arrived = self.now()
        kind = resource_id = action = None
        raw = request.get_data(cache=False)
        body: Any = None
        status, reason, message = 200, None, None
        headers: dict[str, str] = {}
        try:
            kind, resource_id, action = self._route(request.method, request.path)
            self._authenticate(request)
            self._take_quota()
            self._check_query(kind, action, request.args.to_dict(flat=False))
            if action in _BODY_ACTIONS:
                body = _parse_body(raw)
            self._validate(kind, action, resource_id, body, request.args)
            self._take_canned(kind, action)
            payload = self._execute(kind, action, resource_id, body, request.args)
        except _Reject as reject:
            status, reason, message = reject.status, reject.reason, reject.message
            headers = reject.headers
            payload = json.dumps(
                google_error(
                    reject.status,
                    reject.reason,
                    reject.message,
                    rpc_status=reject.rpc_status,
                    violations=reject.violations,
                    extra=reject.extra,
                ),
                ensure_ascii=False,
            ).encode()
            if reject.client_error:
                lines = [str(v) for v in reject.violations] or [
                    f"{request.method} {request.path}: {reject.status} {reject.reason}: "
                    f"{reject.message}"
                ]
                with self._lock:
                    self.errors.extend(lines)
        if body is None and raw:
            body = raw.decode("utf-8", "replace")
        record = Recorded(
            request.method,
            request.path,
            kind,
            resource_id,
            action,
            body,
            status,
            reason,
            arrived,
            request.args.to_dict(),
            message,
        )
        with self._lock:
            self.requests.append(record)
            if status == 429:
                self.count_429 += 1
        response = Response(payload, status, content_type="application/json; charset=UTF-8")
        for name, value in headers.items():
            response.headers[name] = value
        return response

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, str | None, str]:
        if not path.startswith(API_PREFIX):
            raise _Reject(404, "notFound", f"Not Found: {path}")
        parts = path[len(API_PREFIX) :].split("/")
        kind = parts[0]
        if kind not in KINDS:
            raise _Reject(
                404, "notFound", f"Not Found: {path} (the fake serves {', '.join(KINDS)} only)"
            )
        routes: dict[tuple[int, str], str] = {
            (1, "POST"): "insert",
            (1, "GET"): "list",
            (2, "GET"): "get",
            (2, "PATCH"): "patch",
            (2, "PUT"): "update",
        }
        action = routes.get((len(parts), method))
        if len(parts) == 3 and parts[2] == "addMessage" and method == "POST":
            action = "addMessage"
        if action is None or (len(parts) > 1 and not parts[1]):
            raise _Reject(404, "notFound", f"Not Found: {method} {path}")
        return kind, (parts[1] if len(parts) > 1 else None), action

    def _authenticate(self, request: Request) -> None:
        value = request.headers.get("Authorization", "")
        scheme, _, credential = value.partition(" ")
        token = credential.strip() if scheme.lower() == "bearer" else ""
        token = token or request.args.get("access_token", "") or request.args.get("oauth_token", "")
        if not token:
            raise _Reject(
                401,
                "required",
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                rpc_status="UNAUTHENTICATED",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
                extra={"location": "Authorization", "locationType": "header"},
            )
        with self._lock:
            grant = self._tokens.get(token)
        if grant is None or grant.expires_at <= time.time():
            raise _Reject(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                rpc_status="UNAUTHENTICATED",
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    'error="invalid_token"'
                },
                extra={"location": "Authorization", "locationType": "header"},
            )
        if WALLET_SCOPE not in grant.scopes:
            raise _Reject(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    f'error="insufficient_scope", scope="{WALLET_SCOPE}"'
                },
            )

    def _take_quota(self) -> None:
        with self._lock:
            rate = self._quota_rps
            if rate is None:
                return
            now = self.now()
            if self._bucket is None:
                tokens = rate
            else:
                tokens = min(rate, self._bucket + (now - self._bucket_time) * rate)
            self._bucket_time = now
            if tokens >= 1 - 1e-9:  # float sums of refills fall just short of 1
                self._bucket = max(0.0, tokens - 1)
                return
            self._bucket = tokens
        raise _Reject(
            429,
            "rateLimitExceeded",
            f"Quota exceeded: more than {rate:g} requests per second for this issuer.",
            client_error=False,
        )

    def _check_query(self, kind: str, action: str, args: Mapping[str, list[str]]) -> None:
        document = discovery_document()
        method = document["resources"][kind.lower()]["methods"][_DOC_METHODS.get(action, action)]
        known = set(document["parameters"]) | {
            name
            for name, spec in method.get("parameters", {}).items()
            if spec.get("location") == "query"
        }
        for name, values in args.items():
            if name not in known:
                raise _Reject(
                    400,
                    "badRequest",
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                    f"parameter. Field '{name}' could not be found in request message.",
                )
            if len(values) > 1:
                raise _Reject(400, "badRequest", f"Query parameter {name!r} given more than once")
        if args.get("alt", ["json"])[0] != "json":
            raise _Reject(400, "badRequest", "The fake answers alt=json only")

    def _check_id(self, value: Any, path: str, out: list[Violation]) -> bool:
        """Append a violation for a malformed id; raise 403 for another issuer's id."""
        match = _ID_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            out.append(
                Violation(
                    path,
                    f"{value!r} is not <issuerId>.<suffix> with the suffix only letters, digits, "
                    "'.', '_' or '-'",
                    f"Invalid resource id {_json_text(value)} at '{path}': ids are "
                    "<issuer ID>.<identifier>, the identifier only alphanumeric characters, "
                    "'.', '_', or '-'.",
                )
            )
            return False
        if match.group(1) != self.issuer_id:
            raise _Reject(
                403,
                "permissionDenied",
                f"The caller does not have permission: {path} {value!r} belongs to issuer "
                f"{match.group(1)}, the service account is a user of issuer {self.issuer_id} only",
            )
        return True

    def _validate(
        self,
        kind: str,
        action: str,
        resource_id: str | None,
        body: Any,
        args: Mapping[str, str],
    ) -> None:
        """Everything that can be told from the request alone: 400 (or 403 for the issuer)."""
        out: list[Violation] = []
        if resource_id is not None:
            self._check_id(resource_id, "resourceId", out)
        if action == "list":
            if kind == "loyaltyClass":
                issuer = args.get("issuerId")
                if issuer is None:
                    out.append(_missing("issuerId"))
                elif issuer != self.issuer_id:
                    raise _Reject(
                        403,
                        "permissionDenied",
                        f"The caller does not have permission for issuer {issuer}",
                    )
            else:
                class_id = args.get("classId")
                if class_id is None:
                    out.append(_missing("classId"))
                else:
                    self._check_id(class_id, "classId", out)
            max_results = args.get("maxResults")
            if max_results is not None and not (
                max_results.isdigit() and 0 < int(max_results) < 2**31
            ):
                out.append(Violation("maxResults", f"{max_results!r} is not a positive int32", ""))
        elif action == "addMessage":
            out += self._validator.validate("AddMessageRequest", body, "addMessageRequest")
            if isinstance(body, dict) and not isinstance(body.get("message"), dict):
                out.append(_missing("addMessageRequest.message"))
        elif action in _BODY_ACTIONS:
            root = kind
            out += self._validator.validate(
                KINDS[kind], body, root, require_top_level=action != "patch"
            )
            if isinstance(body, dict):
                out += self._semantic_checks(kind, action, resource_id, body)
        if out:
            raise _Reject(
                400,
                "invalid" if any(v.google.startswith("Invalid") for v in out) else "required",
                "\n".join(v.google or str(v) for v in out[:20]),
                violations=out,
            )

    def _semantic_checks(
        self, kind: str, action: str, resource_id: str | None, body: dict[str, Any]
    ) -> list[Violation]:
        out: list[Violation] = []
        body_id = body.get("id")
        if (
            isinstance(body_id, str)
            and self._check_id(body_id, f"{kind}.id", out)
            and resource_id not in (None, body_id)
        ):
            out.append(
                Violation(
                    f"{kind}.id",
                    f"{body_id!r} differs from the id in the URL, {resource_id!r}",
                    f"Invalid value at '{kind}.id': {body_id} does not match the URL's "
                    f"{resource_id}.",
                )
            )
        if kind == "loyaltyObject":
            class_id = body.get("classId")
            if isinstance(class_id, str):
                self._check_id(class_id, "loyaltyObject.classId", out)
            if body.get("state") == "STATE_UNSPECIFIED":
                out.append(
                    Violation(
                        "loyaltyObject.state",
                        "STATE_UNSPECIFIED is no state: send ACTIVE, COMPLETED, EXPIRED or "
                        "INACTIVE",
                        "Invalid value at 'loyaltyObject.state': a state is required.",
                    )
                )
        else:
            review = body.get("reviewStatus")
            if isinstance(review, str) and review not in _SETTABLE_REVIEW:
                out.append(
                    Violation(
                        "loyaltyClass.reviewStatus",
                        f"{review!r} cannot be set by an issuer: send UNDER_REVIEW (or DRAFT)",
                        f"Invalid value at 'loyaltyClass.reviewStatus': {review} cannot be set; "
                        "only draft or underReview may be.",
                    )
                )
            callback = body.get("callbackOptions")
            url = callback.get("url") if isinstance(callback, dict) else None
            if url is not None and not (isinstance(url, str) and url.startswith("https://")):
                out.append(
                    Violation(
                        "loyaltyClass.callbackOptions.url",
                        f"the callback URL must be https: {url!r}",
                        "Invalid value at 'loyaltyClass.callbackOptions.url': the URL should "
                        "be hosted on HTTPS.",
                    )
                )
            logo = body.get("programLogo")
            if isinstance(logo, dict) and (action != "patch" or logo):
                source = logo.get("sourceUri")
                uri = source.get("uri") if isinstance(source, dict) else None
                problem = _public_https_problem(uri)
                if problem == "missing" or (
                    problem is not None
                    and not (self.allow_private_logo_hosts and "publicly" in problem)
                ):
                    out.append(
                        Violation(
                            "loyaltyClass.programLogo.sourceUri.uri",
                            f"the program logo must be a publicly fetchable https image: {problem}",
                            "Invalid value at 'loyaltyClass.programLogo.sourceUri.uri': the "
                            "logo must be served over https from a publicly reachable host.",
                        )
                    )
        return out

    def _take_canned(self, kind: str, action: str) -> None:
        with self._lock:
            for entry in self._canned:
                if (entry.action in (None, action)) and (entry.kind in (None, kind)):
                    break
            else:
                return
            if entry.remaining is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._canned.remove(entry)
        raise _Reject(
            entry.status,
            entry.reason,
            _DEFAULT_MESSAGES.get(entry.reason, f"Canned {entry.status} {entry.reason}"),
            client_error=False,
        )

    def _execute(
        self,
        kind: str,
        action: str,
        resource_id: str | None,
        body: Any,
        args: Mapping[str, str],
    ) -> bytes:
        """Everything that depends on stored state, under the lock; the JSON answer."""
        with self._lock:
            result = self._execute_locked(kind, action, resource_id, body, args)
            return json.dumps(result, ensure_ascii=False).encode()

    def _execute_locked(
        self,
        kind: str,
        action: str,
        resource_id: str | None,
        body: Any,
        args: Mapping[str, str],
    ) -> dict[str, Any]:
        store = self.classes if kind == "loyaltyClass" else self.objects
        noun = "class" if kind == "loyaltyClass" else "object"
        if action == "list":
            return self._list(kind, args)
        if action == "insert":
            resource_id = body["id"]
            if resource_id in store:
                raise _Reject(
                    409,
                    "alreadyExists",
                    f"Resource already exists: a loyalty {noun} with id {resource_id} exists.",
                    client_error=False,
                )
        assert resource_id is not None
        stored = store.get(resource_id)
        if action != "insert" and stored is None:
            raise _Reject(
                404,
                "resourceNotFound",
                f"Requested entity was not found: no loyalty {noun} with id {resource_id}.",
                client_error=False,
            )
        if action == "get":
            assert stored is not None
            return stored
        if action == "addMessage":
            assert stored is not None
            message = body["message"]
            if kind == "loyaltyObject" and message.get("messageType") == "TEXT_AND_NOTIFY":
                self._count_notification(resource_id)
            stored.setdefault("messages", []).append(message)
            return {"resource": stored}

        fields = {k: v for k, v in body.items() if v is not None and k != "notifyPreference"}
        if kind == "loyaltyObject":
            class_id = fields.get("classId")
            if class_id is not None:
                self._check_class_usable(class_id)
        else:
            review = fields.get("reviewStatus")
            if stored is not None and review in _DRAFT and stored.get("reviewStatus") not in _DRAFT:
                raise _Reject(
                    400,
                    "invalidResource",
                    f"Invalid review status: class {resource_id} is no longer a draft and "
                    "cannot go back to draft.",
                    rpc_status="FAILED_PRECONDITION",
                )
        if kind == "loyaltyObject" and body.get("notifyPreference") == "NOTIFY_ON_UPDATE":
            self._count_notification(resource_id)
        if action == "insert" or action == "update":
            store[resource_id] = fields
        else:  # patch: top-level fields replaced, the rest kept
            assert stored is not None
            stored.update(fields)
        return store[resource_id]

    def _check_class_usable(self, class_id: str) -> None:
        klass = self.classes.get(class_id)
        if klass is None:
            raise _Reject(
                404,
                "resourceNotFound",
                f"Requested entity was not found: the class {class_id} does not exist.",
                client_error=False,
            )
        if klass.get("reviewStatus") in _DRAFT:
            raise _Reject(
                400,
                "invalidResource",
                f"Class {class_id} is a draft: a draft class cannot be used to create objects.",
                rpc_status="FAILED_PRECONDITION",
                client_error=False,
            )

    def _count_notification(self, object_id: str) -> None:
        now = self.now()
        times = [t for t in self.notifications.get(object_id, ()) if now - t < NOTIFICATION_WINDOW]
        if len(times) >= NOTIFICATION_LIMIT:
            self.notifications[object_id] = times
            raise _Reject(
                403,
                "quotaExceeded",
                f"Quota exceeded: object {object_id} already received {NOTIFICATION_LIMIT} "
                "notifications in the last 24 hours.",
                client_error=False,
            )
        times.append(now)
        self.notifications[object_id] = times

    def _list(self, kind: str, args: Mapping[str, str]) -> dict[str, Any]:
        if kind == "loyaltyClass":
            resources = list(self.classes.values())
        else:
            class_id = args.get("classId")
            resources = [o for o in self.objects.values() if o.get("classId") == class_id]
        start = 0
        token = args.get("token")
        if token:
            if not token.isdigit() or int(token) > len(resources):
                raise _Reject(400, "invalid", f"Invalid page token {token!r}")
            start = int(token)
        size = int(args.get("maxResults") or 0) or len(resources) or 1
        page = resources[start : start + size]
        pagination: dict[str, Any] = {
            "kind": "walletobjects#pagination",
            "resultsPerPage": len(page),
        }
        if start + size < len(resources):
            pagination["nextPageToken"] = str(start + size)
        return {"resources": page, "pagination": pagination}


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}

    def no_constants(name: str) -> Any:
        raise ValueError(f"Unexpected token {name}")

    try:
        body = json.loads(raw, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Reject(400, "parseError", f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(body, dict):
        raise _Reject(
            400, "parseError", "Invalid JSON payload received. Root element must be a message."
        )
    return body


def _json_response(status: int, body: Mapping[str, Any]) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status,
        content_type="application/json; charset=UTF-8",
    )
