"""The fake Google Wallet checks what Google checks, so client tests against it mean something.

Exercised with the real google-auth + requests stack (service-account credentials and an
AuthorizedSession), as the production client uses it, and with plain requests for what a
well-behaved client never sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import google.auth.jwt
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_google_wallet import (
    WALLET_SCOPE,
    FakeGoogleWallet,
    discovery_document,
    schema_validator,
)
from google.auth import crypt
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

TIMEOUT = 10


class Clock:
    """A settable clock for the fake's notification window and quota bucket."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGoogleWallet]:
    with FakeGoogleWallet() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(server: FakeGoogleWallet, clock: Clock) -> Iterator[FakeGoogleWallet]:
    server.reset()
    server.now = clock
    server.quota_rps = None
    yield server
    assert server.errors == []  # tests that provoke errors check and clear them


@pytest.fixture(scope="module")
def credentials(server: FakeGoogleWallet) -> service_account.Credentials:
    credentials: service_account.Credentials = (
        service_account.Credentials.from_service_account_info(
            server.service_account_info(), scopes=[WALLET_SCOPE]
        )
    )
    return credentials


@pytest.fixture
def session(credentials: service_account.Credentials) -> Iterator[AuthorizedSession]:
    with AuthorizedSession(credentials) as authorized:
        yield authorized


@pytest.fixture
def api(fake: FakeGoogleWallet, session: AuthorizedSession) -> Callable[..., requests.Response]:
    """api("POST", "loyaltyClass", json=...) -> the response, through the authorized session."""

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{fake.api_url}/{path}"
        response: requests.Response = session.request(method, url, timeout=TIMEOUT, **kwargs)
        return response

    return call


Api = Callable[..., requests.Response]


def error_of(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    assert {"message", "errors", "status"} <= set(error)
    return error


def with_class(fake: FakeGoogleWallet, api: Api, suffix: str = "gold", **fields: Any) -> str:
    response = api("POST", "loyaltyClass", json=fake.minimal_class(suffix, **fields))
    assert response.status_code == 200, response.text
    return f"{fake.issuer_id}.{suffix}"


def with_object(fake: FakeGoogleWallet, api: Api, suffix: str = "card-1", **fields: Any) -> str:
    with_class(fake, api)
    response = api("POST", "loyaltyObject", json=fake.minimal_object(suffix, "gold", **fields))
    assert response.status_code == 200, response.text
    return f"{fake.issuer_id}.{suffix}"


# -- the discovery document --------------------------------------------------------------------


def test_required_fields_come_from_the_discovery_document() -> None:
    required = schema_validator().required
    assert set(required["LoyaltyClass"]) == {
        "id",
        "issuerName",
        "programName",
        "programLogo",
        "reviewStatus",
    }
    assert set(required["LoyaltyObject"]) == {"id", "classId", "state"}
    document = discovery_document()
    assert document["name"] == "walletobjects"
    assert "TEXT_AND_NOTIFY" in document["schemas"]["Message"]["properties"]["messageType"]["enum"]


# -- OAuth --------------------------------------------------------------------------------------


def test_token_flow_with_google_auth(fake: FakeGoogleWallet, tmp_path: Path) -> None:
    path = fake.write_service_account(tmp_path / "sa.json")
    assert path.stat().st_mode & 0o777 == 0o600
    credentials = service_account.Credentials.from_service_account_file(
        str(path), scopes=[WALLET_SCOPE]
    )
    with AuthorizedSession(credentials) as session:
        response = session.get(
            f"{fake.api_url}/loyaltyClass/{fake.issuer_id}.missing", timeout=TIMEOUT
        )
    assert response.status_code == 404  # authenticated, and the class does not exist
    assert error_of(response)["errors"][0]["reason"] == "resourceNotFound"
    assert credentials.token is not None and credentials.token.startswith("ya29.")
    [grant] = fake.token_requests
    assert grant.status == 200 and grant.body["grant_type"].endswith(":jwt-bearer")
    assert fake.requests[-1].action == "get" and fake.requests[-1].kind == "loyaltyClass"


def _assertion(fake: FakeGoogleWallet, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": fake.client_email,
        "aud": fake.token_uri,
        "scope": WALLET_SCOPE,
        "iat": now,
        "exp": now + 3600,
    }
    key: Any = serialization.load_pem_private_key(fake.private_key_pem, None)
    for name, value in changes.items():
        if name == "key":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": fake.private_key_id})


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({}, None),
        ({"key": "another"}, "invalid_grant"),
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant"),
        ({"aud": "https://example.com/token"}, "invalid_grant"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant"),
        ({"scope": None}, "invalid_scope"),
    ],
    ids=["valid", "forged", "iss", "aud", "expired", "too-long", "no-scope"],
)
def test_token_endpoint_checks_the_assertion(
    fake: FakeGoogleWallet, changes: dict[str, Any], error: str | None
) -> None:
    response = requests.post(
        fake.token_uri,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _assertion(fake, **changes),
        },
        timeout=TIMEOUT,
    )
    if error is None:
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer"
        assert response.json()["expires_in"] == 3600
        return
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert fake.errors == [f"token: {error}: {response.json()['error_description']}"]
    fake.errors.clear()


