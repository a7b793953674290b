"""Loyalty arithmetic: the worked examples of loyalty-rules.md, the documented boundaries, and
properties over generated programs."""

import itertools
from datetime import date
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from passes.loyalty.calculator import (
    Applied,
    Line,
    MemberContext,
    PurchaseQuote,
    discount_rate,
    evaluated_tier,
    expiry_date,
    expiry_warning_date,
    in_birthday_window,
    period_start,
    points_payment_limit,
    points_value,
    price_purchase,
    qualifying_tier,
    upgraded_tier,
)
from passes.loyalty.rules import ProgramRules, parse_rules

DAY = date(2026, 6, 15)
NOBODY = MemberContext(birthday=None, tier_key=None, period_spend=0, is_first_purchase=False)


def rules(**document: Any) -> ProgramRules:
    return parse_rules(document)


def quote(
    program: ProgramRules,
    amount: int,
    *,
    lines: list[Line] | None = None,
    member: MemberContext = NOBODY,
    on: date = DAY,
) -> PurchaseQuote:
    return price_purchase(program, amount=amount, lines=lines, member=member, on=on)


def rows(result: PurchaseQuote) -> list[tuple[str, str, int]]:
    return [(row.rule, row.detail, row.points) for row in result.breakdown]


# --- earning: worked examples -----------------------------------------------------------------

EURO_ABOVE_FIVE = rules(currency="EUR", earning={"points": 2, "per_amount": 100, "threshold": 500})


@pytest.mark.parametrize(
    ("amount", "points"),
    [(1240, 14), (499, 0), (500, 0), (549, 0), (550, 1), (1000, 10), (0, 0)],
)
def test_two_points_per_euro_above_five_euro(amount: int, points: int) -> None:
    # 12.40 EUR: floor((12.40 - 5) * 2) = 14; 4.99 EUR: 0.
    assert quote(EURO_ABOVE_FIVE, amount).points == points


def test_threshold_example_breakdown() -> None:
    assert rows(quote(EURO_ABOVE_FIVE, 1240)) == [("base", "2 points per 1.00 above 5.00", 14)]


def test_one_point_per_rouble_rounds_down_per_purchase() -> None:
    program = rules(earning={"points": 1, "per_amount": 100})
    assert quote(program, 9999).points == 99
    assert quote(program, 10000).points == 100
    # Two purchases of 0.99 earn nothing: fractions are not carried over.
    assert quote(program, 99).points == 0


def test_default_program_earns_one_point_per_ten_roubles() -> None:
    result = quote(parse_rules({}), 12345)
    assert result.points == 12
    assert rows(result) == [("base", "1 point per 10.00", 12)]


def test_points_are_earned_on_the_amount_after_discount() -> None:
    program = rules(earning={"points": 1, "per_amount": 100}, discount={"fixed": {"rate": 1000}})
    result = quote(program, 10000)
    assert (result.discount, result.paid, result.points) == (1000, 9000, 90)


def test_threshold_applies_to_the_amount_after_discount() -> None:
    program = rules(
        currency="EUR",
        earning={"points": 2, "per_amount": 100, "threshold": 500},
        discount={"fixed": {"rate": 1000}},
    )
    result = quote(program, 1240)
    assert result.paid == 1116
    assert result.points == 12  # floor((11.16 - 5) * 2)


def test_earning_can_be_switched_off() -> None:
    program = rules(earning={"points": 0}, discount={"fixed": {"rate": 500}})
    result = quote(program, 100000)
    assert (result.points, result.breakdown) == (0, ())
    assert result.discount == 5000


# --- category multipliers and lines -----------------------------------------------------------

PASTRY = rules(earning={"category_multipliers": {"pastry": 20000}})


def test_category_multiplier_applies_to_its_line_only() -> None:
    result = quote(PASTRY, 12000, lines=[Line(6000, "pastry"), Line(6000, "coffee")])
    assert result.points == 18
    assert rows(result) == [("base", "1 point per 10.00", 12), ("category:pastry", "×2", 6)]


def test_lines_without_matching_category_earn_like_no_lines() -> None:
    lines = [Line(6000, "coffee", "sku-1"), Line(6000, None)]
    assert quote(PASTRY, 12000, lines=lines) == quote(PASTRY, 12000)


