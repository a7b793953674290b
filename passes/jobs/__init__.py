"""Scheduled work, run by APScheduler inside ``flask passes serve`` (and later ``passes worker``).

Jobs are plain functions of the app; each must be idempotent, because a job may run again after a
crash or on several workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from passes.jobs.runs import run_recorded
from passes.state import AppState

if TYPE_CHECKING:
    from passes.push.service import ApplePushService, GoogleSyncService

log = logging.getLogger(__name__)
CERTIFICATE_WARNING = timedelta(days=30)


def check_certificate_expiry(app: Flask, now: datetime | None = None) -> timedelta | None:
    """Warn in the log while the Apple pass certificate has under 30 days left (Apple's expire
    yearly, and an expired one stops every pass update). Returns the time left."""
    state: AppState = app.extensions["passes"]
    if state.apple is None:
        return None
    now = now or datetime.now(UTC)
    left = state.apple.material.certificate.not_valid_after_utc - now
    if left < CERTIFICATE_WARNING:
        log.warning(
            "the Apple pass certificate expires in %d days (%s): renew it in the Apple developer "
            "portal and replace APPLE_CERTIFICATE/APPLE_PRIVATE_KEY",
            left.days,
            state.apple.material.certificate.not_valid_after_utc.isoformat(),
        )
    return left


def expire_points(app: Flask, now: datetime | None = None) -> int:
    """Expire every point lot that is due, in batches, each batch its own transaction."""
    from passes.loyalty.ledger import expire_due

    state: AppState = app.extensions["passes"]
    total = 0
    while True:
        with state.sessionmaker() as session:
            report = expire_due(session, now=now)
            session.commit()
        total += report.points
        if report.cards == 0:
            break
    if total:
        log.info("expired %d points", total)
    return total


def warn_expiring_points(app: Flask, now: datetime | None = None) -> str:
    """Put an expiry notice on the cards whose points enter the warning window."""
    from passes.loyalty.ledger import warn_expiring

    state: AppState = app.extensions["passes"]
    warned = 0
    with state.sessionmaker() as session:
        while batch := warn_expiring(session, now=now, limit=TIER_CHANGES_PER_COMMIT):
            session.commit()  # no till waits long for a card
            warned += batch
        session.commit()
    return f"{warned} cards warned"


def give_birthday_gifts(app: Flask, now: datetime | None = None) -> str:
    """Birthday gifts of the programs that give one, a hundred cards per commit. Run hourly,
    so each program's members get theirs early on their day in the program's time zone."""
    from sqlalchemy import select

    from passes.db import utcnow
    from passes.loyalty.ledger import birthday_gift_candidates, give_birthday_gift
    from passes.loyalty.models import Program

    state: AppState = app.extensions["passes"]
    now = now or utcnow()  # one clock for the whole run: a gift belongs to one day
    given = 0
    with state.sessionmaker() as session:
        for program in session.scalars(select(Program)).all():
            candidates = birthday_gift_candidates(session, program, now=now)
            session.commit()
            for start in range(0, len(candidates), TIER_CHANGES_PER_COMMIT):
                for card_id in candidates[start : start + TIER_CHANGES_PER_COMMIT]:
                    given += give_birthday_gift(session, card_id, now=now) is not None
                session.commit()
    return f"{given} birthday gifts"


TIER_CHANGES_PER_COMMIT = 100


def evaluate_tiers(app: Flask, now: datetime | None = None) -> int:
    """Nightly: re-qualify every card's tier (downgrades happen only here). Changed cards are
    locked while they change, and committed a hundred at a time, so no till waits long."""
    from sqlalchemy import select

    from passes.db import utcnow
    from passes.loyalty.ledger import retier, tier_candidates
    from passes.loyalty.models import Program

    state: AppState = app.extensions["passes"]
    now = now or utcnow()
    changed = 0
    with state.sessionmaker() as session:
        for program in session.scalars(select(Program)).all():
            candidates = tier_candidates(session, program, now=now)
            session.commit()
            for start in range(0, len(candidates), TIER_CHANGES_PER_COMMIT):
                for card_id in candidates[start : start + TIER_CHANGES_PER_COMMIT]:
                    changed += retier(session, card_id, program, now=now) is not None
                session.commit()
    if changed:
        log.info("tier evaluation changed %d cards", changed)
    return changed


def push_service(app: Flask) -> ApplePushService | None:
    """This process's Apple push service (created on first use), or None without signing."""
    from passes.push.service import ApplePushService

    state: AppState = app.extensions["passes"]
    if state.apple is None or not app.config["PUSH_ENABLED"]:
        return None
    service = app.extensions.get("passes_apple_push")
    if service is None:
        service = ApplePushService(state.sessionmaker, app.config, state.apple)
        app.extensions["passes_apple_push"] = service
    return service


