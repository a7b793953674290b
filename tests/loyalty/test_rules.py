"""The rules document: every validation rule names its field, and valid documents round-trip."""

import copy
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from passes.loyalty.rules import (
    DEFAULT_RULES,
    BirthdayBoost,
    Bracket,
    Earning,
    FixedDiscount,
    LifetimeExpiry,
    NoExpiry,
    PeriodEndExpiry,
    ProgramRules,
    ProgressiveDiscount,
    RollingDays,
    RulesError,
    TierLevel,
    parse_rules,
    rules_to_dict,
)

FULL: dict[str, Any] = {
    "timezone": "Europe/Moscow",
    "currency": "RUB",
    "earning": {
        "points": 1,
        "per_amount": 1000,
        "threshold": 0,
        "max_points_per_purchase": 500,
        "category_multipliers": {"pastry": 20000},
        "birthday": {"multiplier": 20000, "scope": "week"},
        "holidays": [
            {"name": "New Year", "start": "2026-12-24", "end": "2027-01-08", "multiplier": 30000}
        ],
        "stacking": "best",
        "welcome_bonus": {"points": 100, "on": "first_purchase"},
    },
    "actions": [
        {"key": "review", "name": "Review", "points": 50, "limit_per_member": 1},
        {"key": "referral_referrer", "name": "Referrer", "points": 100, "limit_per_member": None},
        {"key": "referral_friend", "name": "Friend", "points": 100, "limit_per_member": 1},
        {"key": "survey", "name": "Survey", "points": 30, "limit_per_member": 1},
    ],
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "require_scan_for_redemption": True,
    "rewards": [{"key": "free-coffee", "name": "Free coffee", "cost": 150, "stock": None}],
    "discount": {
        "progressive": {
            "period": "calendar_month",
            "brackets": [
                {"up_to": 1000000, "rate": 500},
                {"up_to": 2000000, "rate": 700},
                {"up_to": None, "rate": 1000},
            ],
        }
    },
    "cashback": {"rate": 300, "boosts_apply": True},
    "tiers": {
        "metric": "spend",
        "window_days": 365,
        "levels": [
            {
                "key": "lover",
                "name": "Любитель",
                "threshold": 0,
                "multiplier": 10000,
                "discount": 0,
            },
            {
                "key": "gourmet",
                "name": "Гурман",
                "threshold": 1000000,
                "multiplier": 12500,
                "discount": 300,
            },
            {
                "key": "coffee-fan",
                "name": "Кофеман",
                "threshold": 3000000,
                "multiplier": 15000,
                "discount": 500,
            },
        ],
    },
    "expiry": {"mode": "period_end", "period_months": 12, "period_start": "01-01", "warn_days": 14},
    "transfers": {"enabled": True, "min_points": 1, "max_points": 5000, "max_per_day": 3},
}


DELETE = object()


def doc(**changes: Any) -> dict[str, Any]:
    """FULL with dotted-path changes: ``doc(**{"earning.threshold": -1})``; a value of DELETE
    removes the key."""
    result = copy.deepcopy(FULL)
    for dotted, value in changes.items():
        target: Any = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if value is DELETE:
            del target[last]
        elif isinstance(target, list) and int(last) == len(target):
            target.append(value)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return result