def test_google_auth_with_a_forged_key_cannot_get_a_token(fake: FakeGoogleWallet) -> None:
    info = fake.service_account_info()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[WALLET_SCOPE])
    with AuthorizedSession(credentials) as session, pytest.raises(RefreshError, match="Signature"):
        session.get(f"{fake.api_url}/loyaltyClass/{fake.issuer_id}.x", timeout=TIMEOUT)
    assert fake.errors == ["token: invalid_grant: Invalid JWT Signature."]
    fake.errors.clear()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer ya29.forged"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
    ids=["missing", "forged", "not-bearer"],
)
def test_api_needs_a_token_the_fake_issued(fake: FakeGoogleWallet, headers: dict[str, str]) -> None:
    response = requests.post(
        f"{fake.api_url}/loyaltyClass",
        json=fake.minimal_class("gold"),
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert error_of(response)["status"] == "UNAUTHENTICATED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert fake.classes == {}
    assert len(fake.errors) == 1 and "401" in fake.errors[0]
    fake.errors.clear()


def test_a_token_without_the_wallet_scope_is_refused(fake: FakeGoogleWallet) -> None:
    credentials = service_account.Credentials.from_service_account_info(
        fake.service_account_info(), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with AuthorizedSession(credentials) as session:
        response = session.get(
            f"{fake.api_url}/loyaltyClass/{fake.issuer_id}.gold", timeout=TIMEOUT
        )
    assert response.status_code == 403
    assert error_of(response)["errors"][0]["reason"] == "insufficientPermissions"
    fake.errors.clear()


# -- resources ----------------------------------------------------------------------------------


def test_minimal_class_and_object_are_stored(fake: FakeGoogleWallet, api: Api) -> None:
    class_id = with_class(fake, api)
    response = api("POST", "loyaltyObject", json=fake.minimal_object("card-1", "gold"))
    assert response.status_code == 200
    object_id = f"{fake.issuer_id}.card-1"
    assert response.json() == fake.objects[object_id] == fake.minimal_object("card-1", "gold")
    assert fake.classes[class_id]["reviewStatus"] == "UNDER_REVIEW"
    assert api("GET", f"loyaltyObject/{object_id}").json()["classId"] == class_id
    listed = api("GET", "loyaltyObject", params={"classId": class_id}).json()
    assert [o["id"] for o in listed["resources"]] == [object_id]
    assert listed["pagination"]["resultsPerPage"] == 1
    classes = api("GET", "loyaltyClass", params={"issuerId": fake.issuer_id}).json()
    assert [c["id"] for c in classes["resources"]] == [class_id]
    assert [(r.kind, r.action, r.status) for r in fake.requests] == [
        ("loyaltyClass", "insert", 200),
        ("loyaltyObject", "insert", 200),
        ("loyaltyObject", "get", 200),
        ("loyaltyObject", "list", 200),
        ("loyaltyClass", "list", 200),
    ]


def test_what_google_also_accepts(fake: FakeGoogleWallet, api: Api) -> None:
    with_class(fake, api, hexBackgroundColor="#fc0", rewardsTier="Gold")
    body = fake.minimal_object(
        "card-1",
        "gold",
        state="active",  # the legacy camelCase enum values are listed too
        barcode={"type": "qrCode", "value": "LP-1", "alternateText": None},
        loyaltyPoints={"label": "Stamps", "balance": {"int": 3}},
        secondaryLoyaltyPoints={
            "label": "Credit",
            "balance": {"money": {"micros": 1500000, "currencyCode": "EUR"}},  # int64 number
        },
        validTimeInterval={"start": {"date": "2025-01-01T00:00:00Z"}},
        textModulesData=[{"header": "Shop", "body": "Bakery", "id": "shop"}],
    )
    assert api("POST", "loyaltyObject", json=body).status_code == 200
    patch = {"secondaryLoyaltyPoints": {"balance": {"money": {"micros": "2500000"}}}}
    assert api("PATCH", f"loyaltyObject/{body['id']}", json=patch).status_code == 200


@pytest.mark.parametrize(
    ("kind", "changes", "path"),
    [
        ("loyaltyObject", {"foo": 1}, "loyaltyObject.foo"),
        (
            "loyaltyObject",
            {"barcode": {"type": "QR_CODE", "text": "x"}},
            "loyaltyObject.barcode.text",
        ),
        ("loyaltyObject", {"accountId": 42}, "loyaltyObject.accountId"),
        ("loyaltyObject", {"barcode": "LP-1"}, "loyaltyObject.barcode"),
        (
            "loyaltyObject",
            {"loyaltyPoints": {"balance": {"int": "5"}}},  # int32 must be a number
            "loyaltyObject.loyaltyPoints.balance.int",
        ),
        (
            "loyaltyObject",
            {"loyaltyPoints": {"balance": {"int": 2**31}}},
            "loyaltyObject.loyaltyPoints.balance.int",
        ),
        (
            "loyaltyObject",
            {"loyaltyPoints": {"balance": {"int": 1, "string": "1"}}},
            "loyaltyObject.loyaltyPoints.balance",
        ),
        ("loyaltyObject", {"barcode": {"type": "QR"}}, "loyaltyObject.barcode.type"),
        ("loyaltyObject", {"state": "DELETED"}, "loyaltyObject.state"),
        ("loyaltyObject", {"state": None}, "loyaltyObject.state"),
        ("loyaltyObject", {"textModulesData": {"header": "x"}}, "loyaltyObject.textModulesData"),
        (
            "loyaltyObject",
            {"textModulesData": [{"header": "x"}, {"header": ["y"]}]},
            "loyaltyObject.textModulesData[1].header",
        ),
        (
            "loyaltyObject",
            {"validTimeInterval": {"start": {"date": "01/02/2025"}}},
            "loyaltyObject.validTimeInterval.start.date",
        ),
        ("loyaltyClass", {"programLogo": None}, "loyaltyClass.programLogo"),
        ("loyaltyClass", {"issuerName": ""}, "loyaltyClass.issuerName"),
        (
            "loyaltyClass",
            {"programLogo": {"sourceUri": {"uri": "http://loyalpass.example/logo.png"}}},
            "loyaltyClass.programLogo.sourceUri.uri",
        ),
        (
            "loyaltyClass",
            {"programLogo": {"sourceUri": {"uri": "https://127.0.0.1:5000/logo.png"}}},
            "loyaltyClass.programLogo.sourceUri.uri",
        ),
        ("loyaltyClass", {"reviewStatus": "APPROVED"}, "loyaltyClass.reviewStatus"),
        ("loyaltyClass", {"hexBackgroundColor": "brown"}, "loyaltyClass.hexBackgroundColor"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_path(
    fake: FakeGoogleWallet, api: Api, kind: str, changes: dict[str, Any], path: str
) -> None:
    if kind == "loyaltyObject":
        with_class(fake, api)
        body = fake.minimal_object("card-1", "gold")
    else:
        body = fake.minimal_class("silver")
    body.update(changes)
    response = api("POST", kind, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    parent, name = path.rsplit(".", 1)
    assert f"'{path}'" in error["message"] or f"\"{name}\" at '{parent}'" in error["message"]
    violations = error["details"][0]["fieldViolations"]
    assert [v["field"] for v in violations] == [path]
    assert [e.split(":")[0] for e in fake.errors] == [path]
    assert body["id"] not in fake.objects and body["id"] not in fake.classes
    fake.errors.clear()


def test_an_unknown_enum_value_lists_the_allowed_ones(fake: FakeGoogleWallet, api: Api) -> None:
    with_class(fake, api)
    body = fake.minimal_object("card-1", "gold", barcode={"type": "QR"})
    assert api("POST", "loyaltyObject", json=body).status_code == 400
    [error] = fake.errors
    assert error.startswith("loyaltyObject.barcode.type: 'QR' is not one of [")
    assert "'QR_CODE'" in error and "'qrCode'" in error
    fake.errors.clear()


def test_patch_requires_nothing_but_checks_what_it_sends(fake: FakeGoogleWallet, api: Api) -> None:
    object_id = with_object(fake, api)
    assert api("PATCH", f"loyaltyObject/{object_id}", json={"accountName": "Ada"}).ok
    response = api("PATCH", f"loyaltyObject/{object_id}", json={"accountName": 1, "x": 2})
    assert response.status_code == 400
    assert sorted(e.split(":")[0] for e in fake.errors) == [
        "loyaltyObject.accountName",
        "loyaltyObject.x",
    ]
    fake.errors.clear()
    response = api("PUT", f"loyaltyObject/{object_id}", json={"accountName": "Ada"})
    assert response.status_code == 400  # update replaces: the required fields are required
    assert {e.split(":")[0] for e in fake.errors} == {
        "loyaltyObject.id",
        "loyaltyObject.classId",
        "loyaltyObject.state",
    }
    fake.errors.clear()


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("card 1", 400),
        ("card#1", 400),
        ("kärtchen", 400),
        ("card_1.v-2", 200),
    ],
)
def test_id_characters(fake: FakeGoogleWallet, api: Api, suffix: str, status: int) -> None:
    with_class(fake, api)
    response = api("POST", "loyaltyObject", json=fake.minimal_object(suffix, "gold"))
    assert response.status_code == status
    if status == 400:
        assert "'loyaltyObject.id'" in error_of(response)["message"]
        assert fake.errors[0].startswith("loyaltyObject.id: ")
        fake.errors.clear()


def test_ids_must_be_the_issuers(fake: FakeGoogleWallet, api: Api) -> None:
    response = api("POST", "loyaltyClass", json={**fake.minimal_class("gold"), "id": "gold"})
    assert response.status_code == 400
    other = {**fake.minimal_class("gold"), "id": "1234567890.gold"}  # e.g. the client id
    response = api("POST", "loyaltyClass", json=other)
    assert response.status_code == 403
    assert error_of(response)["errors"][0]["reason"] == "permissionDenied"
    assert response.status_code == 403
    assert len(fake.errors) == 2
    fake.errors.clear()


def test_duplicate_insert_is_409_and_missing_is_404(fake: FakeGoogleWallet, api: Api) -> None:
    class_id = with_class(fake, api)
    response = api("POST", "loyaltyClass", json=fake.minimal_class("gold", programName="New"))
    assert response.status_code == 409
    assert error_of(response)["errors"][0]["reason"] == "alreadyExists"
    assert fake.classes[class_id]["programName"] == "Test Bakery Rewards"
    missing = f"{fake.issuer_id}.nope"
    assert api("GET", f"loyaltyObject/{missing}").status_code == 404
    assert api("PATCH", f"loyaltyObject/{missing}", json={"state": "EXPIRED"}).status_code == 404
    response = api("POST", "loyaltyObject", json=fake.minimal_object("card-1", "nope"))
    assert response.status_code == 404  # the class must exist
    assert fake.errors == []  # these are answers about state, not malformed requests


def test_draft_classes_cannot_carry_objects(fake: FakeGoogleWallet, api: Api) -> None:
    class_id = with_class(fake, api, reviewStatus="DRAFT")
    response = api("POST", "loyaltyObject", json=fake.minimal_object("card-1", "gold"))
    assert response.status_code == 400
    assert error_of(response)["status"] == "FAILED_PRECONDITION"
    assert api("PATCH", f"loyaltyClass/{class_id}", json={"reviewStatus": "underReview"}).ok
    assert api("POST", "loyaltyObject", json=fake.minimal_object("card-1", "gold")).ok
    response = api("PATCH", f"loyaltyClass/{class_id}", json={"reviewStatus": "DRAFT"})
    assert response.status_code == 400  # never back to draft
    fake.errors.clear()


def test_patch_merges_top_level_fields_and_put_replaces(fake: FakeGoogleWallet, api: Api) -> None:
    object_id = with_object(
        fake,
        api,
        accountName="Ada",
        loyaltyPoints={"label": "Stamps", "balance": {"int": 3}},
    )
    response = api("PATCH", f"loyaltyObject/{object_id}", json={"loyaltyPoints": {"label": "S"}})
    assert response.status_code == 200
    assert fake.objects[object_id]["accountName"] == "Ada"  # untouched
    assert fake.objects[object_id]["loyaltyPoints"] == {"label": "S"}  # replaced whole
    assert response.json() == fake.objects[object_id]
    body = fake.minimal_object("card-1", "gold", state="EXPIRED")
    assert api("PUT", f"loyaltyObject/{object_id}", json=body).ok
    assert fake.objects[object_id] == body


def test_the_fourth_notification_in_24_hours_is_refused(
    fake: FakeGoogleWallet, api: Api, clock: Clock
) -> None:
    object_id = with_object(fake, api)
    notify = {"message": {"header": "Hi", "body": "A stamp", "messageType": "TEXT_AND_NOTIFY"}}
    for _ in range(2):
        assert api("POST", f"loyaltyObject/{object_id}/addMessage", json=notify).ok
        clock.t += 3600
    patch = {"loyaltyPoints": {"balance": {"int": 3}}, "notifyPreference": "NOTIFY_ON_UPDATE"}
    response = api("PATCH", f"loyaltyObject/{object_id}", json=patch)
    assert response.ok
    assert "notifyPreference" not in fake.objects[object_id]  # ephemeral, as documented

    response = api("POST", f"loyaltyObject/{object_id}/addMessage", json=notify)
    assert response.status_code == 403
    assert error_of(response)["errors"][0]["reason"] == "quotaExceeded"
    assert api("PATCH", f"loyaltyObject/{object_id}", json=patch).status_code == 403
    assert len(fake.objects[object_id]["messages"]) == 2
    # Silent changes still pass.
    quiet = {"message": {"header": "Hi", "body": "Quiet", "messageType": "TEXT"}}
    assert api("POST", f"loyaltyObject/{object_id}/addMessage", json=quiet).ok
    assert api("PATCH", f"loyaltyObject/{object_id}", json={"accountName": "Ada"}).ok

    clock.t += 22 * 3600 + 1  # 24 h after the first notification
    assert api("POST", f"loyaltyObject/{object_id}/addMessage", json=notify).ok
    assert api("PATCH", f"loyaltyObject/{object_id}", json=patch).status_code == 403
    clock.t += 3600  # the second has left the window, the third not
    assert api("PATCH", f"loyaltyObject/{object_id}", json=patch).ok
    assert len(fake.notifications_for(object_id)) == 3


@pytest.mark.parametrize(
    ("status", "reason", "rpc_status"),
    [
        (429, None, "RESOURCE_EXHAUSTED"),
        (500, None, "INTERNAL"),
        (403, "quotaExceeded", "PERMISSION_DENIED"),
        (403, None, "PERMISSION_DENIED"),
        (409, None, "ALREADY_EXISTS"),
    ],
)
def test_canned_answers(
    fake: FakeGoogleWallet, api: Api, status: int, reason: str | None, rpc_status: str
) -> None:
    fake.answer(status, reason=reason, times=2, action="insert")
    for _ in range(2):
        response = api("POST", "loyaltyClass", json=fake.minimal_class("gold"))
        assert response.status_code == status
        error = error_of(response)
        assert error["status"] == rpc_status
        expected = (
            reason
            or {
                429: "rateLimitExceeded",
                500: "backendError",
                403: "permissionDenied",
                409: "alreadyExists",
            }[status]
        )
        assert error["errors"][0]["reason"] == expected
        assert api("GET", f"loyaltyClass/{fake.issuer_id}.gold").status_code == 404  # not insert
    assert fake.classes == {}
    assert api("POST", "loyaltyClass", json=fake.minimal_class("gold")).ok  # used up
    assert fake.count_429 == (2 if status == 429 else 0)


def test_canned_answers_come_after_validation(fake: FakeGoogleWallet, api: Api) -> None:
    fake.answer(500)
    response = api("POST", "loyaltyClass", json={**fake.minimal_class("gold"), "bad": 1})
    assert response.status_code == 400
    fake.errors.clear()
    assert api("POST", "loyaltyClass", json=fake.minimal_class("gold")).status_code == 500


def test_quota_rps_is_a_token_bucket(fake: FakeGoogleWallet, api: Api, clock: Clock) -> None:
    fake.quota_rps = 4
    url = f"loyaltyClass/{fake.issuer_id}.gold"
    statuses = [api("GET", url).status_code for _ in range(5)]
    assert statuses == [404] * 4 + [429]  # the bucket starts full: a burst of 4
    response = api("GET", url)
    assert error_of(response)["errors"][0]["reason"] == "rateLimitExceeded"
    clock.t += 0.25  # one request's worth refilled
    assert [api("GET", url).status_code for _ in range(2)] == [404, 429]
    clock.t += 10  # refilled to the capacity, not beyond
    assert [api("GET", url).status_code for _ in range(5)] == [404] * 4 + [429]
    assert fake.count_429 == 4
    assert fake.max_rate(1.0, status=404) == 5  # 4 at the start, 1 after 0.25 s
    assert fake.max_rate(1.0, status=None) == 8
    assert fake.achieved_rate(status=404) == pytest.approx(8 / 10.25)


def test_concurrent_clients(
    fake: FakeGoogleWallet, api: Api, credentials: service_account.Credentials
) -> None:
    with_class(fake, api)
    failures: list[str] = []

    def worker(n: int) -> None:
        with AuthorizedSession(credentials) as own:
            for i in range(20):
                body = fake.minimal_object(f"w{n}-{i}", "gold")
                response = own.post(f"{fake.api_url}/loyaltyObject", json=body, timeout=TIMEOUT)
                if response.status_code != 200:
                    failures.append(response.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(fake.objects) == 160
    assert len(fake.recorded(action="insert", kind="loyaltyObject", status=200)) == 160


def test_unknown_query_parameters_and_routes(fake: FakeGoogleWallet, api: Api) -> None:
    class_id = with_class(fake, api)
    assert api("GET", f"loyaltyClass/{class_id}", params={"alt": "json"}).ok
    assert api("GET", f"loyaltyClass/{class_id}", params={"bogus": "1"}).status_code == 400
    assert api("GET", f"offerClass/{class_id}").status_code == 404
    assert api("DELETE", f"loyaltyClass/{class_id}").status_code == 404  # there is no delete
    assert len(fake.errors) == 3
    fake.errors.clear()


def test_list_pages(fake: FakeGoogleWallet, api: Api) -> None:
    for n in range(3):
        with_class(fake, api, f"c{n}")
    first = api("GET", "loyaltyClass", params={"issuerId": fake.issuer_id, "maxResults": 2})
    page = first.json()
    assert len(page["resources"]) == 2
    token = page["pagination"]["nextPageToken"]
    second = api(
        "GET", "loyaltyClass", params={"issuerId": fake.issuer_id, "maxResults": 2, "token": token}
    ).json()
    assert [c["id"] for c in second["resources"]] == [f"{fake.issuer_id}.c2"]
    assert "nextPageToken" not in second["pagination"]


def test_save_to_wallet_jwt_is_checked_with_the_public_key(
    fake: FakeGoogleWallet, api: Api
) -> None:
    object_id = with_object(fake, api)
    info = fake.service_account_info()
    signer = crypt.RSASigner.from_service_account_info(info)
    claims = {
        "iss": info["client_email"],
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time()),
        "origins": [],
        "payload": {"loyaltyObjects": [{"id": object_id, "classId": f"{fake.issuer_id}.gold"}]},
    }
    token = google.auth.jwt.encode(signer, claims).decode()
    assert jwt.decode(token, fake.public_key_pem, algorithms=["RS256"], audience="google")
    assert fake.decode_save_jwt(token)["payload"]["loyaltyObjects"][0]["id"] == object_id
    claims["payload"] = {"loyaltyObjects": [{"id": f"{fake.issuer_id}.never"}]}
    with pytest.raises(ValueError, match="never inserted"):
        fake.decode_save_jwt(google.auth.jwt.encode(signer, claims).decode())
    claims["aud"] = "someone"
    with pytest.raises(ValueError, match=r"(?i)audience"):
        fake.decode_save_jwt(google.auth.jwt.encode(signer, claims).decode())
