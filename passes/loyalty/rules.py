"""A loyalty program's rules: the JSON document a shop configures, as frozen dataclasses.

The document lives in ``programs.rules``. :func:`parse_rules` checks all of it in one pass and
raises :class:`RulesError` naming *every* bad field (path + message), so an admin form can mark
them all at once; :func:`rules_to_dict` writes the canonical, fully explicit JSON form back
(``parse_rules(rules_to_dict(r)) == r``). Build :class:`ProgramRules` through :func:`parse_rules`:
the dataclasses do not re-validate themselves.

Units, everywhere: money is integer minor units (kopecks, cents); rates and shares are integer basis
points (1 % = 100 bp); multipliers are basis points too (×1 = 10000, ×1.5 = 15000). No floats.
Dates are ``datetime.date`` in the program's own time zone (``timezone``); callers convert.

Defaults for absent keys (``null`` means the same as absent for every optional section):

* ``timezone`` "Europe/Moscow", ``currency`` "RUB";
* ``earning``: 1 point per 1000 minor units (10.00), threshold 0, no cap, no category multipliers,
  no birthday or holiday boost, stacking "best", no welcome bonus. ``points: 0`` switches purchase
  points off (a pure discount or cashback card) while keeping the boosts for cashback;
* ``actions`` [], ``rewards`` [], ``points_as_money`` / ``discount`` / ``cashback`` / ``tiers`` /
  ``transfers`` / ``welcome_bonus`` / ``birthday`` none, ``require_scan_for_redemption`` false;
* ``expiry`` {"mode": "none"}; lifetime ``days`` 365; period_end ``period_months`` 12,
  ``period_start`` "01-01"; ``warn_days`` 14;
* tier level ``multiplier`` 10000 and ``discount`` 0; tiers ``metric`` "spend", ``window_days`` 365;
* progressive ``period`` "calendar_month"; cashback ``boosts_apply`` true; points_as_money
  ``point_value`` 100 and ``max_share`` 10000 (no cap); birthday ``scope`` "day"; welcome ``on``
  "join"; action ``limit_per_member`` null (unlimited); reward ``stock`` null (unlimited);
  transfers ``enabled`` true, ``min_points`` 1, ``max_points`` / ``max_per_day`` null (no limit).

Required: ``key``/``name``/``points`` of an action, ``key``/``name``/``cost`` of a reward,
``key``/``name``/``threshold`` of a tier level, ``name``/``start``/``end``/``multiplier`` of a
holiday, ``multiplier`` of a birthday boost, ``points`` of a welcome bonus, ``rate`` of a fixed
discount and of cashback, ``brackets`` of a progressive discount, ``up_to``/``rate`` of a bracket,
``mode`` of expiry, ``levels`` of tiers.

:data:`DEFAULT_RULES` is the starting document offered to a new shop (richer than ``{}``).
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal, TypeVar

from passes.text import N_, Text

BP = 10000
"""Basis points in one whole: 100 %, or a multiplier of ×1."""

MAX_MULTIPLIER = 100000
"""×10: a boost above this is almost certainly a typo for a percentage."""

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
ISO_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
MONTH_DAY_PATTERN = re.compile(r"(\d{2})-(\d{2})")
NAME_MAX = 100
CATEGORY_MAX = 64

PERIOD_ANCHOR_YEAR = 2000
"""A ``period_start`` given as "MM-DD" anchors periods at this (leap) year: 2-year periods then
start in even years. Give "YYYY-MM-DD" to anchor elsewhere."""

Stacking = Literal["best", "multiply"]
BirthdayScope = Literal["day", "week"]
WelcomeOn = Literal["join", "first_purchase"]
TierMetric = Literal["spend", "points"]
CalendarPeriod = Literal["calendar_month", "calendar_year"]


class RulesError(ValueError):
    """Every problem of a rules document at once, as (field path, message) pairs: ``errors``
    with the messages in English, ``problems`` with them as :class:`~passes.text.Text` for a
    page to translate.

    Paths look like ``earning.threshold``, ``tiers.levels[2].threshold``,
    ``earning.holidays[0].end``; the empty path is the document itself.
    """

    def __init__(self, errors: Sequence[tuple[str, Text | str]]) -> None:
        self.problems: list[tuple[str, Text]] = [
            (path, message if isinstance(message, Text) else Text(message))
            for path, message in errors
        ]
        self.errors: list[tuple[str, str]] = [(path, str(text)) for path, text in self.problems]
        super().__init__(str(self))

    def __str__(self) -> str:
        listed = "; ".join(f"{path or '(document)'}: {message}" for path, message in self.errors)
        return f"invalid loyalty rules: {listed}"


# --- the configuration, as frozen dataclasses -------------------------------------------------


@dataclass(frozen=True)
class BirthdayBoost:
    """Multiplier on the birthday ("day") or the 7 days from 3 days before it ("week"); and
    ``gift`` points given on the birthday itself, once a year (0: none)."""

    multiplier: int
    scope: BirthdayScope = "day"
    gift: int = 0


@dataclass(frozen=True)
class Holiday:
    """A boost on every day from ``start`` to ``end`` inclusive."""

    name: str
    start: date
    end: date
    multiplier: int


@dataclass(frozen=True)
class WelcomeBonus:
    """Points credited once: on joining, or with the first purchase."""

    points: int
    on: WelcomeOn = "join"


@dataclass(frozen=True)
class Earning:
    """Points for purchases: ``points`` per ``per_amount`` minor units above ``threshold``."""

    points: int = 1
    per_amount: int = 1000
    threshold: int = 0
    max_points_per_purchase: int | None = None
    # Sorted by category so that equal configurations compare equal; use multiplier_for().
    category_multipliers: tuple[tuple[str, int], ...] = ()
    birthday: BirthdayBoost | None = None
    holidays: tuple[Holiday, ...] = ()
    stacking: Stacking = "best"
    welcome_bonus: WelcomeBonus | None = None

    def multiplier_for(self, category: str | None) -> int:
        """The category multiplier of a line (×1 for no or an unlisted category)."""
        if category is not None:
            for name, multiplier in self.category_multipliers:
                if name == category:
                    return multiplier
        return BP


@dataclass(frozen=True)
class Action:
    """Points for something other than a purchase (review, referral, survey, social post)."""

    key: str
    name: str
    points: int
    limit_per_member: int | None = None


@dataclass(frozen=True)
class PointsAsMoney:
    """Points paying part of a receipt: each worth ``point_value``, at most ``max_share`` of it."""

    point_value: int = 100
    max_share: int = BP


@dataclass(frozen=True)
class Reward:
    """A catalogue item bought with points; ``stock`` None means unlimited."""

    key: str
    name: str
    cost: int
    stock: int | None = None


@dataclass(frozen=True)
class FixedDiscount:
    """The same rate on every purchase, or only on lines of the listed categories."""

    rate: int
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RollingDays:
    """A progressive-discount period of the last ``days`` days, today included."""

    days: int


@dataclass(frozen=True)
class Bracket:
    """Rate while the spend in the period before a purchase is ≤ ``up_to`` (None: no bound)."""

    up_to: int | None
    rate: int


@dataclass(frozen=True)
class ProgressiveDiscount:
    """A rate chosen by the member's spend in the period before the purchase."""

    brackets: tuple[Bracket, ...]
    period: CalendarPeriod | RollingDays = "calendar_month"