def test_threshold_is_shared_across_lines_in_proportion_and_floored_once() -> None:
    program = rules(
        currency="EUR",
        earning={
            "points": 2,
            "per_amount": 100,
            "threshold": 500,
            "category_multipliers": {"pastry": 20000},
        },
    )
    # Eligible 7.40 is shared 3.70 / 3.70; 2 × (3.70 + 3.70 × 2) = 22.2 → 22 (not 7 + 14 = 21).
    result = quote(program, 1240, lines=[Line(620, "pastry"), Line(620, "coffee")])
    assert result.points == 22
    assert rows(result) == [
        ("base", "2 points per 1.00 above 5.00", 14),
        ("category:pastry", "×2", 8),
    ]


def test_lines_must_add_up_to_the_amount() -> None:
    with pytest.raises(ValueError, match="add up"):
        quote(PASTRY, 1000, lines=[Line(600), Line(300)])


def test_amounts_must_be_non_negative_integers() -> None:
    with pytest.raises(ValueError, match="negative"):
        quote(PASTRY, -1)
    with pytest.raises(ValueError, match="negative"):
        quote(PASTRY, 0, lines=[Line(-5), Line(5)])
    with pytest.raises(TypeError):
        quote(PASTRY, True)


# --- boosts and stacking ------------------------------------------------------------------------

BOOSTED: dict[str, Any] = {
    "earning": {
        "points": 1,
        "per_amount": 1000,
        "birthday": {"multiplier": 20000, "scope": "day"},
        "holidays": [
            {"name": "New Year", "start": "2026-12-24", "end": "2027-01-08", "multiplier": 30000}
        ],
    },
    "tiers": {
        "levels": [
            {"key": "lover", "name": "Любитель", "threshold": 0},
            {"key": "gourmet", "name": "Гурман", "threshold": 1000000, "multiplier": 12500},
        ]
    },
}
BIRTHDAY_ON_HOLIDAY = MemberContext(
    birthday=date(1990, 12, 30), tier_key="gourmet", period_spend=0, is_first_purchase=False
)


def with_stacking(stacking: str) -> ProgramRules:
    return rules(**{**BOOSTED, "earning": {**BOOSTED["earning"], "stacking": stacking}})


def test_best_stacking_applies_only_the_largest_boost() -> None:
    result = quote(with_stacking("best"), 100000, member=BIRTHDAY_ON_HOLIDAY, on=date(2026, 12, 30))
    assert result.points == 300
    assert rows(result) == [
        ("base", "1 point per 10.00", 100),
        ("holiday:New Year", "×3", 200),
    ]


def test_multiply_stacking_applies_every_boost() -> None:
    program = with_stacking("multiply")
    result = quote(program, 100000, member=BIRTHDAY_ON_HOLIDAY, on=date(2026, 12, 30))
    assert result.points == 750  # 100 × 2 × 3 × 1.25
    assert rows(result) == [
        ("base", "1 point per 10.00", 100),
        ("birthday", "×2", 100),
        ("holiday:New Year", "×3", 400),
        ("tier:gourmet", "×1.25", 150),
    ]


def test_multiply_floors_once_at_the_end() -> None:
    program = with_stacking("multiply")
    # 1.90 points × 2 × 3 × 1.25 = 14.25 → 14 (flooring each step would give 1 × … = 7).
    result = quote(program, 1900, member=BIRTHDAY_ON_HOLIDAY, on=date(2026, 12, 30))
    assert result.points == 14
    assert sum(row.points for row in result.breakdown) == 14


def test_best_stacking_prefers_birthday_on_a_tie() -> None:
    document = {**BOOSTED, "earning": {**BOOSTED["earning"], "birthday": {"multiplier": 30000}}}
    result = quote(rules(**document), 10000, member=BIRTHDAY_ON_HOLIDAY, on=date(2026, 12, 30))
    assert [row.rule for row in result.breakdown] == ["base", "birthday"]


def test_overlapping_holidays_never_stack() -> None:
    program = rules(
        earning={
            "stacking": "multiply",
            "holidays": [
                {"name": "Winter", "start": "2026-12-01", "end": "2027-02-28", "multiplier": 15000},
                {
                    "name": "New Year",
                    "start": "2026-12-31",
                    "end": "2027-01-01",
                    "multiplier": 30000,
                },
            ],
        }
    )
    assert [row.rule for row in quote(program, 10000, on=date(2026, 12, 31)).breakdown] == [
        "base",
        "holiday:New Year",
    ]
    assert quote(program, 10000, on=date(2027, 1, 2)).points == 15
    assert quote(program, 10000, on=date(2027, 3, 1)).points == 10