def google_service(app: Flask) -> GoogleSyncService | None:
    """This process's Google Wallet sync (created on first use), or None without Google."""
    from passes.push.service import GoogleSyncService

    state: AppState = app.extensions["passes"]
    if state.google is None or not app.config["PUSH_ENABLED"]:
        return None
    service = app.extensions.get("passes_google_sync")
    if service is None:
        service = GoogleSyncService(state.sessionmaker, app.config, state.google)
        app.extensions["passes_google_sync"] = service
    return service


def deliver_apple_updates(app: Flask) -> str | None:
    """Push pending Apple updates; a line saying what happened, for the console."""
    service = push_service(app)
    if service is None:
        return "off: no Apple signing or pushes disabled"
    report = service.run_once()
    if report is None:
        return None
    line = f"{report.claimed} cards, {report.pushed} pushes, {report.delivered} delivered"
    if report.retrying:
        line += f", {report.retrying} to retry"
    if report.stopped:
        line += f", stopped: {report.stopped}"
    return line


def deliver_google_updates(app: Flask) -> str | None:
    """Sync pending Google Wallet updates; a line saying what happened, for the console."""
    service = google_service(app)
    if service is None:
        return "off: Google Wallet not configured or pushes disabled"
    report = service.run_once()
    if report is None:
        return None
    line = f"{report.claimed} cards, {report.patched} updated, {report.delivered} delivered"
    if report.retrying or report.failed:
        line += f", {report.retrying} to retry, {report.failed} failed"
    if report.stopped:
        line += f", stopped: {report.stopped}"
    return line


def deliver_wallet_updates(app: Flask) -> None:
    """Both wallets, one after the other; a failure of one never stops the other."""
    for deliver in (deliver_apple_updates, deliver_google_updates):
        try:
            deliver(app)
        except Exception:
            log.exception("%s failed; the other wallet is unaffected", deliver.__name__)


def send_campaigns(app: Flask, now: datetime | None = None) -> int:
    """Send the campaigns that are due (each by one worker only), then take expired offers off
    their cards."""
    from passes.marketing.campaigns import end_expired, send_due

    state: AppState = app.extensions["passes"]
    with state.sessionmaker() as session:
        sent = send_due(session, now)
        ended = end_expired(session, now)
    if sent or ended:
        log.info("campaigns sent: %s; ended: %s", sent, ended)
    return len(sent)


@dataclass(frozen=True)
class Job:
    """A recurring job: its id (also its key in the run records), what it does in a few words,
    the function, and the APScheduler trigger."""

    id: str
    description: str
    function: Callable[[Flask], Any]
    trigger: str
    schedule: dict[str, Any]
    starts_at_once: bool = False


