"""Scheduled work, run by APScheduler inside ``flask passes serve`` (and later ``passes worker``).

Jobs are plain functions of the app; each must be idempotent, because a job may run again after a
crash or on several workers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from passes.state import AppState

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


def build_scheduler(app: Flask) -> BackgroundScheduler:
    """A scheduler with every recurring job registered (not started)."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        check_certificate_expiry,
        "interval",
        hours=12,
        args=[app],
        id="certificate-expiry",
        next_run_time=datetime.now(UTC),
        coalesce=True,
        max_instances=1,
    )
    return scheduler