def test_category_multiplier_applies_before_boosts_in_both_modes() -> None:
    for stacking, expected in (("best", 54), ("multiply", 54)):
        program = rules(
            earning={
                "category_multipliers": {"pastry": 20000},
                "holidays": [
                    {
                        "name": "Sale",
                        "start": "2026-06-01",
                        "end": "2026-06-30",
                        "multiplier": 30000,
                    }
                ],
                "stacking": stacking,
            }
        )
        result = quote(program, 12000, lines=[Line(6000, "pastry"), Line(6000, "tea")])
        assert result.points == expected  # (6 + 12) × 3
        assert [row.rule for row in result.breakdown] == [
            "base",
            "category:pastry",
            "holiday:Sale",
        ]


def test_unit_tier_and_removed_tier_give_no_boost() -> None:
    program = with_stacking("multiply")
    for tier_key in ("lover", "retired-tier", None):
        member = MemberContext(None, tier_key, 0, False)
        assert rows(quote(program, 10000, member=member)) == [("base", "1 point per 10.00", 10)]


# --- birthday windows ---------------------------------------------------------------------------

DAY_SCOPE = rules(earning={"birthday": {"multiplier": 20000, "scope": "day"}})
WEEK_SCOPE = rules(earning={"birthday": {"multiplier": 20000, "scope": "week"}})


@pytest.mark.parametrize(
    ("program", "birthday", "on", "inside"),
    [
        (DAY_SCOPE, date(1990, 5, 10), date(2026, 5, 10), True),
        (DAY_SCOPE, date(1990, 5, 10), date(2026, 5, 9), False),
        (DAY_SCOPE, date(1990, 5, 10), date(2026, 5, 11), False),
        (WEEK_SCOPE, date(1990, 5, 10), date(2026, 5, 7), True),
        (WEEK_SCOPE, date(1990, 5, 10), date(2026, 5, 13), True),
        (WEEK_SCOPE, date(1990, 5, 10), date(2026, 5, 6), False),
        (WEEK_SCOPE, date(1990, 5, 10), date(2026, 5, 14), False),
        # Across New Year, both ways.
        (WEEK_SCOPE, date(1990, 1, 1), date(2025, 12, 29), True),
        (WEEK_SCOPE, date(1990, 1, 1), date(2025, 12, 28), False),
        (WEEK_SCOPE, date(1990, 12, 31), date(2027, 1, 3), True),
        (WEEK_SCOPE, date(1990, 12, 31), date(2027, 1, 4), False),
        # 29 February: 28 February in common years.
        (DAY_SCOPE, date(2000, 2, 29), date(2027, 2, 28), True),
        (DAY_SCOPE, date(2000, 2, 29), date(2027, 3, 1), False),
        (DAY_SCOPE, date(2000, 2, 29), date(2028, 2, 29), True),
        (DAY_SCOPE, date(2000, 2, 29), date(2028, 2, 28), False),
        (WEEK_SCOPE, date(2000, 2, 29), date(2027, 2, 25), True),
        (WEEK_SCOPE, date(2000, 2, 29), date(2027, 2, 24), False),
        (WEEK_SCOPE, date(2000, 2, 29), date(2027, 3, 3), True),
        (WEEK_SCOPE, date(2000, 2, 29), date(2027, 3, 4), False),
        (WEEK_SCOPE, date(2000, 2, 29), date(2028, 3, 3), True),
        (WEEK_SCOPE, date(2000, 2, 29), date(2028, 3, 4), False),
        (WEEK_SCOPE, date(2000, 2, 29), date(2028, 2, 26), True),
        (WEEK_SCOPE, date(2000, 2, 29), date(2028, 2, 25), False),
        # Without a birthday boost there is no window.
        (parse_rules({}), date(1990, 5, 10), date(2026, 5, 10), False),
    ],
)
def test_birthday_window(program: ProgramRules, birthday: date, on: date, inside: bool) -> None:
    assert in_birthday_window(program, birthday, on) is inside


