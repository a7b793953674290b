"""A small client for the Google Wallet REST API (``walletobjects/v1``), loyalty resources only.

Credentials are a service account (``google-auth``: it signs the token request and refreshes the
access token before it expires); the token endpoint is the one named in the service-account file,
so tests point it at loopback. Writes never use PUT, which would wipe every field we do not send:
insert, and on 409 (the resource exists) PATCH, which replaces only the fields it names. 429 and
5xx are retried a few times with exponential backoff and jitter; what still fails is raised as a
retryable :class:`GoogleWalletError`, so the caller keeps the update queued.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

__all__ = [
    "DEFAULT_ENDPOINT",
    "SCOPE",
    "GoogleWalletError",
    "Resource",
    "WalletApi",
]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://walletobjects.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
TIMEOUT = 10.0  # Google's advice for this API
Resource = Literal["loyaltyClass", "loyaltyObject"]


class GoogleWalletError(Exception):
    """A request Google refused or that never got an answer (``status`` 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Google Wallet API {status or 'unreachable'} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def retryable(self) -> bool:
        """Worth trying again later: rate limits, server errors, no answer."""
        return self.status in (0, 429) or self.status >= 500

    @property
    def quota_exceeded(self) -> bool:
        """Google's notification budget (3 per pass per 24 h) or a quota is used up."""
        return self.status == 403 and self.reason in ("quotaExceeded", "rateLimitExceeded")


class _OffGoogleCredentials(service_account.Credentials):
    """Service-account credentials for an API endpoint that is not Google's (an emulator, a test
    double): google-auth would otherwise ask Google's IAM API for the account's regional access
    boundary after each token refresh, a request that has no business leaving such a setup."""

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


class WalletApi:
    """Typed calls on ``loyaltyClass`` and ``loyaltyObject`` with one long-lived HTTP session."""

    def __init__(
        self,
        service_account_info: dict[str, Any],
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = TIMEOUT,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        """``before_request`` runs before every attempt, retries included: a rate limiter."""
        google_hosted = (urlsplit(endpoint).hostname or "").endswith(".googleapis.com")
        kind = service_account.Credentials if google_hosted else _OffGoogleCredentials
        credentials = kind.from_service_account_info(  # type: ignore[no-untyped-call]
            service_account_info, scopes=[SCOPE]
        )
        self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        # Proxy settings from the environment, read once: requests would scan the whole
        # environment again on every call (a measurable share of a sync's CPU).
        self._session.proxies = requests.utils.get_environ_proxies(endpoint)
        self._session.trust_env = False
        self._base = endpoint.rstrip("/") + "/walletobjects/v1"
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._before_request = before_request

    def close(self) -> None:
        self._session.close()  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ resources

    def get(self, resource: Resource, resource_id: str) -> dict[str, Any] | None:
        """The stored resource, or None if Google has no such id."""
        try:
            return self._call("GET", f"/{resource}/{quote(resource_id, safe='')}")
        except GoogleWalletError as exc:
            if exc.status == 404:
                return None
            raise

    def insert(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/{resource}", body)

    def patch(
        self, resource: Resource, resource_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the top-level fields named in ``changes``; everything else stays."""
        return self._call("PATCH", f"/{resource}/{quote(resource_id, safe='')}", changes)

    def insert_or_patch(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """Create ``body``; if it exists already (409), PATCH the fields ``body`` names."""
        try:
            return self.insert(resource, body)
        except GoogleWalletError as exc:
            if exc.status != 409:
                raise
        return self.patch(resource, str(body["id"]), body)

    def add_message(self, resource: Resource, resource_id: str, message: dict[str, Any]) -> None:
        """Add a message to the pass (with ``messageType: TEXT_AND_NOTIFY`` it notifies)."""
        # Not retried here: if the first try reached Google and only the answer was lost, a
        # retry would show the message twice. The caller's outbox retries after it checked.
        self._call(
            "POST",
            f"/{resource}/{quote(resource_id, safe='')}/addMessage",
            {"message": message},
            attempts=1,
        )

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        """One call, retried on 429/5xx/no answer with full-jitter exponential backoff."""
        tries = attempts or self._attempts
        for attempt in range(1, tries + 1):
            try:
                return self._once(method, path, body)
            except GoogleWalletError as exc:
                if not exc.retryable or attempt == tries:
                    raise
                ceiling = self._backoff * 2 ** (attempt - 1)
                delay = self._rng.uniform(ceiling / 2, ceiling)
                log.info("Google Wallet %s %s: %s; retrying in %.1f s", method, path, exc, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        if self._before_request is not None:
            self._before_request()
        try:
            response = self._session.request(  # type: ignore[no-untyped-call]
                method, self._base + path, json=body, timeout=self._timeout
            )
        except (requests.RequestException, GoogleAuthError) as exc:
            raise GoogleWalletError(0, type(exc).__name__, str(exc)) from exc
        if response.status_code < 300:
            data = response.json() if response.content else {}
            return data if isinstance(data, dict) else {}
        raise _error_of(response)


def _error_of(response: requests.Response) -> GoogleWalletError:
    """Google's error JSON: ``{"error": {"code", "message", "errors": [{"reason"}], "status"}}``."""
    reason, message = response.reason or "error", response.text[:500]
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        details = error.get("errors") or []
        if details and isinstance(details[0], dict) and details[0].get("reason"):
            reason = str(details[0]["reason"])
        elif error.get("status"):
            reason = str(error["status"])
    return GoogleWalletError(response.status_code, reason, message)