def errors_of(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(RulesError) as caught:
        parse_rules(document)
    return caught.value.errors


# --- valid documents ------------------------------------------------------------------------


def test_full_document_parses_into_dataclasses() -> None:
    rules = parse_rules(FULL)
    assert rules.earning.birthday == BirthdayBoost(multiplier=20000, scope="week")
    assert rules.earning.multiplier_for("pastry") == 20000
    assert rules.earning.multiplier_for("coffee") == 10000
    assert rules.earning.multiplier_for(None) == 10000
    assert rules.earning.holidays[0].start == date(2026, 12, 24)
    assert rules.discount == ProgressiveDiscount(
        brackets=(Bracket(1000000, 500), Bracket(2000000, 700), Bracket(None, 1000)),
        period="calendar_month",
    )
    assert rules.tiers is not None
    assert rules.tiers.levels[1] == TierLevel("gourmet", "Гурман", 1000000, 12500, 300)
    assert rules.tier_level("gourmet") == rules.tiers.levels[1]
    assert rules.tier_level("gone") is None
    assert rules.tier_level(None) is None
    assert rules.expiry == PeriodEndExpiry(12, date(2000, 1, 1), 14)
    assert rules.action("review") is not None
    assert rules.action("nope") is None
    reward = rules.reward("free-coffee")
    assert reward is not None and reward.cost == 150


def test_empty_document_gives_documented_defaults() -> None:
    rules = parse_rules({})
    assert rules == ProgramRules()
    assert rules.timezone == "Europe/Moscow"
    assert rules.currency == "RUB"
    assert rules.earning == Earning(points=1, per_amount=1000, threshold=0, stacking="best")
    assert rules.expiry == NoExpiry()
    assert rules.points_as_money is None
    assert rules.discount is None
    assert rules.tiers is None


def test_null_means_absent_for_optional_keys() -> None:
    nulls = {key: None for key in FULL}
    assert parse_rules(nulls) == ProgramRules()
    earning = {key: None for key in FULL["earning"]}
    assert parse_rules({"earning": earning}) == ProgramRules()


def test_defaults_inside_sections() -> None:
    rules = parse_rules(
        {
            "points_as_money": {},
            "expiry": {"mode": "lifetime"},
            "transfers": {},
            "cashback": {"rate": 100},
            "discount": {"progressive": {"brackets": [{"up_to": None, "rate": 100}]}},
            "tiers": {"levels": [{"key": "base", "name": "Base", "threshold": 0}]},
            "earning": {"birthday": {"multiplier": 15000}, "welcome_bonus": {"points": 5}},
        }
    )
    assert rules.points_as_money is not None
    assert (rules.points_as_money.point_value, rules.points_as_money.max_share) == (100, 10000)
    assert rules.expiry == LifetimeExpiry(days=365, warn_days=14)
    assert rules.transfers is not None and rules.transfers.min_points == 1
    assert rules.cashback is not None and rules.cashback.boosts_apply is True
    assert isinstance(rules.discount, ProgressiveDiscount)
    assert rules.discount.period == "calendar_month"
    assert rules.tiers is not None and rules.tiers.metric == "spend"
    assert rules.tiers.window_days == 365
    assert rules.tiers.levels[0].multiplier == 10000 and rules.tiers.levels[0].discount == 0
    assert rules.earning.birthday is not None and rules.earning.birthday.scope == "day"
    assert rules.earning.welcome_bonus is not None and rules.earning.welcome_bonus.on == "join"


def test_default_rules_are_valid_and_documented_values() -> None:
    rules = parse_rules(DEFAULT_RULES)
    assert (rules.earning.points, rules.earning.per_amount) == (1, 1000)
    assert rules.points_as_money is not None
    assert rules.points_as_money.max_share == 3000
    assert {action.key for action in rules.actions} >= {
        "review",
        "referral_referrer",
        "referral_friend",
        "survey",
    }
    assert rules_to_dict(rules) == DEFAULT_RULES


def test_other_shapes_of_discount_period_and_expiry() -> None:
    rules = parse_rules(
        {
            "discount": {"fixed": {"rate": 500, "categories": ["books"]}},
            "expiry": {"mode": "period_end", "period_months": 24, "period_start": "2025-04-01"},
        }
    )
    assert rules.discount == FixedDiscount(rate=500, categories=("books",))
    assert rules.expiry == PeriodEndExpiry(24, date(2025, 4, 1), 14)
    rolling = parse_rules(
        {
            "discount": {
                "progressive": {
                    "period": {"rolling_days": 30},
                    "brackets": [{"up_to": None, "rate": 100}],
                }
            }
        }
    )
    assert isinstance(rolling.discount, ProgressiveDiscount)
    assert rolling.discount.period == RollingDays(30)
    for document in (rules, rolling):
        assert parse_rules(rules_to_dict(document)) == document


def test_round_trip_of_full_document_is_json_ready() -> None:
    rules = parse_rules(FULL)
    as_json = json.loads(json.dumps(rules_to_dict(rules)))
    assert parse_rules(as_json) == rules
    assert as_json["expiry"]["period_start"] == "01-01"


# --- every validation rule, with its field path ---------------------------------------------

KEY_MESSAGE = "must be 1-40 characters"
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, changes to FULL, expected path, expected message fragment)
    ("unknown-top", {"bogus": 1}, "bogus", "unknown key"),
    ("unknown-nested", {"earning.bogus": 1}, "earning.bogus", "unknown key"),
    ("unknown-in-list", {"rewards.0.color": "red"}, "rewards[0].color", "unknown key"),
    ("unknown-in-tier", {"tiers.levels.1.perk": "x"}, "tiers.levels[1].perk", "unknown key"),
    ("tz-unknown", {"timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
    ("tz-not-a-zone", {"timezone": "localtime"}, "timezone", "IANA time zone"),
    ("tz-path", {"timezone": "../etc/passwd"}, "timezone", "IANA time zone"),
    ("tz-type", {"timezone": 3}, "timezone", "must be a string"),
    ("currency-lower", {"currency": "rub"}, "currency", "ISO 4217"),
    ("currency-long", {"currency": "RUBL"}, "currency", "ISO 4217"),
    ("currency-number", {"currency": 643}, "currency", "ISO 4217"),
    ("earning-type", {"earning": []}, "earning", "must be an object"),
    ("points-bool", {"earning.points": True}, "earning.points", "must be an integer"),
    ("points-float", {"earning.points": 1.0}, "earning.points", "must be an integer"),
    ("points-string", {"earning.points": "1"}, "earning.points", "must be an integer"),
    ("points-negative", {"earning.points": -1}, "earning.points", "at least 0"),
    ("per-amount-zero", {"earning.per_amount": 0}, "earning.per_amount", "at least 1"),
    ("threshold-negative", {"earning.threshold": -1}, "earning.threshold", "at least 0"),
    ("threshold-bool", {"earning.threshold": False}, "earning.threshold", "must be an integer"),
    (
        "max-points-zero",
        {"earning.max_points_per_purchase": 0},
        "earning.max_points_per_purchase",
        "at least 1",
    ),
    (
        "categories-type",
        {"earning.category_multipliers": ["pastry"]},
        "earning.category_multipliers",
        "must be an object",
    ),
    (
        "category-multiplier-low",
        {"earning.category_multipliers": {"pastry": 5000}},
        "earning.category_multipliers.pastry",
        "between 10000 and 100000",
    ),
    (
        "category-multiplier-high",
        {"earning.category_multipliers": {"pastry": 100001}},
        "earning.category_multipliers.pastry",
        "between 10000 and 100000",
    ),
    (
        "category-blank",
        {"earning.category_multipliers": {" ": 20000}},
        "earning.category_multipliers. ",
        "must not be empty",
    ),
    (
        "category-spaces",
        {"earning.category_multipliers": {" pastry": 20000}},
        "earning.category_multipliers. pastry",
        "spaces",
    ),
    ("birthday-type", {"earning.birthday": 20000}, "earning.birthday", "must be an object"),
    (
        "birthday-multiplier-missing",
        {"earning.birthday": {"scope": "day"}},
        "earning.birthday.multiplier",
        "is required",
    ),
    (
        "birthday-multiplier-low",
        {"earning.birthday.multiplier": 9999},
        "earning.birthday.multiplier",
        "between 10000 and 100000",
    ),
    ("birthday-scope", {"earning.birthday.scope": "month"}, "earning.birthday.scope", "one of"),
    ("holidays-type", {"earning.holidays": {}}, "earning.holidays", "must be a list"),
    (
        "holiday-end-before-start",
        {"earning.holidays.0.end": "2026-12-23"},
        "earning.holidays[0].end",
        "must not be before start",
    ),
    (
        "holiday-date-compact",
        {"earning.holidays.0.start": "20261224"},
        "earning.holidays[0].start",
        "YYYY-MM-DD",
    ),
    (
        "holiday-date-impossible",
        {"earning.holidays.0.start": "2026-02-30"},
        "earning.holidays[0].start",
        "YYYY-MM-DD",
    ),
    (
        "holiday-date-datetime",
        {"earning.holidays.0.end": "2027-01-08T00:00"},
        "earning.holidays[0].end",
        "YYYY-MM-DD",
    ),
    (
        "holiday-name-missing",
        {"earning.holidays.0.name": DELETE},
        "earning.holidays[0].name",
        "is required",
    ),
    (
        "holiday-name-blank",
        {"earning.holidays.0.name": "  "},
        "earning.holidays[0].name",
        "must not be empty",
    ),
    (
        "holiday-multiplier",
        {"earning.holidays.0.multiplier": 300},
        "earning.holidays[0].multiplier",
        "between 10000 and 100000",
    ),
    ("stacking", {"earning.stacking": "sum"}, "earning.stacking", "'best', 'multiply'"),
    (
        "welcome-points",
        {"earning.welcome_bonus.points": 0},
        "earning.welcome_bonus.points",
        "at least 1",
    ),
    ("welcome-on", {"earning.welcome_bonus.on": "signup"}, "earning.welcome_bonus.on", "one of"),
    ("actions-type", {"actions": {}}, "actions", "must be a list"),
    ("action-type", {"actions.0": "review"}, "actions[0]", "must be an object"),
    ("action-key-upper", {"actions.0.key": "Review"}, "actions[0].key", KEY_MESSAGE),
    ("action-key-dup", {"actions.1.key": "review"}, "actions[1].key", "duplicate key 'review'"),
    ("action-points-zero", {"actions.0.points": 0}, "actions[0].points", "at least 1"),
    (
        "action-limit-zero",
        {"actions.0.limit_per_member": 0},
        "actions[0].limit_per_member",
        "at least 1",
    ),
    ("action-name-missing", {"actions.0.name": DELETE}, "actions[0].name", "is required"),
    (
        "action-name-long",
        {"actions.0.name": "x" * 101},
        "actions[0].name",
        "at most 100 characters",
    ),
    (
        "point-value-zero",
        {"points_as_money.point_value": 0},
        "points_as_money.point_value",
        "at least 1",
    ),
    (
        "max-share-over",
        {"points_as_money.max_share": 10001},
        "points_as_money.max_share",
        "between 0 and 10000",
    ),
    (
        "max-share-negative",
        {"points_as_money.max_share": -1},
        "points_as_money.max_share",
        "between 0 and 10000",
    ),
    (
        "scan-flag",
        {"require_scan_for_redemption": 1},
        "require_scan_for_redemption",
        "true or false",
    ),
    ("reward-cost-zero", {"rewards.0.cost": 0}, "rewards[0].cost", "at least 1"),
    ("reward-cost-missing", {"rewards.0.cost": DELETE}, "rewards[0].cost", "is required"),
    ("reward-stock-negative", {"rewards.0.stock": -1}, "rewards[0].stock", "at least 0"),
    ("reward-key-long", {"rewards.0.key": "a" * 41}, "rewards[0].key", KEY_MESSAGE),
    ("reward-key-dash-first", {"rewards.0.key": "-coffee"}, "rewards[0].key", KEY_MESSAGE),
    ("reward-key-newline", {"rewards.0.key": "coffee\n"}, "rewards[0].key", KEY_MESSAGE),
    ("reward-key-cyrillic", {"rewards.0.key": "кофе"}, "rewards[0].key", KEY_MESSAGE),
    ("reward-key-space", {"rewards.0.key": "free coffee"}, "rewards[0].key", KEY_MESSAGE),
    (
        "reward-key-dup",
        {"rewards.1": {"key": "free-coffee", "name": "Again", "cost": 1}},
        "rewards[1].key",
        "duplicate key",
    ),
    (
        "discount-both",
        {"discount": {"fixed": {"rate": 1}, "progressive": {"brackets": []}}},
        "discount",
        "exactly one of",
    ),
    ("discount-neither", {"discount": {}}, "discount", "exactly one of"),
    (
        "fixed-rate-over",
        {"discount": {"fixed": {"rate": 10001}}},
        "discount.fixed.rate",
        "between 0 and 10000",
    ),
    (
        "fixed-rate-missing",
        {"discount": {"fixed": {"categories": ["books"]}}},
        "discount.fixed.rate",
        "is required",
    ),
    (
        "fixed-categories-empty",
        {"discount": {"fixed": {"rate": 500, "categories": []}}},
        "discount.fixed.categories",
        "must not be empty",
    ),
    (
        "fixed-categories-dup",
        {"discount": {"fixed": {"rate": 500, "categories": ["books", "books"]}}},
        "discount.fixed.categories[1]",
        "duplicate category",
    ),
    (
        "fixed-categories-type",
        {"discount": {"fixed": {"rate": 500, "categories": "books"}}},
        "discount.fixed.categories",
        "must be a list",
    ),
    (
        "brackets-empty",
        {"discount.progressive.brackets": []},
        "discount.progressive.brackets",
        "at least one bracket",
    ),
    (
        "brackets-missing",
        {"discount.progressive.brackets": DELETE},
        "discount.progressive.brackets",
        "is required",
    ),
    (
        "brackets-not-increasing",
        {"discount.progressive.brackets.1.up_to": 1000000},
        "discount.progressive.brackets[1].up_to",
        "greater than the previous bracket's up_to (1000000)",
    ),
    (
        "brackets-open-ended-not-last",
        {"discount.progressive.brackets.1.up_to": None},
        "discount.progressive.brackets[1].up_to",
        "only the last bracket may be open-ended",
    ),
    (
        "brackets-last-bounded",
        {"discount.progressive.brackets.2.up_to": 3000000},
        "discount.progressive.brackets[2].up_to",
        "the last bracket must be open-ended",
    ),
    (
        "bracket-up-to-missing",
        {"discount.progressive.brackets.0.up_to": DELETE},
        "discount.progressive.brackets[0].up_to",
        "is required",
    ),
    (
        "bracket-rate-over",
        {"discount.progressive.brackets.0.rate": 20000},
        "discount.progressive.brackets[0].rate",
        "between 0 and 10000",
    ),
    (
        "bracket-up-to-negative",
        {"discount.progressive.brackets.0.up_to": -5},
        "discount.progressive.brackets[0].up_to",
        "at least 0",
    ),
    (
        "period-unknown",
        {"discount.progressive.period": "weekly"},
        "discount.progressive.period",
        "calendar_month",
    ),
    (
        "rolling-days-zero",
        {"discount.progressive.period": {"rolling_days": 0}},
        "discount.progressive.period.rolling_days",
        "between 1 and 3660",
    ),
    (
        "rolling-days-unknown-key",
        {"discount.progressive.period": {"rolling_days": 30, "days": 3}},
        "discount.progressive.period.days",
        "unknown key",
    ),
    ("cashback-rate", {"cashback.rate": 10001}, "cashback.rate", "between 0 and 10000"),
    ("cashback-boosts-flag", {"cashback.boosts_apply": "yes"}, "cashback.boosts_apply", "true"),
    (
        "cashback-without-points-as-money",
        {"points_as_money": None},
        "cashback",
        "requires points_as_money",
    ),
    ("tiers-levels-empty", {"tiers.levels": []}, "tiers.levels", "at least one level"),
    ("tiers-levels-missing", {"tiers.levels": DELETE}, "tiers.levels", "is required"),
    (
        "tier-first-threshold",
        {"tiers.levels.0.threshold": 100},
        "tiers.levels[0].threshold",
        "first level's threshold must be 0",
    ),
    (
        "tier-threshold-equal",
        {"tiers.levels.2.threshold": 1000000},
        "tiers.levels[2].threshold",
        "greater than the previous level's threshold (1000000)",
    ),
    (
        "tier-threshold-decreasing",
        {"tiers.levels.2.threshold": 5},
        "tiers.levels[2].threshold",
        "greater than the previous level's threshold",
    ),
    ("tier-key-dup", {"tiers.levels.2.key": "lover"}, "tiers.levels[2].key", "duplicate key"),
    (
        "tier-multiplier-low",
        {"tiers.levels.1.multiplier": 9999},
        "tiers.levels[1].multiplier",
        "between 10000 and 100000",
    ),
    (
        "tier-discount-over",
        {"tiers.levels.1.discount": 10001},
        "tiers.levels[1].discount",
        "between 0 and 10000",
    ),
    ("tier-metric", {"tiers.metric": "visits"}, "tiers.metric", "'spend', 'points'"),
    ("tier-window", {"tiers.window_days": 0}, "tiers.window_days", "between 1 and 3660"),
    ("tier-name-missing", {"tiers.levels.0.name": DELETE}, "tiers.levels[0].name", "is required"),
    ("expiry-type", {"expiry": "none"}, "expiry", "must be an object"),
    ("expiry-mode-missing", {"expiry": {}}, "expiry.mode", "is required"),
    ("expiry-mode", {"expiry": {"mode": "forever"}}, "expiry.mode", "one of"),
    (
        "expiry-lifetime-days",
        {"expiry": {"mode": "lifetime", "days": 0}},
        "expiry.days",
        "at least 1",
    ),
    (
        "expiry-warn-negative",
        {"expiry": {"mode": "lifetime", "warn_days": -1}},
        "expiry.warn_days",
        "at least 0",
    ),
    (
        "expiry-key-of-other-mode",
        {"expiry": {"mode": "lifetime", "period_months": 12}},
        "expiry.period_months",
        "unknown key",
    ),
    ("expiry-none-extra", {"expiry": {"mode": "none", "days": 3}}, "expiry.days", "unknown key"),
    (
        "expiry-period-months",
        {"expiry.period_months": 0},
        "expiry.period_months",
        "between 1 and 120",
    ),
    ("expiry-period-start-month", {"expiry.period_start": "13-01"}, "expiry.period_start", "MM-DD"),
    ("expiry-period-start-day", {"expiry.period_start": "03-31"}, "expiry.period_start", "1..28"),
    ("expiry-period-start-text", {"expiry.period_start": "Jan 1"}, "expiry.period_start", "MM-DD"),
    ("transfers-min", {"transfers.min_points": 0}, "transfers.min_points", "at least 1"),
    (
        "transfers-max-below-min",
        {"transfers.min_points": 100, "transfers.max_points": 99},
        "transfers.max_points",
        "at least min_points",
    ),
    ("transfers-per-day", {"transfers.max_per_day": 0}, "transfers.max_per_day", "at least 1"),
    ("transfers-enabled", {"transfers.enabled": "true"}, "transfers.enabled", "true or false"),
]


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [pytest.param(changes, path, message, id=name) for name, changes, path, message in BAD],
)
def test_each_rule_reports_its_field_path(changes: dict[str, Any], path: str, message: str) -> None:
    errors = errors_of(doc(**changes))
    assert len(errors) == 1, errors
    assert errors[0][0] == path
    assert message in errors[0][1]