def test_birthday_boost_needs_a_known_birthday() -> None:
    member = MemberContext(birthday=date(1990, 6, 15), tier_key=None, period_spend=0,
                           is_first_purchase=False)  # fmt: skip
    assert quote(DAY_SCOPE, 10000, member=member).points == 20
    assert rows(quote(DAY_SCOPE, 10000, member=member))[1] == ("birthday", "×2", 10)
    assert quote(DAY_SCOPE, 10000, member=NOBODY).points == 10


def test_birthday_window_at_the_ends_of_the_calendar() -> None:
    assert in_birthday_window(WEEK_SCOPE, date(2000, 1, 2), date(1, 1, 1))
    assert in_birthday_window(WEEK_SCOPE, date(2000, 12, 30), date(9999, 12, 31))


# --- discounts ----------------------------------------------------------------------------------

PROGRESSIVE = rules(
    discount={
        "progressive": {
            "period": "calendar_month",
            "brackets": [
                {"up_to": 1000000, "rate": 500},
                {"up_to": 2000000, "rate": 700},
                {"up_to": None, "rate": 1000},
            ],
        }
    }
)


@pytest.mark.parametrize(
    ("spend_before", "rate"),
    [
        (0, 500),
        (999999, 500),
        (1000000, 500),  # exactly 10,000.00 → still 5 %
        (1000001, 700),  # 10,000.01 → 7 %
        (2000000, 700),  # exactly 20,000.00 → 7 %
        (2000001, 1000),  # 20,000.01 → 10 %
        (10**12, 1000),
        (-500, 500),  # net of refunds
    ],
)
def test_progressive_boundaries(spend_before: int, rate: int) -> None:
    member = MemberContext(None, None, spend_before, False)
    assert discount_rate(PROGRESSIVE, member) == rate
    result = quote(PROGRESSIVE, 100000, member=member)
    assert (result.discount_rate, result.discount, result.paid) == (
        rate,
        rate * 10,
        100000 - rate * 10,
    )


def test_purchase_crossing_a_bound_gets_the_lower_rate_and_the_next_one_the_higher() -> None:
    crossing = quote(PROGRESSIVE, 300000, member=MemberContext(None, None, 900000, False))
    assert crossing.discount_rate == 500
    after = MemberContext(None, None, 900000 + crossing.paid, False)
    assert quote(PROGRESSIVE, 10000, member=after).discount_rate == 700


@pytest.mark.parametrize(
    ("period", "on", "start"),
    [
        ("calendar_month", date(2026, 3, 31), date(2026, 3, 1)),
        ("calendar_month", date(2026, 3, 1), date(2026, 3, 1)),
        ("calendar_year", date(2026, 12, 31), date(2026, 1, 1)),
        ({"rolling_days": 30}, date(2026, 3, 30), date(2026, 3, 1)),
        ({"rolling_days": 1}, date(2026, 3, 30), date(2026, 3, 30)),
    ],
)
def test_period_start(period: Any, on: date, start: date) -> None:
    program = rules(
        discount={"progressive": {"period": period, "brackets": [{"up_to": None, "rate": 1}]}}
    )
    assert period_start(program, on) == start


def test_period_start_without_progressive_discount_is_the_calendar_month() -> None:
    assert period_start(parse_rules({}), date(2026, 3, 17)) == date(2026, 3, 1)


def test_fixed_discount_on_categories_only() -> None:
    program = rules(discount={"fixed": {"rate": 500, "categories": ["books"]}})
    assert discount_rate(program, NOBODY, category="books") == 500
    assert discount_rate(program, NOBODY, category="toys") == 0
    assert discount_rate(program, NOBODY) == 0
    result = quote(program, 30000, lines=[Line(10000, "books"), Line(20000, "toys")])
    assert (result.discount, result.paid, result.discount_rate) == (500, 29500, 500)
    # Points follow what was paid per line: 95.00 + 200.00 → 29 points.
    assert result.points == 29


def test_discount_is_floored_once_per_receipt() -> None:
    program = rules(discount={"fixed": {"rate": 500}})
    # 5 % of 7 kopecks is 0.35 kopecks: flooring per line would give nothing; the receipt's
    # 1.05 kopecks give 1 (and 1.5 give 1).
    assert quote(program, 21, lines=[Line(7), Line(7), Line(7)]).discount == 1
    assert quote(program, 30, lines=[Line(10)] * 3).discount == 1