Discount = FixedDiscount | ProgressiveDiscount


@dataclass(frozen=True)
class Cashback:
    """A share of the paid amount credited as points (needs points_as_money for their value)."""

    rate: int
    boosts_apply: bool = True


@dataclass(frozen=True)
class TierLevel:
    """A named level reached at ``threshold`` of the tier metric, with its benefits."""

    key: str
    name: str
    threshold: int
    multiplier: int = BP
    discount: int = 0


@dataclass(frozen=True)
class Tiers:
    """Levels by spend (minor units) or points earned over the last ``window_days`` days."""

    levels: tuple[TierLevel, ...]
    metric: TierMetric = "spend"
    window_days: int = 365


@dataclass(frozen=True)
class NoExpiry:
    """Points never expire."""


@dataclass(frozen=True)
class LifetimeExpiry:
    """Each accrual lives ``days`` days; members are warned ``warn_days`` before."""

    days: int = 365
    warn_days: int = 14


@dataclass(frozen=True)
class PeriodEndExpiry:
    """Points expire at the end of the promotion period they were earned in.

    Periods are ``period_months`` long and start on ``period_start`` (an anchor date whose day is
    1..28) and every ``period_months`` before and after it.
    """

    period_months: int = 12
    period_start: date = date(PERIOD_ANCHOR_YEAR, 1, 1)
    warn_days: int = 14


Expiry = NoExpiry | LifetimeExpiry | PeriodEndExpiry


@dataclass(frozen=True)
class Transfers:
    """Moving points between cards of the same program, within limits (None: no limit)."""

    enabled: bool = True
    min_points: int = 1
    max_points: int | None = None
    max_per_day: int | None = None


@dataclass(frozen=True)
class ProgramRules:
    """A whole, validated program configuration."""

    timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    earning: Earning = field(default_factory=Earning)
    actions: tuple[Action, ...] = ()
    points_as_money: PointsAsMoney | None = None
    require_scan_for_redemption: bool = False
    rewards: tuple[Reward, ...] = ()
    discount: Discount | None = None
    cashback: Cashback | None = None
    tiers: Tiers | None = None
    expiry: Expiry = field(default_factory=NoExpiry)
    transfers: Transfers | None = None

    def tier_level(self, key: str | None) -> TierLevel | None:
        """The level called ``key`` (None for no tier or one since removed from the program)."""
        if self.tiers is not None and key is not None:
            for level in self.tiers.levels:
                if level.key == key:
                    return level
        return None

    def action(self, key: str) -> Action | None:
        """The action called ``key``, if the program has it."""
        return next((action for action in self.actions if action.key == key), None)

    def reward(self, key: str) -> Reward | None:
        """The reward called ``key``, if the program has it."""
        return next((reward for reward in self.rewards if reward.key == key), None)