def test_document_must_be_an_object() -> None:
    assert errors_of([]) == [("", "must be an object")]


def test_non_string_key_is_unknown() -> None:
    assert errors_of({1: 2}) == [("1", "unknown key")]


def test_all_errors_are_reported_at_once() -> None:
    document = doc(
        **{
            "bogus": True,
            "currency": "eur",
            "earning.threshold": True,
            "earning.holidays.0.end": "2026-12-01",
            "actions.1.key": "review",
            "discount.progressive.brackets.1.up_to": 5,
            "tiers.levels.0.threshold": 1,
            "tiers.levels.2.multiplier": 1.5,
            "expiry.period_start": "02-29",
            "transfers.max_points": 0,
        }
    )
    paths = [path for path, _ in errors_of(document)]
    assert sorted(paths) == sorted(
        [
            "bogus",
            "currency",
            "earning.threshold",
            "earning.holidays[0].end",
            "actions[1].key",
            "discount.progressive.brackets[1].up_to",
            "tiers.levels[0].threshold",
            "tiers.levels[2].multiplier",
            "expiry.period_start",
            "transfers.max_points",
        ]
    )


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules({"currency": "x", "earning": {"points": -1}})
    text = str(caught.value)
    assert "currency: must be an ISO 4217 code" in text
    assert "earning.points: must be at least 0" in text
    assert isinstance(caught.value, ValueError)


