"""Google's callback root keys, fetched from the fake's published list over loopback: cached for
the list's max-age, refetched early at most once a minute, kept when Google is unreachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fake_google_wallet import CALLBACK_KEYS_MAX_AGE, FakeGoogleWallet

from passes.wallet.google.callback_keys import (
    MIN_REFETCH_INTERVAL,
    KeysUnavailable,
    RootKeySource,
    _max_age,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def google() -> Iterator[FakeGoogleWallet]:
    with FakeGoogleWallet() as fake:
        yield fake


def public_numbers(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> object:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_numbers()


def test_keys_are_fetched_once_and_cached_for_the_lists_max_age(google: FakeGoogleWallet) -> None:
    clock = Clock()
    source = RootKeySource(google.callback_keys_url, clock=clock)
    keys = source.current()
    assert [public_numbers(k.public_key) for k in keys] == [
        public_numbers(google.callback_root_key)
    ]
    clock.now += CALLBACK_KEYS_MAX_AGE - 1
    source.current()
    assert google.callback_key_requests == 1
    clock.now += 2
    source.current()
    assert google.callback_key_requests == 2
    source.close()


def test_a_rotation_is_picked_up_by_an_early_refetch_at_most_once_a_minute(
    google: FakeGoogleWallet,
) -> None:
    clock = Clock()
    source = RootKeySource(google.callback_keys_url, clock=clock)
    source.current()
    rotated = ec.generate_private_key(ec.SECP256R1())
    google.callback_root_keys = [(rotated, google.callback_root_keys[0][1])]
    assert source.refetch() is False  # the list was fetched under a minute ago
    assert google.callback_key_requests == 1
    clock.now += MIN_REFETCH_INTERVAL
    assert source.refetch() is True
    assert [public_numbers(k.public_key) for k in source.current()] == [public_numbers(rotated)]
    assert google.callback_key_requests == 2
    source.close()


def test_a_slow_refresh_does_not_hold_up_callers_that_have_keys(
    google: FakeGoogleWallet,
) -> None:
    clock = Clock()
    source = RootKeySource(google.callback_keys_url, clock=clock)
    held = source.current()
    clock.now += CALLBACK_KEYS_MAX_AGE + 1  # stale: the next caller refreshes
    google.callback_keys_gate = threading.Event()
    refreshing = threading.Thread(target=source.current)
    refreshing.start()
    while google.callback_key_requests < 2:  # the refresh is at Google, which does not answer
        time.sleep(0.01)
    answered: list[object] = []
    other = threading.Thread(target=lambda: answered.append(source.current()))
    other.start()
    other.join(10)
    assert not other.is_alive() and answered == [held]  # served the held keys at once
    google.callback_keys_gate.set()
    refreshing.join(10)
    assert google.callback_key_requests == 2  # one refresh, not one per caller
    source.close()


def test_keys_held_stay_in_use_while_google_is_unreachable(google: FakeGoogleWallet) -> None:
    clock = Clock()
    source = RootKeySource(google.callback_keys_url, clock=clock)
    held = source.current()
    google.stop()
    clock.now += CALLBACK_KEYS_MAX_AGE + 1
    assert source.current() == held  # the fetch failed; the keys have not expired
    clock.now += MIN_REFETCH_INTERVAL
    assert source.refetch() is False
    source.close()


def test_no_keys_at_all_is_an_error_that_names_the_url(google: FakeGoogleWallet) -> None:
    google.callback_root_keys = []
    source = RootKeySource(google.callback_keys_url, clock=Clock())
    with pytest.raises(KeysUnavailable, match="/gp/m/issuer/keys"):
        source.current()
    google.stop()
    unreachable = RootKeySource(google.callback_keys_url, clock=Clock())
    with pytest.raises(KeysUnavailable):
        unreachable.current()
    source.close()
    unreachable.close()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=7200", 7200),
        ("max-age=5", 60),  # at least a minute
        ("max-age=9999999", 86400),  # at most a day
        ("no-store", 3600),
        (None, 3600),
    ],
)
def test_the_cache_lifetime_follows_cache_control_within_bounds(
    header: str | None, seconds: float
) -> None:
    assert _max_age(header) == seconds
