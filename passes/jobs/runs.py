"""Each scheduled job's last run, kept in the database for the console: when it started, how
long it took, how it ended, on which worker.

The record is written by whichever worker ran the job (a row per job, upserted), so the console
of any process shows what the workers did. A failing job is recorded and logged, never raised
into the scheduler: the next run is the retry.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import CheckConstraint, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from passes.db import Base, UTCDateTime, upsert_insert, utcnow
from passes.state import AppState

log = logging.getLogger(__name__)

DETAIL_LENGTH = 500


class JobRun(Base):
    """The last run of one job (its id in the scheduler), and counts of all runs."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("outcome IN ('running', 'ok', 'failed')", name="outcome_known"),
    )

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(DETAIL_LENGTH))
    worker: Mapped[str] = mapped_column(String(120))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def run_recorded(app: Flask, job_id: str, job: Callable[[Flask], Any]) -> None:
    """Run ``job(app)`` and record the run: started (so a long run shows as running), then
    finished with its duration, outcome and a one-line result or error."""
    state: AppState = app.extensions["passes"]
    started = utcnow()
    with state.sessionmaker() as session:
        _started(session, job_id, started)
        session.commit()
    clock = time.perf_counter()
    outcome, detail = "ok", None
    try:
        result = job(app)
        detail = None if result is None else str(result)
    except Exception as exc:
        log.exception("job %s failed", job_id)
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    duration_ms = round((time.perf_counter() - clock) * 1000)
    with state.sessionmaker() as session:
        run = session.get(JobRun, job_id, with_for_update=True)
        if run is not None:
            run.finished_at = utcnow()
            run.duration_ms = duration_ms
            run.outcome = outcome
            run.detail = detail[:DETAIL_LENGTH] if detail else None
            run.runs += 1
            run.failures += outcome == "failed"
        session.commit()


def _started(session: Session, job_id: str, started: datetime) -> None:
    insert = upsert_insert(session.connection().dialect.name)
    statement = insert(JobRun).values(
        job_id=job_id,
        started_at=started,
        outcome="running",
        worker=worker_name(),
        runs=0,
        failures=0,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[JobRun.job_id],
            set_={
                "started_at": statement.excluded.started_at,
                "finished_at": None,
                "duration_ms": None,
                "outcome": "running",
                "detail": None,
                "worker": statement.excluded.worker,
            },
        )
    )


def last_runs(session: Session) -> dict[str, JobRun]:
    return {run.job_id: run for run in session.scalars(select(JobRun))}