def test_tier_discount_and_program_discount_the_larger_applies() -> None:
    program = rules(
        discount={"fixed": {"rate": 500}},
        tiers={
            "levels": [
                {"key": "base", "name": "Base", "threshold": 0},
                {"key": "silver", "name": "Silver", "threshold": 100, "discount": 300},
                {"key": "gold", "name": "Gold", "threshold": 200, "discount": 700},
            ]
        },
    )
    assert discount_rate(program, MemberContext(None, "silver", 0, False)) == 500
    assert discount_rate(program, MemberContext(None, "gold", 0, False)) == 700
    assert quote(program, 10000, member=MemberContext(None, "gold", 0, False)).discount == 700


def test_points_program_with_tier_discount() -> None:
    program = rules(
        earning={"points": 1, "per_amount": 1000},
        tiers={
            "levels": [
                {"key": "lover", "name": "Любитель", "threshold": 0},
                {"key": "gourmet", "name": "Гурман", "threshold": 1000000, "discount": 300,
                 "multiplier": 12500},
            ]
        },
    )  # fmt: skip
    result = quote(program, 100000, member=MemberContext(None, "gourmet", 0, False))
    assert (result.discount, result.paid) == (3000, 97000)
    assert result.points == 121  # 97 × 1.25 = 121.25
    assert rows(result) == [("base", "1 point per 10.00", 97), ("tier:gourmet", "×1.25", 24)]


# --- cashback -------------------------------------------------------------------------------

CASHBACK: dict[str, Any] = {
    "earning": {
        "points": 0,
        "birthday": {"multiplier": 20000},
        "category_multipliers": {"pastry": 20000},
    },
    "points_as_money": {"point_value": 100, "max_share": 10000},
    "cashback": {"rate": 300, "boosts_apply": True},
}
BIRTHDAY_TODAY = MemberContext(date(1990, 6, 15), None, 0, False)


def test_cashback_is_a_share_of_the_paid_amount_in_points() -> None:
    result = quote(rules(**CASHBACK), 100000)
    assert (result.points, result.cashback_points) == (0, 30)
    assert rows(result) == [("cashback", "3 % of 1000.00", 30)]
    assert quote(rules(**CASHBACK), 9999).cashback_points == 2  # 2.99 → 2 points


def test_cashback_is_raised_by_birthday_and_categories() -> None:
    program = rules(**CASHBACK)
    assert quote(program, 100000, member=BIRTHDAY_TODAY).cashback_points == 60
    lines = [Line(50000, "pastry"), Line(50000)]
    result = quote(program, 100000, lines=lines, member=BIRTHDAY_TODAY)
    assert result.cashback_points == 90  # 30 × 1.5 × 2
    assert rows(result) == [("cashback", "3 % of 1000.00 ×3", 90)]


def test_cashback_without_boosts() -> None:
    program = rules(**{**CASHBACK, "cashback": {"rate": 300, "boosts_apply": False}})
    lines = [Line(50000, "pastry"), Line(50000)]
    assert quote(program, 100000, lines=lines, member=BIRTHDAY_TODAY).cashback_points == 30


def test_cashback_uses_the_point_value_and_is_not_capped() -> None:
    program = rules(
        earning={"max_points_per_purchase": 5},
        points_as_money={"point_value": 50},
        cashback={"rate": 1000},
    )
    result = quote(program, 100000)
    assert (result.points, result.cashback_points) == (5, 200)  # 100.00 at 0.50 a point


# --- welcome bonus and cap ----------------------------------------------------------------------


def test_welcome_bonus_on_first_purchase_only() -> None:
    program = rules(earning={"welcome_bonus": {"points": 100, "on": "first_purchase"}})
    first = quote(program, 10000, member=MemberContext(None, None, 0, True))
    assert first.points == 110
    assert rows(first)[-1] == ("welcome", "first purchase", 100)
    assert quote(program, 10000, member=NOBODY).points == 10


def test_welcome_bonus_on_join_is_not_part_of_a_purchase() -> None:
    program = rules(earning={"welcome_bonus": {"points": 100, "on": "join"}})
    assert quote(program, 10000, member=MemberContext(None, None, 0, True)).points == 10


