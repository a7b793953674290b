"""The shared token bucket: never more than the rate (plus its small capacity), across threads."""

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
    bind = db_session.connection()
    return make_sessionmaker(bind)


def test_the_bucket_grants_its_capacity_then_paces_at_the_rate(
    maker: sessionmaker[Session],
) -> None:
    clock = Clock()
    limiter = DatabaseRateLimiter(
        maker, "t-pace", rate=10, capacity=2, clock=clock, sleep=clock.sleep
    )
    assert limiter.try_acquire() == 0.0 and limiter.try_acquire() == 0.0
    wait = limiter.try_acquire()
    assert wait == pytest.approx(0.1)
    clock.sleep(wait)
    assert limiter.try_acquire() == 0.0
    start = clock.now
    for _ in range(100):
        limiter.acquire()  # sleeps (on the fake clock) whenever the bucket is empty
    assert clock.now - start == pytest.approx(10.0, abs=0.11)  # 100 tokens at 10/s


def test_a_pause_never_turns_into_a_burst(maker: sessionmaker[Session]) -> None:
    clock = Clock()
    limiter = DatabaseRateLimiter(maker, "t-idle", rate=20, clock=clock, sleep=clock.sleep)
    assert limiter.capacity == 2  # a tenth of a second's worth by default
    clock.now += 3600
    granted = 0
    while limiter.try_acquire() == 0.0:
        granted += 1
    assert granted == 2


def test_two_limiters_on_one_bucket_share_the_rate(maker: sessionmaker[Session]) -> None:
    clock = Clock()
    first = DatabaseRateLimiter(maker, "t-shared", rate=5, capacity=1, clock=clock)
    second = DatabaseRateLimiter(maker, "t-shared", rate=5, capacity=1, clock=clock)
    assert first.try_acquire() == 0.0
    assert second.try_acquire() == pytest.approx(0.2)


def test_the_rate_must_be_positive(maker: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="positive"):
        DatabaseRateLimiter(maker, "t-bad", rate=0)


def test_threads_on_the_real_clock_never_exceed_rate_plus_capacity(engine: Engine) -> None:
    """Real connections, real time: 4 threads take tokens for 1.5 s at 40/s. An upper bound
    only (it holds however slow the machine is)."""
    maker = make_sessionmaker(engine)
    name = f"t-threads-{threading.get_ident()}"
    limiter = DatabaseRateLimiter(maker, name, rate=40, capacity=4)
    clock = time.time
    stop = clock() + 1.5
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        while clock() < stop:
            limiter.acquire()
            with lock:
                granted.append(clock())

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted.sort()
    span = granted[-1] - granted[0]
    assert len(granted) <= 40 * span + 4 + 1