def test_invalid_value_does_not_cascade_into_ordering_errors() -> None:
    document = doc(**{"tiers.levels.1.threshold": "lots"})
    assert errors_of(document) == [("tiers.levels[1].threshold", "must be an integer")]


def test_bool_is_not_an_integer_anywhere() -> None:
    for changes in (
        {"earning.per_amount": True},
        {"rewards.0.cost": True},
        {"tiers.levels.1.threshold": True},
        {"points_as_money.point_value": True},
        {"transfers.max_per_day": True},
    ):
        errors = errors_of(doc(**changes))
        assert [message for _, message in errors] == ["must be an integer"], changes


# --- round trip of generated valid documents -------------------------------------------------

keys = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,39}", fullmatch=True)
names = st.text(min_size=1, max_size=20).filter(lambda text: text.strip() != "")
categories = st.text(min_size=1, max_size=10).filter(lambda text: text == text.strip() != "")
money = st.integers(min_value=0, max_value=10**9)
rates = st.integers(min_value=0, max_value=10000)
multipliers = st.integers(min_value=10000, max_value=100000)
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def holidays(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(dates)
    end = draw(st.dates(min_value=start, max_value=date(2100, 12, 31)))
    return {
        "name": draw(names),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "multiplier": draw(multipliers),
    }


def unique_keyed(item: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.lists(item, max_size=4, unique_by=lambda entry: entry["key"])


@st.composite
def increasing(draw: st.DrawFn, first: int | None = None) -> list[int]:
    values = sorted(draw(st.sets(money, min_size=1, max_size=4)))
    if first is not None and values[0] != first:
        values = [first, *[value for value in values if value > first]]
    return values


@st.composite
def discounts(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        cats = draw(maybe(st.lists(categories, min_size=1, max_size=3, unique=True)))
        return {"fixed": {"rate": draw(rates), "categories": cats}}
    bounds = draw(increasing())
    brackets: list[dict[str, Any]] = [
        {"up_to": bound, "rate": draw(rates)} for bound in bounds[:-1]
    ]
    brackets.append({"up_to": None, "rate": draw(rates)})
    period = draw(
        st.one_of(
            st.sampled_from(["calendar_month", "calendar_year"]),
            st.builds(lambda days: {"rolling_days": days}, st.integers(1, 3660)),
        )
    )
    return {"progressive": {"period": period, "brackets": brackets}}


@st.composite
def tiers(draw: st.DrawFn) -> dict[str, Any]:
    thresholds = draw(increasing(first=0))
    level_keys = draw(
        st.lists(keys, min_size=len(thresholds), max_size=len(thresholds), unique=True)
    )
    return {
        "metric": draw(st.sampled_from(["spend", "points"])),
        "window_days": draw(st.integers(1, 3660)),
        "levels": [
            {
                "key": key,
                "name": draw(names),
                "threshold": threshold,
                "multiplier": draw(multipliers),
                "discount": draw(rates),
            }
            for key, threshold in zip(level_keys, thresholds, strict=True)
        ],
    }


@st.composite
def expiries(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["none", "lifetime", "period_end"]))
    if mode == "none":
        return {"mode": "none"}
    if mode == "lifetime":
        return {"mode": "lifetime", "days": draw(st.integers(1, 3650)), "warn_days": draw(money)}
    anchor = draw(dates).replace(day=draw(st.integers(1, 28)))
    start = anchor.isoformat() if draw(st.booleans()) else anchor.strftime("%m-%d")
    return {
        "mode": "period_end",
        "period_months": draw(st.integers(1, 120)),
        "period_start": start,
        "warn_days": draw(st.integers(0, 60)),
    }


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    earning = {
        "points": draw(st.integers(0, 100)),
        "per_amount": draw(st.integers(1, 10**6)),
        "threshold": draw(money),
        "max_points_per_purchase": draw(maybe(st.integers(1, 10**6))),
        "category_multipliers": draw(st.dictionaries(categories, multipliers, max_size=3)),
        "birthday": draw(
            maybe(
                st.fixed_dictionaries(
                    {"multiplier": multipliers, "scope": st.sampled_from(["day", "week"])}
                )
            )
        ),
        "holidays": draw(st.lists(holidays(), max_size=3)),
        "stacking": draw(st.sampled_from(["best", "multiply"])),
        "welcome_bonus": draw(
            maybe(
                st.fixed_dictionaries(
                    {
                        "points": st.integers(1, 1000),
                        "on": st.sampled_from(["join", "first_purchase"]),
                    }
                )
            )
        ),
    }
    points_as_money = draw(
        maybe(st.fixed_dictionaries({"point_value": st.integers(1, 10000), "max_share": rates}))
    )
    document: dict[str, Any] = {
        "timezone": draw(st.sampled_from(["Europe/Moscow", "UTC", "Europe/Berlin", "Asia/Tokyo"])),
        "currency": draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
        "earning": earning,
        "actions": draw(
            unique_keyed(
                st.fixed_dictionaries(
                    {
                        "key": keys,
                        "name": names,
                        "points": st.integers(1, 10**6),
                        "limit_per_member": maybe(st.integers(1, 100)),
                    }
                )
            )
        ),
        "points_as_money": points_as_money,
        "require_scan_for_redemption": draw(st.booleans()),
        "rewards": draw(
            unique_keyed(
                st.fixed_dictionaries(
                    {
                        "key": keys,
                        "name": names,
                        "cost": st.integers(1, 10**6),
                        "stock": maybe(st.integers(0, 1000)),
                    }
                )
            )
        ),
        "discount": draw(maybe(discounts())),
        "cashback": None
        if points_as_money is None
        else draw(maybe(st.fixed_dictionaries({"rate": rates, "boosts_apply": st.booleans()}))),
        "tiers": draw(maybe(tiers())),
        "expiry": draw(expiries()),
        "transfers": draw(
            maybe(
                st.integers(1, 100).flatmap(
                    lambda low: st.fixed_dictionaries(
                        {
                            "enabled": st.booleans(),
                            "min_points": st.just(low),
                            "max_points": maybe(st.integers(low, 10**6)),
                            "max_per_day": maybe(st.integers(1, 50)),
                        }
                    )
                )
            )
        ),
    }
    # Optional keys may also simply be left out.
    for key in draw(st.sets(st.sampled_from(sorted(document)))):
        if key != "cashback":
            document.pop(key)
    if document.get("points_as_money") is None:
        document.pop("cashback", None)
    return document


@settings(max_examples=200)
@given(documents())
def test_generated_valid_documents_round_trip(document: dict[str, Any]) -> None:
    rules = parse_rules(document)
    canonical = rules_to_dict(rules)
    assert parse_rules(canonical) == rules
    assert parse_rules(json.loads(json.dumps(canonical))) == rules
    assert rules_to_dict(parse_rules(canonical)) == canonical


@settings(max_examples=100)
@given(documents(), st.text(min_size=1, max_size=10))
def test_any_unknown_key_is_reported_by_name(document: dict[str, Any], extra: str) -> None:
    document = copy.deepcopy(document)
    target = document.setdefault("earning", {})
    if extra in target or extra in Earning.__dataclass_fields__:
        return
    target[extra] = 1
    assert errors_of(document) == [(f"earning.{extra}", "unknown key")]
