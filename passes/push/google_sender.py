"""Deliver pending Google Wallet updates from the outbox: per changed card, one PATCH of the fields
that changed (silent), plus ``addMessage`` for a new offer and a notifying PATCH for a tier change
while the pass's notification budget lasts (Google allows 3 per pass in 24 hours; we count them and
send the rest silently rather than have Google refuse them).

Rows are leased like the Apple sender's (``google_not_before``, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) but on their own columns, so a Google outage never holds up Apple pushes, or the
reverse. Every request takes a token from the shared :class:`DatabaseRateLimiter` first, so all
worker processes together stay within the issuer's rate. A row is cleared only after Google
accepted the change, and only if no newer change arrived meanwhile.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, func, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker

from passes.db import utcnow
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.loyalty.view import branding_of, card_view
from passes.push import outbox
from passes.push.apple_sender import backoff
from passes.push.google_objects import UNCONFIRMED, put_resource, remember, sent_body
from passes.push.models import GoogleClass, GoogleNotification, GoogleObject
from passes.push.rate_limit import DatabaseRateLimiter
from passes.wallet.google.client import GoogleWalletError, WalletApi
from passes.wallet.google.issuer import GoogleIssuer
from passes.wallet.google.objects import object_state_changes
from passes.wallet.view import CardView

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
NOTIFICATION_BUDGET = 3
NOTIFICATION_WINDOW = timedelta(hours=24)
PAUSE_AFTER_FORBIDDEN = timedelta(minutes=5)


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"  # 429, 5xx, no answer: back off, keep pending
    FAILED = "failed"  # Google refused this body: keep pending, long backoff, log
    FORBIDDEN = "forbidden"  # the service account may not write: pause everything


@dataclass
class GoogleDeliveryReport:
    claimed: int = 0
    delivered: int = 0  # outbox rows cleared
    patched: int = 0
    messages: int = 0  # addMessage calls
    notified: int = 0  # notifying calls (messages + notifying patches)
    silenced: int = 0  # notifications sent silently: the pass's budget was used up
    retrying: int = 0
    failed: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)
    # Card id -> the object body Google accepted (written to google_objects on acknowledgement).
    bodies: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    def add(self, other: GoogleDeliveryReport) -> None:
        for name in (
            "claimed",
            "delivered",
            "patched",
            "messages",
            "notified",
            "silenced",
            "retrying",
            "failed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped = self.stopped or other.stopped
        self.errors.extend(other.errors)
        self.bodies.update(other.bodies)


def forget_cards_without_objects(session: Session) -> None:
    """Pending Google updates of cards nobody saved to Google Wallet, or whose member deleted
    them there (Google said so): nothing to keep current. Asking for the save link again
    brings the object up to date first."""
    session.execute(
        update(WalletUpdate)
        .where(
            WalletUpdate.google_pending,
            ~exists().where(
                GoogleObject.card_id == WalletUpdate.card_id, GoogleObject.in_wallet.is_not(False)
            ),
        )
        .values(google_pending=False, google_not_before=None, google_attempts=0)
        .execution_options(synchronize_session=False)
    )


def claim(session: Session, *, now: datetime, limit: int) -> list[tuple[int, int, int]]:
    """Lease up to ``limit`` due Google rows: (card id, revision, attempts). Commits."""
    forget_cards_without_objects(session)
    return outbox.claim(session, "google", now=now, limit=limit, lease=LEASE)


# A claimed card with member and program (what its view needs) and what Google holds.
_CARD_AND_SENT = (
    select(Card, GoogleObject.sent_body)
    .join(GoogleObject, GoogleObject.card_id == Card.id)
    .where(Card.id == bindparam("card_id"))
    .options(
        joinedload(Card.member, innerjoin=True),
        joinedload(Card.program, innerjoin=True).selectinload(Program.stores),
    )
)


_OBJECTS = cast(Table, GoogleObject.__table__)
_SET_SENT_BODY = (
    update(_OBJECTS)
    .where(_OBJECTS.c.card_id == bindparam("b_card_id"))
    .values(sent_body=bindparam("b_sent_body"), updated_at=bindparam("b_updated_at"))
)
_SETTLE = outbox.settled("google")


class GoogleSender:
    """Syncs claimed cards to Google with a few threads (the API answers in tens of ms, and the
    shared rate limiter, not our CPU, sets the pace)."""

    def __init__(
        self,
        maker: sessionmaker[Session],
        google: GoogleIssuer,
        limiter: DatabaseRateLimiter | None,
        *,
        threads: int = 4,
        view_of: Callable[[Card], CardView] = card_view,
        rng: random.Random | None = None,
    ) -> None:
        self.maker = maker
        self.google = google
        self.limiter = limiter
        self.threads = threads
        self.view_of = view_of
        self.rng = rng
        self._local = threading.local()
        # Long-lived threads, so each keeps its client (HTTP connections, access token) across runs.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="google-sync")
        self._apis: list[WalletApi] = []
        self._apis_lock = threading.Lock()

    def _api(self) -> WalletApi:
        api: WalletApi | None = getattr(self._local, "api", None)
        if api is None:
            acquire = self.limiter.acquire if self.limiter is not None else None
            api = self.google.new_api(before_request=acquire)
            self._local.api = api
            with self._apis_lock:
                self._apis.append(api)
        return api

    def deliver(self, *, limit: int = 1000, now: datetime | None = None) -> GoogleDeliveryReport:
        """Claim one batch, sync it, acknowledge. Returns what happened."""
        now = now or utcnow()
        report = GoogleDeliveryReport()
        with self.maker() as session:
            claimed = claim(session, now=now, limit=limit)
        report.claimed = len(claimed)
        if not claimed:
            return report
        card_ids = [card_id for card_id, _revision, _attempts in claimed]
        # A program whose class Google refuses holds back its own cards only.
        class_failures = self._sync_classes(card_ids)
        outcomes: dict[int, Outcome] = {}
        for program_id, exc in class_failures.items():
            outcome = _outcome_of(exc)
            report.errors.append(f"class of program {program_id}: {exc}")
            if outcome is Outcome.FORBIDDEN:
                report.stopped = f"{exc.status} {exc.reason}"
        if class_failures:
            with self.maker() as session:
                held = session.execute(
                    select(Card.id, Card.program_id).where(
                        Card.id.in_(card_ids), Card.program_id.in_(list(class_failures))
                    )
                ).all()
            for card_id, program_id in held:
                outcomes[card_id] = _outcome_of(class_failures[program_id])
        todo = [card_id for card_id in card_ids if card_id not in outcomes]
        results = list(self._pool.map(lambda card_id: self._sync_card(card_id, now), todo))
        for card_id, (outcome, partial) in zip(todo, results, strict=True):
            outcomes[card_id] = outcome
            report.add(partial)
        with self.maker() as session:
            self._acknowledge(session, claimed, outcomes, now, report)
            session.commit()
        return report

    def _sync_classes(self, card_ids: list[int]) -> dict[int, GoogleWalletError]:
        """Bring each program's class up to date once, before its objects; the programs whose
        class Google refused, with why."""
        with self.maker() as session:
            program_ids = session.scalars(
                select(Card.program_id).where(Card.id.in_(card_ids)).distinct()
            ).all()
            wanted = []
            for program_id in program_ids:
                program = session.get(Program, program_id)
                if program is not None:
                    body = self.google.class_body(branding_of(program))
                    wanted.append((program_id, body, sent_body(session, GoogleClass, program_id)))
        # The session is closed: no transaction is held while Google answers.
        failures: dict[int, GoogleWalletError] = {}
        for program_id, body, sent in wanted:
            try:
                written = put_resource(self._api(), "loyaltyClass", body, sent)
            except GoogleWalletError as exc:
                failures[program_id] = exc
                continue
            if written:
                with self.maker() as session:
                    remember(session, GoogleClass, program_id, body)
                    session.commit()
        return failures

    def _sync_card(self, card_id: int, now: datetime) -> tuple[Outcome, GoogleDeliveryReport]:
        report = GoogleDeliveryReport()
        with self.maker() as session:
            found = session.execute(_CARD_AND_SENT, {"card_id": card_id}).first()
            if found is None:  # the card is gone, or nobody saved it to Google Wallet
                return Outcome.DONE, report
            card, sent = found
            body = self.google.object_body(self.view_of(card))
            program_id = card.program_id
        # The session is closed: no transaction is held while Google answers.
        try:
            self._sync_object(card_id, program_id, body, dict(sent), now, report)
        except GoogleWalletError as exc:
            outcome = _outcome_of(exc)
            report.errors.append(f"card {card_id}: {exc}")
            if outcome is Outcome.FORBIDDEN:
                report.stopped = f"{exc.status} {exc.reason}"
            return outcome, report
        report.bodies[card_id] = body  # recorded with the acknowledgement, in one transaction
        return Outcome.DONE, report

    def _budget(self, card_id: int, now: datetime) -> int:
        """Notifications this pass may still get now (read only when one is wanted)."""
        with self.maker() as session:
            return NOTIFICATION_BUDGET - _notifications_since(session, card_id, now)

    def _class_body(self, program_id: int) -> dict[str, Any]:
        with self.maker() as session:
            program = session.get(Program, program_id)
            if program is None:  # pragma: no cover - its card was just read
                raise GoogleWalletError(404, "notFound", f"program {program_id} is gone")
            return self.google.class_body(branding_of(program))

    def _sync_object(
        self,
        card_id: int,
        program_id: int,
        body: dict[str, Any],
        sent: dict[str, Any],
        now: datetime,
        report: GoogleDeliveryReport,
    ) -> None:
        """Send what changed from ``sent`` to ``body``. Each notification is recorded as soon as
        Google took it, with the message it carried, so a failure later in the same sync neither
        loses the count nor sends the message again."""
        api = self._api()
        if sent.get(UNCONFIRMED):
            # Only a save link's essentials were ever sent: make Google hold the whole object,
            # without announcing what the member will see on it anyway.
            api.insert_or_patch("loyaltyObject", body)
            report.patched += 1
            return
        notified = 0
        changes = object_state_changes(sent, body)

        # New offers notify through addMessage while the budget lasts.
        sent_ids = {message.get("id") for message in sent.get("messages") or []}
        new_offers = [m for m in body.get("messages") or [] if m["id"] not in sent_ids]
        tier_changed = "secondaryLoyaltyPoints" in changes
        wants_notice = bool(new_offers) or (
            tier_changed and bool(body.get("secondaryLoyaltyPoints"))
        )
        budget = self._budget(card_id, now) if wants_notice else 0
        announced = []
        for offer in new_offers:
            if budget - notified <= 0:
                report.silenced += 1
                continue
            try:
                api.add_message(
                    "loyaltyObject", body["id"], {**offer, "messageType": "TEXT_AND_NOTIFY"}
                )
            except GoogleWalletError as exc:
                if not exc.quota_exceeded:
                    raise
                budget = notified  # Google counts differently than we do: the rest is silent
                report.silenced += 1
                continue
            announced.append(offer["id"])
            notified += 1
            report.messages += 1
            report.notified += 1
            sent = self._record_notice(card_id, message=offer)
        if announced and "messages" in changes and sent.get("messages") == body["messages"]:
            del changes["messages"]  # Google appended them: nothing more changed there

        if changes:
            notify = tier_changed and bool(body.get("secondaryLoyaltyPoints"))
            if notify and budget - notified <= 0:
                report.silenced += 1
                notify = False
            if self._patch(api, body, program_id, changes, notify=notify, report=report):
                self._record_notice(card_id)

    def _record_notice(self, card_id: int, message: dict[str, Any] | None = None) -> dict[str, Any]:
        """Count a notification Google accepted; with ``message``, also remember that the pass
        now carries it. Returns what we now know Google holds."""
        with self.maker() as session:
            session.add(GoogleNotification(card_id=card_id, sent_at=utcnow()))
            known = session.get(GoogleObject, card_id)
            assert known is not None  # the sync read it; objects are never deleted
            held = dict(known.sent_body)
            if message is not None:
                held["messages"] = [*(held.get("messages") or []), message]
                known.sent_body = held
            session.commit()
        return held

    def _patch(
        self,
        api: WalletApi,
        body: dict[str, Any],
        program_id: int,
        changes: dict[str, Any],
        *,
        notify: bool,
        report: GoogleDeliveryReport,
    ) -> bool:
        """PATCH ``changes``, notifying if asked; True if a notification went out."""
        payload = {**changes, "notifyPreference": "NOTIFY_ON_UPDATE"} if notify else changes
        try:
            api.patch("loyaltyObject", body["id"], payload)
        except GoogleWalletError as exc:
            if exc.status == 404:  # the object vanished at Google: create it again
                self._recreate(api, body, program_id)
                notify = False
            elif notify and exc.quota_exceeded:
                api.patch("loyaltyObject", body["id"], changes)
                report.silenced += 1
                notify = False
            else:
                raise
        report.patched += 1
        if notify:
            report.notified += 1
        return notify

    def _recreate(self, api: WalletApi, body: dict[str, Any], program_id: int) -> None:
        """Insert the whole object; if its class is gone too (a wiped demo issuer), first that."""
        try:
            api.insert_or_patch("loyaltyObject", body)
        except GoogleWalletError as exc:
            if exc.status != 404:
                raise
            api.insert_or_patch("loyaltyClass", self._class_body(program_id))
            api.insert_or_patch("loyaltyObject", body)

    def _acknowledge(
        self,
        session: Session,
        claimed: list[tuple[int, int, int]],
        outcomes: dict[int, Outcome],
        now: datetime,
        report: GoogleDeliveryReport,
    ) -> None:
        """Record what Google now holds and settle each claimed row, in the caller's transaction:
        two executemany statements for the usual case, one UPDATE per row that failed."""
        done = [
            (card_id, revision)
            for card_id, revision, _ in claimed
            if outcomes[card_id] is Outcome.DONE
        ]
        if report.bodies:
            session.connection().execute(
                _SET_SENT_BODY,
                [
                    {"b_card_id": card_id, "b_sent_body": body, "b_updated_at": now}
                    for card_id, body in report.bodies.items()
                ],
            )
        if done:
            # A change that arrived while we synced keeps the row pending.
            session.connection().execute(
                _SETTLE,
                [{"b_card": card_id, "b_revision": revision} for card_id, revision in done],
            )
            report.delivered += len(done)
        for card_id, _revision, attempts in claimed:
            outcome = outcomes[card_id]
            if outcome is Outcome.DONE:
                continue
            if outcome is Outcome.FORBIDDEN:
                values: dict[str, Any] = {"google_not_before": now + PAUSE_AFTER_FORBIDDEN}
            else:
                values = {
                    "google_not_before": now + backoff(attempts, self.rng),
                    "google_attempts": attempts + 1,
                }
                if outcome is Outcome.RETRY:
                    report.retrying += 1
                else:
                    report.failed += 1
            session.execute(
                update(WalletUpdate)
                .where(WalletUpdate.card_id == card_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._apis_lock:
            for api in self._apis:
                api.close()
            self._apis.clear()


def _outcome_of(exc: GoogleWalletError) -> Outcome:
    if exc.retryable:
        return Outcome.RETRY
    if exc.status in (401, 403) and not exc.quota_exceeded:
        return Outcome.FORBIDDEN
    return Outcome.FAILED


def _notifications_since(session: Session, card_id: int, now: datetime) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(GoogleNotification)
        .where(
            GoogleNotification.card_id == card_id,
            GoogleNotification.sent_at > now - NOTIFICATION_WINDOW,
        )
    )
    return int(count or 0)