DEFAULT_RULES: dict[str, Any] = {
    # A coffee-shop style points card: 1 point per 10.00 spent, a point pays 1.00 (so 10 % back in
    # value), points pay at most 30 % of a receipt and live a year; double points in the birthday
    # week; 100 points for joining; the usual actions.
    "timezone": "Europe/Moscow",
    "currency": "RUB",
    "earning": {
        "points": 1,
        "per_amount": 1000,
        "threshold": 0,
        "max_points_per_purchase": None,
        "category_multipliers": {},
        "birthday": {"multiplier": 20000, "scope": "week", "gift": 0},
        "holidays": [],
        "stacking": "best",
        "welcome_bonus": {"points": 100, "on": "join"},
    },
    "actions": [
        {"key": "review", "name": "Review", "points": 50, "limit_per_member": 1},
        # Bounded so that one person cannot farm points with invented friends.
        {"key": "referral_referrer", "name": "Referral", "points": 100, "limit_per_member": 10},
        {
            "key": "referral_friend",
            "name": "Joined by referral",
            "points": 100,
            "limit_per_member": 1,
        },
        {"key": "survey", "name": "Survey", "points": 30, "limit_per_member": 1},
        {"key": "social", "name": "Social post", "points": 30, "limit_per_member": 1},
    ],
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "require_scan_for_redemption": False,
    "rewards": [],
    "discount": None,
    "cashback": None,
    "tiers": None,
    "expiry": {"mode": "lifetime", "days": 365, "warn_days": 14},
    "transfers": None,
}


# --- validation ------------------------------------------------------------------------------

_T = TypeVar("_T")
_ABSENT: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _get(mapping: Mapping[str, Any], key: str, default: object) -> Any:
    """An optional key's value: null means the same as absent."""
    value = mapping.get(key)
    return default if value is None else value


def _or(value: _T | None, fallback: _T) -> _T:
    """The parsed value, or a stand-in when it was invalid (the document fails anyway)."""
    return fallback if value is None else value


def _is_int(value: object) -> bool:
    # JSON true/false arrive as bool, a subclass of int: a flag is not a count.
    return isinstance(value, int) and not isinstance(value, bool)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# Files in the zoneinfo directory that are not zones a shop should pick.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def _valid_timezone(name: str) -> bool:
    """An IANA zone name that zoneinfo can load ("localtime" and other files do not count)."""
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    zones = _known_zones()
    return not zones or name in zones


