"""The per-process wallet services: Apple (settings → APNs client) and Google (settings → REST
client under the shared rate limit), each one delivery run at a time.

The client (and its HTTP/2 connections) lives as long as the process, so scheduler runs every few
seconds reuse the same connections. After a certificate/token problem the service pauses and
logs one error, instead of failing (and logging) every few seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from passes.db import utcnow
from passes.push.apns import ApnsClient, BlockingApnsClient, TokenSigner, tls_context
from passes.push.apple_sender import (
    PAUSE_AFTER_FORBIDDEN,
    AppleDeliveryReport,
    deliver_apple_updates,
)
from passes.push.google_sender import LEASE as GOOGLE_LEASE
from passes.push.google_sender import PAUSE_AFTER_FORBIDDEN as GOOGLE_PAUSE
from passes.push.google_sender import GoogleDeliveryReport, GoogleSender
from passes.push.rate_limit import DatabaseRateLimiter
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.google.issuer import GoogleIssuer

log = logging.getLogger(__name__)


def apns_client_factory(
    config: Mapping[str, Any], issuer: ApplePassIssuer
) -> Callable[[], ApnsClient]:
    """A client factory for the configured authentication; ValueError names a bad setting."""
    topic = issuer.identity.pass_type_identifier
    auth = config["APNS_AUTH"]
    endpoint = config["APNS_ENDPOINT"]
    connections = int(config["APNS_CONNECTIONS"])
    if auth == "certificate":
        context = tls_context(
            ca_file=config["APNS_CA_FILE"],
            certificate=str(config["APPLE_CERTIFICATE"]),
            private_key=str(config["APPLE_PRIVATE_KEY"]),
            key_password=(config.get("APPLE_PRIVATE_KEY_PASSWORD") or "").encode() or None,
        )
        signer = None
    elif auth == "token":
        if not config["APNS_KEY_FILE"] or not config["APNS_KEY_ID"]:
            raise ValueError("APNS_AUTH=token needs APNS_KEY_FILE and APNS_KEY_ID")
        context = tls_context(ca_file=config["APNS_CA_FILE"])
        signer = TokenSigner(
            Path(config["APNS_KEY_FILE"]),
            config["APNS_KEY_ID"],
            config["APNS_TEAM_ID"] or issuer.identity.team_identifier,
        )
    else:
        raise ValueError(f"APNS_AUTH must be 'certificate' or 'token', not {auth!r}")

    def factory() -> ApnsClient:
        return ApnsClient(
            topic, context, endpoint=endpoint, token_signer=signer, connections=connections
        )

    return factory


class ApplePushService:
    """Delivers the Apple side of the wallet outbox for one process."""

    def __init__(
        self,
        maker: sessionmaker[Session],
        config: Mapping[str, Any],
        issuer: ApplePassIssuer,
    ) -> None:
        self.maker = maker
        self.batch_size = int(config["PUSH_BATCH_SIZE"])
        self._factory = apns_client_factory(config, issuer)
        self._client: BlockingApnsClient | None = None
        self._lock = threading.Lock()
        self.paused_until: datetime | None = None

    def run_once(self, now: datetime | None = None) -> AppleDeliveryReport | None:
        """Deliver batches until the outbox has nothing due (or sending is paused)."""
        now = now or utcnow()
        if not self._lock.acquire(blocking=False):
            return None  # a previous run is still going
        try:
            if self.paused_until is not None and now < self.paused_until:
                return None
            if self._client is None:
                self._client = BlockingApnsClient(self._factory)
            total = AppleDeliveryReport()
            while True:
                report = deliver_apple_updates(
                    self.maker, self._client, limit=self.batch_size, now=now
                )
                total.claimed += report.claimed
                total.pushed += report.pushed
                total.delivered += report.delivered
                total.retrying += report.retrying
                total.removed_devices += report.removed_devices
                if report.stopped is not None:
                    total.stopped = report.stopped
                    self.paused_until = now + PAUSE_AFTER_FORBIDDEN
                    log.error(
                        "APNs refused our pushes (%s): check APNS_AUTH and the pass certificate "
                        "or key; updates stay queued, next attempt after %s",
                        report.stopped,
                        self.paused_until.isoformat(),
                    )
                    break
                if report.claimed < self.batch_size:
                    break
            if total.claimed:
                log.info(
                    "apple push: %d cards, %d pushes, %d delivered, %d retrying, %d devices gone",
                    total.claimed,
                    total.pushed,
                    total.delivered,
                    total.retrying,
                    total.removed_devices,
                )
            return total
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class GoogleSyncService:
    """Delivers the Google side of the wallet outbox for one process, under the shared rate."""

    def __init__(
        self,
        maker: sessionmaker[Session],
        config: Mapping[str, Any],
        google: GoogleIssuer,
    ) -> None:
        self.maker = maker
        rate = float(config["GOOGLE_RATE_LIMIT"])
        # A batch must finish well inside its lease, at the shared rate, even alone.
        self.batch_size = max(
            1, min(int(config["PUSH_BATCH_SIZE"]), int(rate * GOOGLE_LEASE.total_seconds() / 3))
        )
        limiter = DatabaseRateLimiter(maker, "google-wallet", rate=rate)
        self.sender = GoogleSender(
            maker, google, limiter, threads=int(config["GOOGLE_SYNC_THREADS"])
        )
        self._lock = threading.Lock()
        self.paused_until: datetime | None = None

    def run_once(self, now: datetime | None = None) -> GoogleDeliveryReport | None:
        """Deliver batches until nothing is due (or Google refused our credentials)."""
        now = now or utcnow()
        if not self._lock.acquire(blocking=False):
            return None  # a previous run is still going
        try:
            if self.paused_until is not None and now < self.paused_until:
                return None
            total = GoogleDeliveryReport()
            while True:
                report = self.sender.deliver(limit=self.batch_size, now=now)
                now = max(now, utcnow())  # the next batch's leases run from when it starts
                total.add(report)
                if report.stopped is not None:
                    self.paused_until = now + GOOGLE_PAUSE
                    log.error(
                        "Google Wallet refused our requests (%s): check that the service account "
                        "is a user of the issuer in the Pay & Wallet Console; updates stay "
                        "queued, next attempt after %s",
                        report.stopped,
                        self.paused_until.isoformat(),
                    )
                    break
                if report.claimed < self.batch_size:
                    break
            if total.claimed:
                log.info(
                    "google sync: %d cards, %d patches, %d messages, %d notified, %d silenced, "
                    "%d delivered, %d retrying, %d failed",
                    total.claimed,
                    total.patched,
                    total.messages,
                    total.notified,
                    total.silenced,
                    total.delivered,
                    total.retrying,
                    total.failed,
                )
                for error in total.errors[:5]:
                    log.warning("google sync: %s", error)
            return total
        finally:
            self._lock.release()

    def close(self) -> None:
        self.sender.close()
