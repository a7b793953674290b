"""Every scheduled job's runs are recorded (outcome, duration, result or error) and shown in the
console; a failing job is recorded and logged, never raised into the scheduler."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_program
from passes.accounts.service import create_user
from passes.jobs import build_scheduler, jobs
from passes.jobs.runs import JobRun, run_recorded, worker_name
from passes.state import AppState
from support import csrf_token


def record_of(app: Flask, job_id: str) -> JobRun:
    state: AppState = app.extensions["passes"]
    with state.sessionmaker() as session:
        run = session.get(JobRun, job_id)
        assert run is not None
        session.expunge(run)
        return run


def test_a_run_is_recorded_as_running_then_with_its_result(app: Flask) -> None:
    seen_while_running: list[str] = []

    def job(app: Flask) -> str:
        seen_while_running.append(record_of(app, "sample").outcome)
        return "7 things done"

    run_recorded(app, "sample", job)
    run = record_of(app, "sample")
    assert seen_while_running == ["running"]
    assert (run.outcome, run.detail, run.runs, run.failures) == ("ok", "7 things done", 1, 0)
    assert run.worker == worker_name() and run.duration_ms is not None and run.duration_ms >= 0
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.started_at.tzinfo is not None

    run_recorded(app, "sample", lambda app: None)
    again = record_of(app, "sample")
    assert (again.outcome, again.detail, again.runs) == ("ok", None, 2)
    assert again.started_at >= run.started_at


def test_a_failing_job_is_recorded_and_logged_not_raised(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    def job(app: Flask) -> None:
        raise RuntimeError("the database went away" + "!" * 600)

    run_recorded(app, "fragile", job)  # does not raise
    run = record_of(app, "fragile")
    assert (run.outcome, run.runs, run.failures) == ("failed", 1, 1)
    assert run.detail is not None and run.detail.startswith("RuntimeError: the database went away")
    assert len(run.detail) == 500  # cut to the column, not refused by it
    assert "job fragile failed" in caplog.text

    run_recorded(app, "fragile", lambda app: "fine again")
    run = record_of(app, "fragile")
    assert (run.outcome, run.detail, run.runs, run.failures) == ("ok", "fine again", 2, 1)


def test_the_scheduler_records_every_job(app: Flask) -> None:
    scheduler = build_scheduler(app)
    registered = {job.id: job for job in scheduler.get_jobs()}
    assert set(registered) == {job.id for job in jobs(app)}
    for job in jobs(app):
        assert registered[job.id].func is run_recorded
        assert registered[job.id].args[1:] == (job.id, job.function)


def test_the_real_jobs_say_what_they_did(app: Flask, db_session: Session) -> None:
    make_program(db_session)
    db_session.commit()
    for job in jobs(app):
        if job.id != "evaluate-tiers":  # nightly: covered with its data in tests/loyalty
            run_recorded(app, job.id, job.function)
    state: AppState = app.extensions["passes"]
    with state.sessionmaker() as session:
        runs = {run.job_id: run for run in session.scalars(select(JobRun))}
    assert {run.outcome for run in runs.values()} == {"ok"}
    assert runs["expire-points"].detail == "0 points expired"
    assert runs["send-campaigns"].detail == "0 campaigns sent"
    assert runs["certificate-expiry"].detail is not None
    assert runs["certificate-expiry"].detail.endswith("days left")


def test_the_console_lists_the_jobs_and_their_last_runs(app: Flask, db_session: Session) -> None:
    program = make_program(db_session, name="Jobs program")
    other = make_program(db_session, name="Other program")
    for email, role, owner in [
        ("admin@jobs.example", "admin", program),
        ("marketer@jobs.example", "marketer", program),
        ("clerk@jobs.example", "clerk", program),
        ("marketer@other.example", "marketer", other),
    ]:
        extra = {"store": owner.stores[0]} if role == "clerk" else {}
        create_user(
            db_session,
            owner,
            email=email,
            name=role,
            role=role,
            password="pass phrase 1",
            **extra,  # type: ignore[arg-type]
        )
    db_session.commit()
    run_recorded(app, "expire-points", lambda app: "3 points expired")

    path = f"/console/{program.slug}/jobs"
    assert app.test_client().get(path).status_code == 303  # nobody signed in
    for email, status in [
        ("admin@jobs.example", 200),
        ("marketer@jobs.example", 403),  # the jobs serve every program: admins only
        ("clerk@jobs.example", 403),
        ("marketer@other.example", 403),
    ]:
        client = app.test_client()
        token = csrf_token(client, "/console/login")
        signed = client.post(
            "/console/login",
            data={"csrf_token": token, "email": email, "password": "pass phrase 1"},
        )
        assert signed.status_code == 303
        response = client.get(path)
        assert response.status_code == status, email
        if status == 200:
            page = response.get_data(as_text=True)
            assert "3 points expired" in page and "outcome-ok" in page
            assert page.count("not run yet") == len(jobs(app)) - 1