def test_max_points_caps_the_purchase_but_not_the_welcome_bonus() -> None:
    program = rules(
        earning={
            "max_points_per_purchase": 500,
            "welcome_bonus": {"points": 100, "on": "first_purchase"},
        }
    )
    result = quote(program, 1_000_000, member=MemberContext(None, None, 0, True))
    assert result.points == 600
    assert rows(result) == [
        ("base", "1 point per 10.00", 1000),
        ("cap", "at most 500 per purchase", -500),
        ("welcome", "first purchase", 100),
    ]
    assert quote(program, 500_000).points == 500  # exactly at the cap: no cap row
    assert [row.rule for row in quote(program, 500_000).breakdown] == ["base"]


# --- points as money ------------------------------------------------------------------------

AS_MONEY = rules(points_as_money={"point_value": 100, "max_share": 3000})


def test_points_pay_at_most_thirty_percent() -> None:
    # 1 point = 1 RUB; a 1,000 RUB receipt takes at most 300 points.
    assert points_payment_limit(AS_MONEY, receipt_amount=100000, balance=1000) == (300, 30000)
    assert points_payment_limit(AS_MONEY, receipt_amount=100000, balance=120) == (120, 12000)
    # 999.99 → 30 % is 299.997 RUB → 299 whole points.
    assert points_payment_limit(AS_MONEY, receipt_amount=99999, balance=1000) == (299, 29900)
    assert points_payment_limit(AS_MONEY, receipt_amount=0, balance=1000) == (0, 0)
    assert points_payment_limit(AS_MONEY, receipt_amount=100000, balance=0) == (0, 0)
    assert points_payment_limit(AS_MONEY, receipt_amount=100000, balance=-5) == (0, 0)


def test_points_as_money_with_other_point_value_and_without_the_option() -> None:
    half = rules(points_as_money={"point_value": 50, "max_share": 10000})
    assert points_payment_limit(half, receipt_amount=1000, balance=100) == (20, 1000)
    assert points_value(half, 7) == 350
    assert points_value(AS_MONEY, 150) == 15000
    none = parse_rules({})
    assert points_payment_limit(none, receipt_amount=100000, balance=1000) == (0, 0)
    assert points_value(none, 150) == 0
    with pytest.raises(ValueError, match="negative"):
        points_value(AS_MONEY, -1)


# --- tiers --------------------------------------------------------------------------------------

TIERS = rules(
    tiers={
        "levels": [
            {"key": "lover", "name": "Любитель", "threshold": 0},
            {"key": "gourmet", "name": "Гурман", "threshold": 1000000},
            {"key": "coffee-fan", "name": "Кофеман", "threshold": 3000000},
        ]
    }
)


@pytest.mark.parametrize(
    ("value", "tier"),
    [(0, "lover"), (999999, "lover"), (1000000, "gourmet"), (2999999, "gourmet"),
     (3000000, "coffee-fan"), (10**12, "coffee-fan"), (-1, None)],
)  # fmt: skip
def test_qualifying_tier(value: int, tier: str | None) -> None:
    assert qualifying_tier(TIERS, value) == tier


def test_upgrade_is_immediate_but_never_lowers() -> None:
    assert upgraded_tier(TIERS, "lover", 1000000) == "gourmet"
    assert upgraded_tier(TIERS, "lover", 3000000) == "coffee-fan"
    assert upgraded_tier(TIERS, None, 0) == "lover"
    assert upgraded_tier(TIERS, "gone", 0) == "lover"
    assert upgraded_tier(TIERS, "gourmet", 1000000) is None
    assert upgraded_tier(TIERS, "gourmet", 10) is None  # the spend fell: no downgrade here
    assert upgraded_tier(TIERS, "coffee-fan", 1000000) is None


def test_downgrade_only_at_evaluation() -> None:
    assert evaluated_tier(TIERS, 10) == "lover"
    assert evaluated_tier(TIERS, 1500000) == "gourmet"


def test_no_tiers() -> None:
    program = parse_rules({})
    assert qualifying_tier(program, 10**9) is None
    assert upgraded_tier(program, None, 10**9) is None
    assert evaluated_tier(program, 10**9) is None


# --- expiry ---------------------------------------------------------------------------------


def test_lifetime_expiry() -> None:
    program = rules(expiry={"mode": "lifetime", "days": 365, "warn_days": 14})
    assert expiry_date(program, date(2026, 3, 1)) == date(2027, 3, 1)
    assert expiry_date(program, date(2027, 3, 1)) == date(2028, 2, 29)
    assert expiry_warning_date(program, date(2026, 3, 1)) == date(2027, 2, 15)


