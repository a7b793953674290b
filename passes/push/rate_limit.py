"""A rate limit kept in one database row, so every worker process shares one rate.

Google allows an issuer a fixed number of Wallet API requests per second, whatever number of
processes send them. Each request reserves its slot with one atomic UPDATE and then sleeps until
that slot (the generic cell rate algorithm: the row holds the theoretical time the next request
may go, advanced by ``1 / rate`` per reservation). Nobody polls: one round trip per request, and
waiting threads cost nothing. Up to ``capacity`` requests may go at once after a quiet spell; in
any window of ``w`` seconds at most ``rate * w + capacity`` are granted.
PostgreSQL serialises the UPDATEs on the row; SQLite serialises writers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DatabaseRateLimiter"]

# ``updated_at`` holds the theoretical arrival time of the next request; ``tokens`` is unused.
_RESERVE = {
    "postgresql": text(
        "UPDATE rate_buckets SET updated_at = GREATEST(updated_at, :now - :burst) + :interval "
        "WHERE name = :name RETURNING updated_at - :interval"
    ),
    "sqlite": text(
        "UPDATE rate_buckets SET updated_at = MAX(updated_at, :now - :burst) + :interval "
        "WHERE name = :name RETURNING updated_at - :interval"
    ),
}
_CREATE = text(
    "INSERT INTO rate_buckets (name, tokens, updated_at) VALUES (:name, 0, 0) "
    "ON CONFLICT (name) DO NOTHING"
)


class DatabaseRateLimiter:
    """``acquire()`` blocks until one request may go out under the shared rate."""

    def __init__(
        self,
        maker: sessionmaker[Session],
        name: str,
        *,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.maker = maker
        self.name = name
        self.rate = float(rate)
        # A tenth of a second's worth: smooth pacing, no burst after an idle minute.
        self.capacity = float(capacity if capacity is not None else max(1.0, rate / 10))
        self._clock = clock
        self._sleep = sleep
        with maker() as session:
            dialect = session.connection().dialect.name
            session.execute(_CREATE, {"name": name})
            session.commit()
        self._reserve = _RESERVE["postgresql" if dialect == "postgresql" else "sqlite"]

    def reserve(self) -> float:
        """Reserve the next slot: the seconds to wait before sending (0.0: go now)."""
        now = self._clock()
        interval = 1.0 / self.rate
        params = {
            "name": self.name,
            "now": now,
            "interval": interval,
            "burst": (self.capacity - 1.0) * interval,
        }
        with self.maker() as session:
            row = session.execute(self._reserve, params).first()
            session.commit()
        if row is None:  # pragma: no cover - created in __init__, never deleted
            raise RuntimeError(f"rate bucket {self.name!r} is missing")
        return max(0.0, float(row[0]) - now)

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
