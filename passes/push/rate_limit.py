"""A token bucket kept in one database row, so every worker process shares one rate.

Google allows an issuer a fixed number of Wallet API requests per second, whatever number of
processes send them. Each request first takes a token with one atomic UPDATE; the bucket refills at
``rate`` tokens per second up to ``capacity`` (kept small, so a pause never turns into a burst
Google would refuse). PostgreSQL serialises the UPDATEs on the row; SQLite serialises writers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DatabaseRateLimiter"]

# ">= 0.999999", not ">= 1": a caller that slept exactly the wait it was told gets its token
# despite floating-point rounding.
_TAKE = {
    "postgresql": text(
        "UPDATE rate_buckets SET "
        "tokens = LEAST(:capacity, tokens + GREATEST(0, :now - updated_at) * :rate) - 1, "
        "updated_at = GREATEST(updated_at, :now) "
        "WHERE name = :name "
        "AND LEAST(:capacity, tokens + GREATEST(0, :now - updated_at) * :rate) >= 0.999999 "
        "RETURNING tokens"
    ),
    "sqlite": text(
        "UPDATE rate_buckets SET "
        "tokens = MIN(:capacity, tokens + MAX(0, :now - updated_at) * :rate) - 1, "
        "updated_at = MAX(updated_at, :now) "
        "WHERE name = :name "
        "AND MIN(:capacity, tokens + MAX(0, :now - updated_at) * :rate) >= 0.999999 "
        "RETURNING tokens"
    ),
}
_CREATE = text(
    "INSERT INTO rate_buckets (name, tokens, updated_at) VALUES (:name, :tokens, :now) "
    "ON CONFLICT (name) DO NOTHING"
)
_READ = text("SELECT tokens, updated_at FROM rate_buckets WHERE name = :name")


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
            session.execute(_CREATE, {"name": name, "tokens": self.capacity, "now": clock()})
            session.commit()
        self._take = _TAKE["postgresql" if dialect == "postgresql" else "sqlite"]

    def try_acquire(self) -> float:
        """Take a token: 0.0 if granted, else the seconds to wait before one is there."""
        now = self._clock()
        params = {"name": self.name, "now": now, "rate": self.rate, "capacity": self.capacity}
        with self.maker() as session:
            granted = session.execute(self._take, params).first() is not None
            row = None if granted else session.execute(_READ, {"name": self.name}).first()
            session.commit()
        if granted:
            return 0.0
        if row is None:  # pragma: no cover - created in __init__, never deleted
            raise RuntimeError(f"rate bucket {self.name!r} is missing")
        tokens, updated_at = float(row[0]), float(row[1])
        available = min(self.capacity, tokens + max(0.0, now - updated_at) * self.rate)
        return max((1.0 - available) / self.rate, 0.001)

    def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            self._sleep(wait)