@pytest.mark.parametrize(
    ("months", "start", "earned", "expires"),
    [
        (12, "01-01", date(2026, 3, 15), date(2026, 12, 31)),
        (12, "01-01", date(2026, 12, 31), date(2026, 12, 31)),
        (12, "01-01", date(2027, 1, 1), date(2027, 12, 31)),
        (12, "04-01", date(2026, 3, 31), date(2026, 3, 31)),
        (12, "04-01", date(2026, 4, 1), date(2027, 3, 31)),
        # Two-year periods from "MM-DD" start in even years; a full date anchors elsewhere.
        (24, "01-01", date(2026, 6, 1), date(2027, 12, 31)),
        (24, "01-01", date(2027, 6, 1), date(2027, 12, 31)),
        (24, "2025-01-01", date(2026, 6, 1), date(2026, 12, 31)),
        (24, "2025-01-01", date(2024, 12, 31), date(2024, 12, 31)),
        (3, "01-15", date(2026, 2, 10), date(2026, 4, 14)),
        (3, "01-15", date(2026, 1, 14), date(2026, 1, 14)),
        (1, "01-28", date(2026, 2, 27), date(2026, 2, 27)),
        (1, "01-28", date(2026, 2, 28), date(2026, 3, 27)),
        (12, "01-01", date(1999, 7, 1), date(1999, 12, 31)),
    ],
)
def test_period_end_expiry(months: int, start: str, earned: date, expires: date) -> None:
    program = rules(expiry={"mode": "period_end", "period_months": months, "period_start": start})
    assert expiry_date(program, earned) == expires


def test_no_expiry() -> None:
    assert expiry_date(parse_rules({}), date(2026, 1, 1)) is None
    assert expiry_warning_date(parse_rules({}), date(2026, 1, 1)) is None
    silent = rules(expiry={"mode": "lifetime", "days": 30, "warn_days": 0})
    assert expiry_warning_date(silent, date(2026, 1, 1)) is None


# --- properties -------------------------------------------------------------------------------

multipliers = st.integers(min_value=10000, max_value=100000)
rates = st.integers(min_value=0, max_value=10000)
categories = st.sampled_from(["pastry", "coffee", "books", "tea"])
dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def programs(draw: st.DrawFn, category_rules: bool = True) -> ProgramRules:
    earning: dict[str, Any] = {
        "points": draw(st.integers(0, 20)),
        "per_amount": draw(st.integers(1, 100000)),
        "threshold": draw(st.integers(0, 100000)),
        "max_points_per_purchase": draw(st.one_of(st.none(), st.integers(1, 10000))),
        "birthday": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"multiplier": multipliers, "scope": st.sampled_from(["day", "week"])}
                ),
            )
        ),
        "stacking": draw(st.sampled_from(["best", "multiply"])),
        "welcome_bonus": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "points": st.integers(1, 500),
                        "on": st.sampled_from(["join", "first_purchase"]),
                    }
                ),
            )
        ),
    }
    holidays = []
    for name in draw(st.lists(st.sampled_from(["Sale", "New Year"]), max_size=2)):
        start, end = sorted([draw(dates), draw(dates)])
        holidays.append(
            {
                "name": name,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "multiplier": draw(multipliers),
            }
        )
    earning["holidays"] = holidays
    if category_rules:
        earning["category_multipliers"] = draw(st.dictionaries(categories, multipliers))
    document: dict[str, Any] = {"earning": earning}
    money = draw(st.one_of(st.none(), st.fixed_dictionaries({"point_value": st.integers(1, 500),
                                                            "max_share": rates})))  # fmt: skip
    document["points_as_money"] = money
    if money is not None:
        document["cashback"] = draw(
            st.one_of(
                st.none(), st.fixed_dictionaries({"rate": rates, "boosts_apply": st.booleans()})
            )
        )
    kind = draw(st.sampled_from(["none", "fixed", "progressive"]))
    if kind == "fixed":
        cats = draw(st.lists(categories, min_size=1, unique=True)) if category_rules else None
        document["discount"] = {"fixed": {"rate": draw(rates), "categories": cats}}
    elif kind == "progressive":
        bound = draw(st.integers(0, 10**6))
        document["discount"] = {
            "progressive": {
                "brackets": [
                    {"up_to": bound, "rate": draw(rates)},
                    {"up_to": None, "rate": draw(rates)},
                ]
            }
        }
    document["tiers"] = {
        "levels": [
            {"key": "a", "name": "A", "threshold": 0, "multiplier": draw(multipliers),
             "discount": draw(rates)},
            {"key": "b", "name": "B", "threshold": 100, "multiplier": draw(multipliers),
             "discount": draw(rates)},
        ]
    }  # fmt: skip
    return parse_rules(document)