def jobs(app: Flask) -> list[Job]:
    """Every recurring job, in the order the console lists them."""
    push_every = {"seconds": float(app.config["PUSH_INTERVAL_SECONDS"])}
    return [
        # Separate jobs, so a slow or failing Google never delays Apple pushes, nor the reverse.
        Job(
            "deliver-apple-updates",
            "Apple Wallet pushes",
            deliver_apple_updates,
            "interval",
            push_every,
        ),
        Job(
            "deliver-google-updates",
            "Google Wallet sync",
            deliver_google_updates,
            "interval",
            push_every,
        ),
        Job(
            "send-campaigns",
            "due campaigns and expired offers",
            _campaigns_line,
            "interval",
            {"seconds": 30},
        ),
        Job(
            "send-webhooks",
            "webhooks to the shops' endpoints",
            send_webhooks,
            "interval",
            {"seconds": 10},
        ),
        # The hourly card jobs start 20 minutes apart, so they do not queue on the same cards.
        Job("expire-points", "points expiry", _expiry_line, "interval", {"hours": 1}),
        Job(
            "warn-expiring-points",
            "expiry warnings on cards",
            warn_expiring_points,
            "interval",
            {"hours": 1, "start_date": _in_minutes(20)},
        ),
        Job(
            "birthday-gifts",
            "birthday gifts",
            give_birthday_gifts,
            "interval",
            {"hours": 1, "start_date": _in_minutes(40)},
        ),
        Job(
            "forget-callback-nonces",
            "expired Google callback nonces",
            forget_callback_nonces,
            "interval",
            {"hours": 1, "start_date": _in_minutes(10)},
        ),
        Job(
            "evaluate-tiers",
            "nightly tier evaluation",
            _tiers_line,
            "cron",
            {"hour": 2, "minute": 30},
        ),
        Job(
            "certificate-expiry",
            "Apple certificate expiry check",
            _certificate_line,
            "interval",
            {"hours": 12},
            starts_at_once=True,
        ),
    ]


def send_webhooks(app: Flask, now: datetime | None = None) -> str:
    """Name the cards' changes to the endpoints that want them, then send what is due (a few
    batches per run, so one busy shop cannot hold the job)."""
    import requests

    from passes.webhooks.delivery import deliver_due
    from passes.webhooks.events import detect_changes

    state: AppState = app.extensions["passes"]
    allow_private = bool(app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"])
    events = delivered = failed = 0
    with state.sessionmaker() as session:
        for _ in range(WEBHOOK_BATCHES_PER_RUN):
            detected = detect_changes(session, now=now)
            events += detected.events
            if detected.cards == 0:
                break
    with state.sessionmaker() as session, requests.Session() as http:
        http.trust_env = False  # no proxies or .netrc credentials from the environment
        for _ in range(WEBHOOK_BATCHES_PER_RUN):
            report = deliver_due(session, http, allow_private=allow_private, now=now)
            delivered, failed = delivered + report.delivered, failed + report.failed
            if report.attempted == 0:
                break
    return f"{events} events, {delivered} delivered, {failed} failed"


WEBHOOK_BATCHES_PER_RUN = 10


def forget_callback_nonces(app: Flask, now: datetime | None = None) -> str:
    """Google's callbacks are de-duplicated by nonce until they expire; then the nonce goes."""
    from passes.push.google_saves import forget_expired_nonces

    state: AppState = app.extensions["passes"]
    with state.sessionmaker() as session:
        forgotten = forget_expired_nonces(session, now=now or datetime.now(UTC))
        session.commit()
    return f"{forgotten} nonces forgotten"


def _in_minutes(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _campaigns_line(app: Flask) -> str:
    return f"{send_campaigns(app)} campaigns sent"


def _expiry_line(app: Flask) -> str:
    return f"{expire_points(app)} points expired"


def _tiers_line(app: Flask) -> str:
    return f"{evaluate_tiers(app)} cards changed tier"


def _certificate_line(app: Flask) -> str:
    left = check_certificate_expiry(app)
    return "no Apple certificate" if left is None else f"{left.days} days left"


def build_scheduler(app: Flask) -> BackgroundScheduler:
    """A scheduler with every recurring job registered (not started); each run is recorded
    (:mod:`passes.jobs.runs`)."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for job in jobs(app):
        scheduler.add_job(
            run_recorded,
            job.trigger,
            args=[app, job.id, job.function],
            id=job.id,
            name=job.id,  # the logs name the job, not the recorder around it
            coalesce=True,
            max_instances=1,
            **job.schedule,
            **({"next_run_time": datetime.now(UTC)} if job.starts_at_once else {}),
        )
    return scheduler