class _Reader:
    """Walks a document and records every error instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, Text]] = []

    def error(self, path: str, message: str, **values: object) -> None:
        """Record ``message`` (marked with N_; its ``%(name)s`` filled from ``values``)."""
        self.errors.append((path, Text(message, values)))

    def obj(self, path: str, value: object, known: Sequence[str]) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, N_("must be an object"))
            return None
        for key in value:
            if key not in known:
                self.error(_join(path, str(key)), N_("unknown key"))
        return value

    def required(self, path: str, mapping: Mapping[str, Any], key: str) -> Any:
        if key not in mapping:
            self.error(_join(path, key), N_("is required"))
            return _ABSENT
        return mapping[key]

    def array(self, path: str, value: object) -> Sequence[Any] | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, list | tuple):
            self.error(path, N_("must be a list"))
            return None
        return value

    def integer(self, path: str, value: object, lo: int = 0, hi: int | None = None) -> int | None:
        if value is _ABSENT:
            return None
        if not _is_int(value):
            self.error(path, N_("must be an integer"))
            return None
        assert isinstance(value, int)
        if value < lo or (hi is not None and value > hi):
            if hi is not None:
                self.error(path, N_("must be between %(low)s and %(high)s"), low=lo, high=hi)
            else:
                self.error(path, N_("must be at least %(low)s"), low=lo)
            return None
        return value

    def optional_integer(
        self, path: str, value: object, lo: int = 0, hi: int | None = None
    ) -> int | None:
        return None if value is None else self.integer(path, value, lo, hi)

    def rate(self, path: str, value: object) -> int | None:
        return self.integer(path, value, 0, BP)

    def multiplier(self, path: str, value: object) -> int | None:
        return self.integer(path, value, BP, MAX_MULTIPLIER)

    def boolean(self, path: str, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, N_("must be true or false"))
            return None
        return value

    def text(self, path: str, value: object, max_length: int = NAME_MAX) -> str | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, str):
            self.error(path, N_("must be a string"))
            return None
        if not value.strip():
            self.error(path, N_("must not be empty"))
            return None
        if len(value) > max_length:
            self.error(path, N_("must be at most %(most)s characters"), most=max_length)
            return None
        return value

    def category(self, path: str, value: object) -> str | None:
        name = self.text(path, value, CATEGORY_MAX)
        if name is not None and name != name.strip():
            self.error(path, N_("must not start or end with spaces"))
            return None
        return name

    def key(self, path: str, value: object) -> str | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, str):
            self.error(path, N_("must be a string"))
            return None
        if not KEY_PATTERN.fullmatch(value):
            self.error(
                path,
                N_(
                    "must be 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter or "
                    "digit"
                ),
            )
            return None
        return value

    def choice(self, path: str, value: object, choices: Sequence[str]) -> str | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, str) or value not in choices:
            listed = ", ".join(f"'{choice}'" for choice in choices)
            self.error(path, N_("must be one of %(choices)s"), choices=listed)
            return None
        return value

    def iso_date(self, path: str, value: object) -> date | None:
        if value is _ABSENT:
            return None
        # date.fromisoformat alone also takes "20261224" and week dates: insist on YYYY-MM-DD.
        if isinstance(value, str) and ISO_DATE_PATTERN.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(path, N_("must be a date as YYYY-MM-DD"))
        return None

    def unique_keys(self, path: str, keys: Sequence[str | None]) -> None:
        seen: set[str] = set()
        for index, key in enumerate(keys):
            if key is None:
                continue
            if key in seen:
                self.error(f"{path}[{index}].key", N_("duplicate key '%(key)s'"), key=key)
            seen.add(key)


def _birthday(r: _Reader, path: str, value: object) -> BirthdayBoost | None:
    m = r.obj(path, value, ("multiplier", "scope", "gift"))
    if m is None:
        return None
    multiplier = r.multiplier(_join(path, "multiplier"), r.required(path, m, "multiplier"))
    scope = r.choice(_join(path, "scope"), _get(m, "scope", "day"), ("day", "week"))
    gift = r.integer(_join(path, "gift"), _get(m, "gift", 0), lo=0)
    return BirthdayBoost(
        multiplier=_or(multiplier, BP),
        scope="week" if scope == "week" else "day",
        gift=_or(gift, 0),
    )


def _holiday(r: _Reader, path: str, value: object) -> Holiday | None:
    m = r.obj(path, value, ("name", "start", "end", "multiplier"))
    if m is None:
        return None
    name = r.text(_join(path, "name"), r.required(path, m, "name"))
    start = r.iso_date(_join(path, "start"), r.required(path, m, "start"))
    end = r.iso_date(_join(path, "end"), r.required(path, m, "end"))
    multiplier = r.multiplier(_join(path, "multiplier"), r.required(path, m, "multiplier"))
    if start is not None and end is not None and end < start:
        r.error(_join(path, "end"), N_("must not be before start"))
    return Holiday(
        name=_or(name, ""),
        start=_or(start, date.min),
        end=_or(end, date.min),
        multiplier=_or(multiplier, BP),
    )


def _welcome(r: _Reader, path: str, value: object) -> WelcomeBonus | None:
    m = r.obj(path, value, ("points", "on"))
    if m is None:
        return None
    points = r.integer(_join(path, "points"), r.required(path, m, "points"), lo=1)
    on = r.choice(_join(path, "on"), _get(m, "on", "join"), ("join", "first_purchase"))
    return WelcomeBonus(
        points=_or(points, 1), on="first_purchase" if on == "first_purchase" else "join"
    )


def _category_multipliers(r: _Reader, path: str, value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, Mapping):
        r.error(path, N_("must be an object of category: multiplier"))
        return ()
    pairs: list[tuple[str, int]] = []
    for raw_name, raw_multiplier in value.items():
        item_path = _join(path, str(raw_name))
        name = r.category(item_path, raw_name)
        multiplier = r.multiplier(item_path, raw_multiplier)
        if name is not None and multiplier is not None:
            pairs.append((name, multiplier))
    return tuple(sorted(pairs))


def _earning(r: _Reader, path: str, value: object) -> Earning:
    known = (
        "points",
        "per_amount",
        "threshold",
        "max_points_per_purchase",
        "category_multipliers",
        "birthday",
        "holidays",
        "stacking",
        "welcome_bonus",
    )
    m = r.obj(path, value, known)
    if m is None:
        return Earning()
    points = r.integer(_join(path, "points"), _get(m, "points", 1))
    per_amount = r.integer(_join(path, "per_amount"), _get(m, "per_amount", 1000), lo=1)
    threshold = r.integer(_join(path, "threshold"), _get(m, "threshold", 0))
    cap = r.optional_integer(
        _join(path, "max_points_per_purchase"), _get(m, "max_points_per_purchase", None), lo=1
    )
    categories = _category_multipliers(
        r, _join(path, "category_multipliers"), _get(m, "category_multipliers", {})
    )
    birthday = _get(m, "birthday", None)
    holidays: list[Holiday] = []
    raw_holidays = r.array(_join(path, "holidays"), _get(m, "holidays", []))
    for index, item in enumerate(raw_holidays or ()):
        holiday = _holiday(r, f"{path}.holidays[{index}]", item)
        if holiday is not None:
            holidays.append(holiday)
    stacking = r.choice(_join(path, "stacking"), _get(m, "stacking", "best"), ("best", "multiply"))
    welcome = _get(m, "welcome_bonus", None)
    return Earning(
        points=_or(points, 1),
        per_amount=_or(per_amount, 1000),
        threshold=_or(threshold, 0),
        max_points_per_purchase=cap,
        category_multipliers=categories,
        birthday=None if birthday is None else _birthday(r, _join(path, "birthday"), birthday),
        holidays=tuple(holidays),
        stacking="multiply" if stacking == "multiply" else "best",
        welcome_bonus=None
        if welcome is None
        else _welcome(r, _join(path, "welcome_bonus"), welcome),
    )


def _actions(r: _Reader, path: str, value: object) -> tuple[Action, ...]:
    actions: list[Action] = []
    keys: list[str | None] = []
    for index, item in enumerate(r.array(path, value) or ()):
        item_path = f"{path}[{index}]"
        m = r.obj(item_path, item, ("key", "name", "points", "limit_per_member"))
        if m is None:
            keys.append(None)
            continue
        key = r.key(_join(item_path, "key"), r.required(item_path, m, "key"))
        name = r.text(_join(item_path, "name"), r.required(item_path, m, "name"))
        points = r.integer(_join(item_path, "points"), r.required(item_path, m, "points"), lo=1)
        limit = r.optional_integer(
            _join(item_path, "limit_per_member"), _get(m, "limit_per_member", None), lo=1
        )
        keys.append(key)
        actions.append(Action(_or(key, ""), _or(name, ""), _or(points, 1), limit))
    r.unique_keys(path, keys)
    return tuple(actions)


def _rewards(r: _Reader, path: str, value: object) -> tuple[Reward, ...]:
    rewards: list[Reward] = []
    keys: list[str | None] = []
    for index, item in enumerate(r.array(path, value) or ()):
        item_path = f"{path}[{index}]"
        m = r.obj(item_path, item, ("key", "name", "cost", "stock"))
        if m is None:
            keys.append(None)
            continue
        key = r.key(_join(item_path, "key"), r.required(item_path, m, "key"))
        name = r.text(_join(item_path, "name"), r.required(item_path, m, "name"))
        cost = r.integer(_join(item_path, "cost"), r.required(item_path, m, "cost"), lo=1)
        stock = r.optional_integer(_join(item_path, "stock"), _get(m, "stock", None))
        keys.append(key)
        rewards.append(Reward(_or(key, ""), _or(name, ""), _or(cost, 1), stock))
    r.unique_keys(path, keys)
    return tuple(rewards)


def _points_as_money(r: _Reader, path: str, value: object) -> PointsAsMoney | None:
    m = r.obj(path, value, ("point_value", "max_share"))
    if m is None:
        return None
    point_value = r.integer(_join(path, "point_value"), _get(m, "point_value", 100), lo=1)
    max_share = r.rate(_join(path, "max_share"), _get(m, "max_share", BP))
    return PointsAsMoney(point_value=_or(point_value, 100), max_share=_or(max_share, BP))


def _fixed(r: _Reader, path: str, value: object) -> FixedDiscount | None:
    m = r.obj(path, value, ("rate", "categories"))
    if m is None:
        return None
    rate = r.rate(_join(path, "rate"), r.required(path, m, "rate"))
    categories: tuple[str, ...] | None = None
    raw = _get(m, "categories", None)
    if raw is not None:
        items = r.array(_join(path, "categories"), raw)
        if items is not None and not items:
            r.error(_join(path, "categories"), N_("must not be empty (null means every category)"))
        names: list[str] = []
        for index, item in enumerate(items or ()):
            name = r.category(f"{path}.categories[{index}]", item)
            if name is not None and name in names:
                r.error(
                    f"{path}.categories[{index}]",
                    N_("duplicate category '%(category)s'"),
                    category=name,
                )
            elif name is not None:
                names.append(name)
        categories = tuple(names)
    return FixedDiscount(rate=_or(rate, 0), categories=categories)


def _period(r: _Reader, path: str, value: object) -> CalendarPeriod | RollingDays:
    if value == "calendar_year":
        return "calendar_year"
    if value == "calendar_month":
        return "calendar_month"
    if isinstance(value, Mapping):
        m = r.obj(path, value, ("rolling_days",))
        assert m is not None
        days = r.integer(_join(path, "rolling_days"), r.required(path, m, "rolling_days"), 1, 3660)
        return RollingDays(_or(days, 1))
    r.error(path, N_("must be 'calendar_month', 'calendar_year' or {\"rolling_days\": N}"))
    return "calendar_month"


def _progressive(r: _Reader, path: str, value: object) -> ProgressiveDiscount | None:
    m = r.obj(path, value, ("period", "brackets"))
    if m is None:
        return None
    period = _period(r, _join(path, "period"), _get(m, "period", "calendar_month"))
    brackets: list[Bracket] = []
    raw_brackets = r.array(_join(path, "brackets"), r.required(path, m, "brackets"))
    if raw_brackets is not None and not raw_brackets:
        r.error(_join(path, "brackets"), N_("must have at least one bracket"))
    previous: int | None = None
    last = len(raw_brackets or ()) - 1
    for index, item in enumerate(raw_brackets or ()):
        item_path = f"{path}.brackets[{index}]"
        bm = r.obj(item_path, item, ("up_to", "rate"))
        if bm is None:
            continue
        up_path = _join(item_path, "up_to")
        raw_up_to = r.required(item_path, bm, "up_to")
        up_to = r.optional_integer(up_path, raw_up_to)
        rate = r.rate(_join(item_path, "rate"), r.required(item_path, bm, "rate"))
        if raw_up_to is None and index != last:
            r.error(up_path, N_("only the last bracket may be open-ended (null)"))
        elif raw_up_to is not None and raw_up_to is not _ABSENT and index == last:
            r.error(up_path, N_("the last bracket must be open-ended (null)"))
        if up_to is not None:
            if previous is not None and up_to <= previous:
                r.error(
                    up_path,
                    N_("must be greater than the previous bracket's up_to (%(previous)s)"),
                    previous=previous,
                )
            previous = up_to
        brackets.append(Bracket(up_to=up_to, rate=_or(rate, 0)))
    return ProgressiveDiscount(brackets=tuple(brackets), period=period)


def _discount(r: _Reader, path: str, value: object) -> Discount | None:
    m = r.obj(path, value, ("fixed", "progressive"))
    if m is None:
        return None
    if len({"fixed", "progressive"} & set(m)) != 1:
        r.error(path, N_("must have exactly one of 'fixed', 'progressive'"))
        return None
    if "fixed" in m:
        return _fixed(r, _join(path, "fixed"), m["fixed"])
    return _progressive(r, _join(path, "progressive"), m["progressive"])


def _cashback(r: _Reader, path: str, value: object) -> Cashback | None:
    m = r.obj(path, value, ("rate", "boosts_apply"))
    if m is None:
        return None
    rate = r.rate(_join(path, "rate"), r.required(path, m, "rate"))
    boosts = r.boolean(_join(path, "boosts_apply"), _get(m, "boosts_apply", True))
    return Cashback(rate=_or(rate, 0), boosts_apply=_or(boosts, True))


def _tiers(r: _Reader, path: str, value: object) -> Tiers | None:
    m = r.obj(path, value, ("metric", "window_days", "levels"))
    if m is None:
        return None
    metric = r.choice(_join(path, "metric"), _get(m, "metric", "spend"), ("spend", "points"))
    window = r.integer(_join(path, "window_days"), _get(m, "window_days", 365), 1, 3660)
    levels: list[TierLevel] = []
    keys: list[str | None] = []
    levels_path = _join(path, "levels")
    raw_levels = r.array(levels_path, r.required(path, m, "levels"))
    if raw_levels is not None and not raw_levels:
        r.error(levels_path, N_("must have at least one level"))
    previous: int | None = None
    for index, item in enumerate(raw_levels or ()):
        item_path = f"{levels_path}[{index}]"
        lm = r.obj(item_path, item, ("key", "name", "threshold", "multiplier", "discount"))
        if lm is None:
            keys.append(None)
            continue
        key = r.key(_join(item_path, "key"), r.required(item_path, lm, "key"))
        name = r.text(_join(item_path, "name"), r.required(item_path, lm, "name"))
        threshold_path = _join(item_path, "threshold")
        threshold = r.integer(threshold_path, r.required(item_path, lm, "threshold"))
        multiplier = r.multiplier(_join(item_path, "multiplier"), _get(lm, "multiplier", BP))
        discount = r.rate(_join(item_path, "discount"), _get(lm, "discount", 0))
        if threshold is not None:
            if index == 0 and threshold != 0:
                r.error(threshold_path, N_("the first level's threshold must be 0"))
            elif previous is not None and threshold <= previous:
                r.error(
                    threshold_path,
                    N_("must be greater than the previous level's threshold (%(previous)s)"),
                    previous=previous,
                )
            previous = threshold
        keys.append(key)
        levels.append(
            TierLevel(
                key=_or(key, ""),
                name=_or(name, ""),
                threshold=_or(threshold, 0),
                multiplier=_or(multiplier, BP),
                discount=_or(discount, 0),
            )
        )
    r.unique_keys(levels_path, keys)
    return Tiers(
        levels=tuple(levels),
        metric="points" if metric == "points" else "spend",
        window_days=_or(window, 365),
    )


def _period_start(r: _Reader, path: str, value: object) -> date | None:
    if isinstance(value, str):
        match = MONTH_DAY_PATTERN.fullmatch(value)
        if match:
            text = f"{PERIOD_ANCHOR_YEAR}-{value}"
        elif ISO_DATE_PATTERN.fullmatch(value):
            text = value
        else:
            text = ""
        try:
            anchor = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            if anchor.day > 28:
                r.error(path, N_("day must be 1..28 so that every period starts on a real date"))
                return None
            return anchor
    r.error(path, N_("must be a date as MM-DD or YYYY-MM-DD"))
    return None


def _expiry(r: _Reader, path: str, value: object) -> Expiry:
    if not isinstance(value, Mapping):
        r.error(path, N_("must be an object"))
        return NoExpiry()
    mode = r.choice(
        _join(path, "mode"), r.required(path, value, "mode"), ("none", "lifetime", "period_end")
    )
    if mode == "lifetime":
        m = r.obj(path, value, ("mode", "days", "warn_days"))
        assert m is not None
        days = r.integer(_join(path, "days"), _get(m, "days", 365), lo=1)
        warn = r.integer(_join(path, "warn_days"), _get(m, "warn_days", 14))
        return LifetimeExpiry(days=_or(days, 365), warn_days=_or(warn, 14))
    if mode == "period_end":
        m = r.obj(path, value, ("mode", "period_months", "period_start", "warn_days"))
        assert m is not None
        months = r.integer(_join(path, "period_months"), _get(m, "period_months", 12), 1, 120)
        start = _period_start(r, _join(path, "period_start"), _get(m, "period_start", "01-01"))
        warn = r.integer(_join(path, "warn_days"), _get(m, "warn_days", 14))
        return PeriodEndExpiry(
            period_months=_or(months, 12),
            period_start=_or(start, date(PERIOD_ANCHOR_YEAR, 1, 1)),
            warn_days=_or(warn, 14),
        )
    if mode == "none":
        r.obj(path, value, ("mode",))
    return NoExpiry()


def _transfers(r: _Reader, path: str, value: object) -> Transfers | None:
    m = r.obj(path, value, ("enabled", "min_points", "max_points", "max_per_day"))
    if m is None:
        return None
    enabled = r.boolean(_join(path, "enabled"), _get(m, "enabled", True))
    low = r.integer(_join(path, "min_points"), _get(m, "min_points", 1), lo=1)
    high = r.optional_integer(_join(path, "max_points"), _get(m, "max_points", None), lo=1)
    per_day = r.optional_integer(_join(path, "max_per_day"), _get(m, "max_per_day", None), lo=1)
    if low is not None and high is not None and high < low:
        r.error(_join(path, "max_points"), N_("must be at least min_points"))
    return Transfers(
        enabled=_or(enabled, True), min_points=_or(low, 1), max_points=high, max_per_day=per_day
    )


def _section(
    r: _Reader,
    m: Mapping[str, Any],
    name: str,
    parse: Callable[[_Reader, str, object], _T | None],
) -> _T | None:
    """An optional top-level section: None when absent or null."""
    value = m.get(name)
    return None if value is None else parse(r, name, value)


_TOP_KEYS = (
    "timezone",
    "currency",
    "earning",
    "actions",
    "points_as_money",
    "require_scan_for_redemption",
    "rewards",
    "discount",
    "cashback",
    "tiers",
    "expiry",
    "transfers",
)


@lru_cache(maxsize=256)
def parse_rules_document(document: str) -> ProgramRules:
    """The rules of a JSON document, cached by its text: programs change rules rarely, and every
    till request needs them (so a request pays a hash of the text, not a parse)."""
    return parse_rules(json.loads(document))


def parse_rules(data: Mapping[str, Any]) -> ProgramRules:
    """Validate a rules document; raise RulesError listing every problem, or return the rules."""
    r = _Reader()
    m = r.obj("", data, _TOP_KEYS)
    if m is None:
        raise RulesError(r.errors)

    timezone = r.text("timezone", _get(m, "timezone", "Europe/Moscow"))
    if timezone is not None and not _valid_timezone(timezone):
        r.error("timezone", N_("must be an IANA time zone such as 'Europe/Moscow'"))
    currency = _get(m, "currency", "RUB")
    if not isinstance(currency, str) or not CURRENCY_PATTERN.fullmatch(currency):
        r.error("currency", N_("must be an ISO 4217 code: 3 capital letters"))

    earning_raw = m.get("earning")
    earning = Earning() if earning_raw is None else _earning(r, "earning", earning_raw)
    points_as_money = _section(r, m, "points_as_money", _points_as_money)
    scan = r.boolean("require_scan_for_redemption", _get(m, "require_scan_for_redemption", False))
    cashback = _section(r, m, "cashback", _cashback)
    if cashback is not None and m.get("points_as_money") is None:
        r.error(
            "cashback",
            N_("requires points_as_money (cashback is credited as points of that value)"),
        )
    expiry_raw = m.get("expiry")
    discount_raw = m.get("discount")
    discount = None if discount_raw is None else _discount(r, "discount", discount_raw)
    rules = ProgramRules(
        timezone=_or(timezone, "Europe/Moscow"),
        currency=currency if isinstance(currency, str) else "RUB",
        earning=earning,
        actions=_actions(r, "actions", _get(m, "actions", [])),
        points_as_money=points_as_money,
        require_scan_for_redemption=_or(scan, False),
        rewards=_rewards(r, "rewards", _get(m, "rewards", [])),
        discount=discount,
        cashback=cashback,
        tiers=_section(r, m, "tiers", _tiers),
        expiry=NoExpiry() if expiry_raw is None else _expiry(r, "expiry", expiry_raw),
        transfers=_section(r, m, "transfers", _transfers),
    )
    if r.errors:
        raise RulesError(r.errors)
    return rules


# --- back to JSON ----------------------------------------------------------------------------


def _earning_to_dict(earning: Earning) -> dict[str, Any]:
    birthday = earning.birthday
    welcome = earning.welcome_bonus
    return {
        "points": earning.points,
        "per_amount": earning.per_amount,
        "threshold": earning.threshold,
        "max_points_per_purchase": earning.max_points_per_purchase,
        "category_multipliers": dict(earning.category_multipliers),
        "birthday": None
        if birthday is None
        else {"multiplier": birthday.multiplier, "scope": birthday.scope, "gift": birthday.gift},
        "holidays": [
            {
                "name": holiday.name,
                "start": holiday.start.isoformat(),
                "end": holiday.end.isoformat(),
                "multiplier": holiday.multiplier,
            }
            for holiday in earning.holidays
        ],
        "stacking": earning.stacking,
        "welcome_bonus": None if welcome is None else {"points": welcome.points, "on": welcome.on},
    }


def _discount_to_dict(discount: Discount | None) -> dict[str, Any] | None:
    if discount is None:
        return None
    if isinstance(discount, FixedDiscount):
        categories = None if discount.categories is None else list(discount.categories)
        return {"fixed": {"rate": discount.rate, "categories": categories}}
    period: str | dict[str, int] = (
        {"rolling_days": discount.period.days}
        if isinstance(discount.period, RollingDays)
        else discount.period
    )
    brackets = [{"up_to": b.up_to, "rate": b.rate} for b in discount.brackets]
    return {"progressive": {"period": period, "brackets": brackets}}


def _expiry_to_dict(expiry: Expiry) -> dict[str, Any]:
    if isinstance(expiry, LifetimeExpiry):
        return {"mode": "lifetime", "days": expiry.days, "warn_days": expiry.warn_days}
    if isinstance(expiry, PeriodEndExpiry):
        anchor = expiry.period_start
        start = (
            anchor.strftime("%m-%d") if anchor.year == PERIOD_ANCHOR_YEAR else anchor.isoformat()
        )
        return {
            "mode": "period_end",
            "period_months": expiry.period_months,
            "period_start": start,
            "warn_days": expiry.warn_days,
        }
    return {"mode": "none"}


def rules_to_dict(rules: ProgramRules) -> dict[str, Any]:
    """The canonical JSON form: every key explicit, so stored documents show what applies."""
    money = rules.points_as_money
    tiers = rules.tiers
    transfers = rules.transfers
    cashback = rules.cashback
    return {
        "timezone": rules.timezone,
        "currency": rules.currency,
        "earning": _earning_to_dict(rules.earning),
        "actions": [
            {
                "key": action.key,
                "name": action.name,
                "points": action.points,
                "limit_per_member": action.limit_per_member,
            }
            for action in rules.actions
        ],
        "points_as_money": None
        if money is None
        else {"point_value": money.point_value, "max_share": money.max_share},
        "require_scan_for_redemption": rules.require_scan_for_redemption,
        "rewards": [
            {"key": reward.key, "name": reward.name, "cost": reward.cost, "stock": reward.stock}
            for reward in rules.rewards
        ],
        "discount": _discount_to_dict(rules.discount),
        "cashback": None
        if cashback is None
        else {"rate": cashback.rate, "boosts_apply": cashback.boosts_apply},
        "tiers": None
        if tiers is None
        else {
            "metric": tiers.metric,
            "window_days": tiers.window_days,
            "levels": [
                {
                    "key": level.key,
                    "name": level.name,
                    "threshold": level.threshold,
                    "multiplier": level.multiplier,
                    "discount": level.discount,
                }
                for level in tiers.levels
            ],
        },
        "expiry": _expiry_to_dict(rules.expiry),
        "transfers": None
        if transfers is None
        else {
            "enabled": transfers.enabled,
            "min_points": transfers.min_points,
            "max_points": transfers.max_points,
            "max_per_day": transfers.max_per_day,
        },
    }
