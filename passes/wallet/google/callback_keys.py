"""Google's root signing keys for Wallet callbacks, fetched from the published URL and cached.

Google rotates these keys and says how long a copy may be used (``Cache-Control: max-age``).
A callback signed by a key we do not hold yet triggers one early refetch, at most once a minute,
so a rotation is picked up at once while a flood of forged callbacks cannot make us hammer
Google. When Google cannot be reached, the keys we hold stay in use until they expire.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import requests

from passes.wallet.google.callbacks import RootKey, parse_root_keys

__all__ = ["DEFAULT_KEYS_URL", "KeysUnavailable", "RootKeySource"]

log = logging.getLogger(__name__)

DEFAULT_KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
DEFAULT_MAX_AGE = 3600.0  # when Google's answer names none
MAX_AGE_RANGE = (60.0, 24 * 3600.0)
MIN_REFETCH_INTERVAL = 60.0
TIMEOUT = (5.0, 5.0)  # connect, read: a callback waits for this only when no key is held
MAX_DOCUMENT = 64 * 1024

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class KeysUnavailable(RuntimeError):
    """No current root key could be had: Google should retry the callback later."""


def _max_age(cache_control: str | None) -> float:
    match = _MAX_AGE.search(cache_control or "")
    seconds = float(match.group(1)) if match else DEFAULT_MAX_AGE
    low, high = MAX_AGE_RANGE
    return min(max(seconds, low), high)


class RootKeySource:
    """The current root keys, shared by a process's request threads.

    Reading never waits for Google while keys are held: one thread refreshes a stale list (the
    others go on with the keys held, as long as those have not expired); only when no key is
    held at all do callers wait for the fetch.
    """

    def __init__(
        self,
        url: str = DEFAULT_KEYS_URL,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = url
        self._clock = clock
        self._wall_clock = wall_clock
        self._fetching = threading.Lock()  # one fetch at a time
        self._keys: list[RootKey] = []
        self._fresh_until = float("-inf")
        self._fetched_at = float("-inf")
        self._generation = 0  # counts successful fetches
        self._http = requests.Session()

    def current(self) -> list[RootKey]:
        """The keys to verify with, refreshed when the cached copy is stale. Raises
        KeysUnavailable when there are none (not fetched yet, or all expired)."""
        if self._clock() >= self._fresh_until and self._fetching.acquire(blocking=not self._keys):
            try:
                if self._clock() >= self._fresh_until:  # nobody refreshed while we waited
                    self._fetch()
            finally:
                self._fetching.release()
        return self._unexpired()

    def refetch(self) -> bool:
        """Fetch again before the copy is stale (a callback named a key we lack): True when
        the keys were fetched anew, by this call or one that was under way; False when the last
        fetch was under a minute ago, or this one failed."""
        generation = self._generation
        with self._fetching:
            if self._generation != generation:
                return True
            if self._clock() - self._fetched_at < MIN_REFETCH_INTERVAL:
                return False
            return self._fetch()

    def _unexpired(self) -> list[RootKey]:
        now = self._wall_clock()
        keys = [key for key in self._keys if key.expires_at > now]
        if not keys:
            raise KeysUnavailable(f"no current Google root signing key (from {self.url})")
        return keys

    def _fetch(self) -> bool:
        """Fetch the list (the caller holds ``_fetching``); False if that failed."""
        self._fetched_at = self._clock()
        try:
            response = self._http.get(self.url, timeout=TIMEOUT, stream=True)
            with response:
                response.raise_for_status()
                document = response.raw.read(MAX_DOCUMENT + 1, decode_content=True)
            if len(document) > MAX_DOCUMENT:
                raise ValueError(f"the key list is over {MAX_DOCUMENT} bytes")
            keys = parse_root_keys(document, now=self._wall_clock())
        except (requests.RequestException, ValueError) as exc:
            log.warning("could not fetch Google's root signing keys from %s: %s", self.url, exc)
            # Try again in a minute, not on every callback.
            self._fresh_until = self._clock() + MIN_REFETCH_INTERVAL
            return False
        if not keys:
            log.warning("Google's key list at %s holds no current ECv2SigningOnly key", self.url)
            self._fresh_until = self._clock() + MIN_REFETCH_INTERVAL
            return False
        self._keys = keys
        self._fresh_until = self._clock() + _max_age(response.headers.get("Cache-Control"))
        self._generation += 1
        return True

    def close(self) -> None:
        self._http.close()
