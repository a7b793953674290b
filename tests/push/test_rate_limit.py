"""The shared rate limit: never more than the rate (plus its small capacity), across threads
and limiters, one reservation per request."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from passes.db import make_sessionmaker
from passes.push.rate_limit import DatabaseRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def maker(db_session: Session) -> sessionmaker[Session]:
    return make_sessionmaker(db_session.connection())


def test_the_capacity_goes_at_once_then_one_slot_per_interval(
    maker: sessionmaker[Session],
) -> None:
    clock = Clock()
    limiter = DatabaseRateLimiter(maker, "t-pace", rate=10, capacity=2, clock=clock)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])


def test_a_hundred_requests_at_ten_per_second_take_ten_seconds(
    maker: sessionmaker[Session],
) -> None:
    clock = Clock()
    limiter = DatabaseRateLimiter(
        maker, "t-hundred", rate=10, capacity=1, clock=clock, sleep=clock.sleep
    )
    start = clock.now
    for _ in range(101):
        limiter.acquire()
    assert clock.now - start == pytest.approx(10.0)


def test_a_pause_never_turns_into_a_burst(maker: sessionmaker[Session]) -> None:
    clock = Clock()
    limiter = DatabaseRateLimiter(maker, "t-idle", rate=20, clock=clock)
    assert limiter.capacity == 2  # a tenth of a second's worth by default
    limiter.reserve()
    clock.now += 3600
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.05, 0.1])


def test_two_limiters_on_one_row_share_the_rate(maker: sessionmaker[Session]) -> None:
    clock = Clock()
    first = DatabaseRateLimiter(maker, "t-shared", rate=5, capacity=1, clock=clock)
    second = DatabaseRateLimiter(maker, "t-shared", rate=5, capacity=1, clock=clock)
    assert first.reserve() == 0.0
    assert second.reserve() == pytest.approx(0.2)
    assert first.reserve() == pytest.approx(0.4)


def test_the_rate_must_be_positive(maker: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="positive"):
        DatabaseRateLimiter(maker, "t-bad", rate=0)


def test_threads_on_the_real_clock_never_exceed_rate_plus_capacity(engine: Engine) -> None:
    """Real connections, real time: 4 threads send for 1.5 s at 40/s. An upper bound only (it
    holds however slow the machine is)."""
    maker = make_sessionmaker(engine)
    limiter = DatabaseRateLimiter(maker, f"t-threads-{time.time_ns()}", rate=40, capacity=4)
    stop = time.time() + 1.5
    sent: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        while time.time() < stop:
            limiter.acquire()
            with lock:
                sent.append(time.time())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    span = sent[-1] - sent[0]
    assert len(sent) <= 40 * span + 4 + 1