members = st.builds(
    MemberContext,
    birthday=st.one_of(st.none(), st.dates(min_value=date(1940, 1, 1), max_value=date(2010, 1, 1))),
    tier_key=st.sampled_from([None, "a", "b", "gone"]),
    period_spend=st.integers(-1000, 10**7),
    is_first_purchase=st.booleans(),
)
amounts = st.integers(min_value=0, max_value=10**9)


@st.composite
def split(draw: st.DrawFn, amount: int) -> list[Line]:
    """``amount`` cut into 1–5 lines with random categories."""
    cuts = sorted(draw(st.lists(st.integers(0, amount), max_size=4)))
    bounds = [0, *cuts, amount]
    return [
        Line(high - low, draw(st.one_of(st.none(), categories)))
        for low, high in itertools.pairwise(bounds)
    ]


@settings(max_examples=300)
@given(programs(), members, dates, amounts, st.data())
def test_quote_invariants(
    program: ProgramRules, member: MemberContext, on: date, amount: int, data: st.DataObject
) -> None:
    lines = data.draw(st.one_of(st.none(), split(amount)))
    result = price_purchase(program, amount=amount, lines=lines, member=member, on=on)
    assert result.points >= 0 and result.cashback_points >= 0
    assert result.paid + result.discount == amount
    assert 0 <= result.discount <= amount
    assert 0 <= result.discount_rate <= 10000
    assert sum(row.points for row in result.breakdown) == result.points + result.cashback_points
    assert all(isinstance(row, Applied) for row in result.breakdown)


@settings(max_examples=300)
@given(programs(), members, dates, amounts, st.integers(1, 10**6))
def test_points_never_decrease_with_the_amount(
    program: ProgramRules, member: MemberContext, on: date, amount: int, more: int
) -> None:
    smaller = price_purchase(program, amount=amount, lines=None, member=member, on=on)
    larger = price_purchase(program, amount=amount + more, lines=None, member=member, on=on)
    assert larger.points >= smaller.points
    assert larger.cashback_points >= smaller.cashback_points
    assert larger.paid >= smaller.paid


@settings(max_examples=300)
@given(programs(category_rules=False), members, dates, amounts, st.data())
def test_lines_change_nothing_without_category_rules(
    program: ProgramRules, member: MemberContext, on: date, amount: int, data: st.DataObject
) -> None:
    lines = data.draw(split(amount))
    with_lines = price_purchase(program, amount=amount, lines=lines, member=member, on=on)
    without = price_purchase(program, amount=amount, lines=None, member=member, on=on)
    assert with_lines == without


@settings(max_examples=200)
@given(st.integers(0, 20), st.integers(1, 10**5), st.integers(0, 10**5), amounts)
def test_plain_points_match_the_formula(points: int, per: int, threshold: int, amount: int) -> None:
    program = rules(earning={"points": points, "per_amount": per, "threshold": threshold})
    assume(points > 0)
    expected = max(0, amount - threshold) * points // per
    assert price_purchase(program, amount=amount, lines=None, member=NOBODY, on=DAY).points == (
        expected
    )


@settings(max_examples=200)
@given(st.integers(1, 1000), rates, st.integers(0, 10**9), st.integers(-10, 10**7))
def test_points_payment_never_exceeds_share_or_balance(
    value: int, share: int, receipt: int, balance: int
) -> None:
    program = rules(points_as_money={"point_value": value, "max_share": share})
    usable, money = points_payment_limit(program, receipt_amount=receipt, balance=balance)
    assert 0 <= usable <= max(balance, 0)
    assert money == usable * value
    assert money * 10000 <= receipt * share
    # One more point would break the cap or the balance.
    assert usable == max(balance, 0) or (usable + 1) * value * 10000 > receipt * share
