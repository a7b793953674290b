"""Joins racing on real, committed transactions (not the usual rolled-back test transaction)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import BARCODE_KEY, make_program
from passes.db import make_sessionmaker
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Card, Member, Program

THREADS = 8


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit; the programs they made are deleted afterwards."""
    maker = make_sessionmaker(engine)
    yield maker
    with maker() as session:
        session.execute(delete(Program).where(Program.slug.like("race-%")))
        session.commit()


def test_concurrent_joins_with_one_email_issue_exactly_one_card(
    committed: sessionmaker[Session],
) -> None:
    with committed() as session:
        program_id = make_program(session, slug=f"race-{uuid.uuid4().hex[:8]}").id
        session.commit()
    barrier = threading.Barrier(THREADS)
    outcomes: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def join(index: int) -> None:
        applicant = Applicant(f"Racer {index}", "Same.Person@example.com", None, None)
        try:
            barrier.wait(timeout=30)
            with committed() as session:
                program = session.get(Program, program_id)
                assert program is not None
                enrollment = enroll(session, program, applicant, barcode_key=BARCODE_KEY)
                session.commit()
                outcomes.append((enrollment.card.id, enrollment.created))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(outcomes) == THREADS
    assert len({card_id for card_id, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    with committed() as session:
        members = session.scalar(
            select(func.count()).select_from(Member).where(Member.program_id == program_id)
        )
        cards = session.scalar(
            select(func.count()).select_from(Card).where(Card.program_id == program_id)
        )
    assert members == 1 and cards == 1
