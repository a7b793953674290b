"""Pure loyalty arithmetic over :class:`~passes.loyalty.rules.ProgramRules`: no database, no clock.

Money is integer minor units, rates and multipliers integer basis points, dates the program's local
``date`` (the caller converts). Every rule below is a product decision, tested in
``tests/loyalty/test_calculator.py``:

* **Discount.** Each line gets the larger of the program discount (fixed, possibly limited to
  categories, or progressive) and the member's tier discount; the two never add up. The receipt's
  discount is ``floor(sum(line amount × line rate) / 10000)``: one floor per receipt, never more
  than the rate, so ``paid + discount == amount``.
* **Progressive discount.** The member's spend in the current period *before* this purchase picks
  the bracket; ``up_to`` is inclusive (spend exactly 10,000.00 → the 10,000.00 bracket; 10,000.01 →
  the next). The purchase that crosses a bound still gets the lower rate; the next one the higher.
  Periods are the calendar month or year containing the purchase date, or the last N days
  including it (:func:`period_start`).
* **Points are earned on what was paid** (after the discount), above ``threshold``: eligible =
  max(0, paid − threshold). With lines, paid and the threshold are shared across lines in
  proportion to each line's amount after its own discount; category multipliers then apply per
  line. Everything stays an exact fraction over one common denominator and is floored **once per
  purchase**, so splitting a receipt into lines never loses points to rounding.
* **Boosts** (birthday, holiday, tier) combine by ``earning.stacking``: "best" applies only the
  largest (ties: birthday, then holiday, then tier); "multiply" applies all of them. Category
  multipliers apply per line in both modes, before the boosts. Overlapping holidays never stack:
  the largest active one counts. A ×1 boost is ignored (no breakdown row).
* **Cap and welcome.** ``max_points_per_purchase`` caps the purchase's points (base, categories,
  boosts) but not the welcome bonus; a ``first_purchase`` welcome bonus is added when
  ``member.is_first_purchase``.
* **Cashback** is ``floor(paid share × rate × boosts)`` minor units (no threshold; category
  multipliers and boosts only when ``boosts_apply``), converted to whole points at
  ``points_as_money.point_value`` (floor). The points cap does not apply to it.
* **Breakdown** rows are cumulative differences of the floored running total, so they add up
  exactly: ``sum(row.points) == quote.points + quote.cashback_points``.
* **Birthday week** is the 7 days from 3 days before the birthday to 3 days after; a 29 February
  birthday falls on 28 February in other years. Windows cross New Year correctly.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from passes.loyalty.rules import (
    BP,
    FixedDiscount,
    LifetimeExpiry,
    PeriodEndExpiry,
    ProgramRules,
    ProgressiveDiscount,
    RollingDays,
)

BIRTHDAY_WEEK_BEFORE = 3
BIRTHDAY_WEEK_AFTER = 3

# ISO 4217 minor-unit digits where they are not 2 (only for the breakdown's wording).
_MINOR_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One receipt line; ``category`` selects category multipliers and category discounts."""

    amount: int
    category: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class MemberContext:
    """What the rules need to know about the member at the moment of a purchase.

    ``period_spend`` is the member's spend (paid, minor units) in the current progressive-discount
    period *before* this purchase.
    """

    birthday: date | None = None
    tier_key: str | None = None
    period_spend: int = 0
    is_first_purchase: bool = False


@dataclass(frozen=True)
class Applied:
    """One row of a purchase's explanation: which rule gave how many points."""

    rule: str
    detail: str
    points: int


@dataclass(frozen=True)
class PurchaseQuote:
    """The outcome of a purchase: discount, amount to pay, points and cashback points earned."""

    amount: int
    discount: int
    discount_rate: int
    paid: int
    points: int
    cashback_points: int
    breakdown: tuple[Applied, ...]


# --- formatting for breakdown rows ------------------------------------------------------------


def _money(rules: ProgramRules, minor: int) -> str:
    digits = _MINOR_DIGITS.get(rules.currency, 2)
    if digits == 0:
        return str(minor)
    whole, fraction = divmod(minor, 10**digits)
    return f"{whole}.{fraction:0{digits}d}"


def _decimal_bp(value: int, scale: int) -> str:
    """``value / scale`` written exactly, without trailing zeros (15000/10000 → "1.5")."""
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    width = len(str(scale)) - 1
    return f"{whole}.{rest:0{width}d}".rstrip("0")


def _times(multiplier: int) -> str:
    return "×" + _decimal_bp(multiplier, BP)


def _percent(rate: int) -> str:
    return _decimal_bp(rate, 100) + " %"


# --- discounts ----------------------------------------------------------------------------------


def _bracket_rate(discount: ProgressiveDiscount, spend: int) -> int:
    for bracket in discount.brackets:
        if bracket.up_to is None or spend <= bracket.up_to:
            return bracket.rate
    return 0  # unreachable for validated rules: the last bracket is open-ended


def discount_rate(
    rules: ProgramRules, member: MemberContext, *, category: str | None = None
) -> int:
    """The discount (bp) for a line of ``category`` now: the larger of program and tier discount.

    A fixed discount limited to categories does not apply to a line without a category.
    """
    rate = 0
    discount = rules.discount
    if isinstance(discount, FixedDiscount):
        if discount.categories is None or (
            category is not None and category in discount.categories
        ):
            rate = discount.rate
    elif isinstance(discount, ProgressiveDiscount):
        rate = _bracket_rate(discount, member.period_spend)
    level = rules.tier_level(member.tier_key)
    if level is not None:
        rate = max(rate, level.discount)
    return rate


def period_start(rules: ProgramRules, on: date) -> date:
    """First day of the progressive-discount period containing ``on``.

    Calendar month, calendar year, or ``on - rolling_days + 1``; a program without a progressive
    discount gets the calendar month (its period spend then only informs, nothing depends on it).
    """
    discount = rules.discount
    period = discount.period if isinstance(discount, ProgressiveDiscount) else "calendar_month"
    if isinstance(period, RollingDays):
        return on - timedelta(days=period.days - 1)
    if period == "calendar_year":
        return date(on.year, 1, 1)
    return on.replace(day=1)


# --- boosts ------------------------------------------------------------------------------------


def _birthday_in(birthday: date, year: int) -> date:
    """The birthday's date in ``year``: 29 February becomes 28 February in common years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def in_birthday_window(rules: ProgramRules, birthday: date, on: date) -> bool:
    """Whether ``on`` gets the birthday boost: the birthday itself, or the 7 days around it.

    "week" is the birthday minus 3 days to the birthday plus 3 days, inclusive; December and
    January birthdays reach into the neighbouring year. False without a birthday boost.
    """
    boost = rules.earning.birthday
    if boost is None:
        return False
    if boost.scope == "day":
        return _birthday_in(birthday, on.year) == on
    for year in (on.year - 1, on.year, on.year + 1):
        if not date.min.year <= year <= date.max.year:
            continue
        offset = (on - _birthday_in(birthday, year)).days
        if -BIRTHDAY_WEEK_BEFORE <= offset <= BIRTHDAY_WEEK_AFTER:
            return True
    return False


def _boosts(rules: ProgramRules, member: MemberContext, on: date) -> list[tuple[str, int]]:
    """The (rule, multiplier) boosts that apply, already reduced by the stacking mode."""
    earning = rules.earning
    active: list[tuple[str, int]] = []
    if (
        earning.birthday is not None
        and member.birthday is not None
        and earning.birthday.multiplier != BP
        and in_birthday_window(rules, member.birthday, on)
    ):
        active.append(("birthday", earning.birthday.multiplier))
    holidays = [h for h in earning.holidays if h.start <= on <= h.end and h.multiplier != BP]
    if holidays:
        best = max(holidays, key=lambda holiday: holiday.multiplier)  # first listed on ties
        active.append((f"holiday:{best.name}", best.multiplier))
    level = rules.tier_level(member.tier_key)
    if level is not None and level.multiplier != BP:
        active.append((f"tier:{level.key}", level.multiplier))
    if earning.stacking == "best" and active:
        return [max(active, key=lambda boost: boost[1])]  # first (birthday) wins ties
    return active


# --- pricing a purchase ---------------------------------------------------------------------


def _check_amount(what: str, amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"{what} must be an integer number of minor units, got {amount!r}")
    if amount < 0:
        raise ValueError(f"{what} must not be negative, got {amount}")


class _Running:
    """A running total ``num / den`` whose floored steps become breakdown rows."""

    def __init__(self, num: int, den: int) -> None:
        self.num = num
        self.den = den
        self.shown = 0

    def row(self, rule: str, detail: str) -> Applied:
        now = self.num // self.den
        applied = Applied(rule, detail, now - self.shown)
        self.shown = now
        return applied

    def total(self) -> int:
        return self.num // self.den


def _base_detail(rules: ProgramRules) -> str:
    earning = rules.earning
    text = f"{earning.points} point{'' if earning.points == 1 else 's'}"
    text += f" per {_money(rules, earning.per_amount)}"
    if earning.threshold:
        text += f" above {_money(rules, earning.threshold)}"
    return text


def price_purchase(
    rules: ProgramRules,
    *,
    amount: int,
    lines: Sequence[Line] | None,
    member: MemberContext,
    on: date,
) -> PurchaseQuote:
    """Discount, amount to pay, points and cashback for a purchase of ``amount`` on ``on``.

    ``lines``, when given, must add up to ``amount``; without lines the receipt is one line with
    no category. See the module docstring for every rounding and stacking rule.
    """
    _check_amount("amount", amount)
    items: tuple[Line, ...]
    if lines is None:
        items = (Line(amount),)
    else:
        items = tuple(lines)
        for line in items:
            _check_amount("line amount", line.amount)
        if sum(line.amount for line in items) != amount:
            raise ValueError("the lines' amounts must add up to the purchase amount")

    rates = [discount_rate(rules, member, category=line.category) for line in items]
    headline_rate = max(rates) if rates else discount_rate(rules, member)
    discount = sum(line.amount * rate for line, rate in zip(items, rates, strict=True)) // BP
    paid = amount - discount
    # Each line's share of what was paid, as weights: its amount after its own discount (×BP).
    weights = [line.amount * (BP - rate) for line, rate in zip(items, rates, strict=True)]
    total_weight = sum(weights)
    earning = rules.earning
    boosts = _boosts(rules, member, on)

    # Category multipliers, per category in order of first appearance: Σ weight × (m − 1).
    extra: dict[str, int] = {}
    boosted_weight = total_weight * BP  # Σ weight × m
    for line, weight in zip(items, weights, strict=True):
        multiplier = earning.multiplier_for(line.category)
        if multiplier != BP and line.category is not None:
            extra[line.category] = extra.get(line.category, 0) + weight * (multiplier - BP)
            boosted_weight += weight * (multiplier - BP)

    breakdown: list[Applied] = []
    points = 0
    if earning.points > 0:
        eligible = max(0, paid - earning.threshold)
        # Eligible share of line i = eligible × w_i / W; points = Σ share × points / per_amount
        # × m_i / BP × boosts / BP^k, over the common denominator W × per_amount × BP × BP^k.
        running = _Running(
            eligible * earning.points * total_weight * BP,
            max(total_weight, 1) * earning.per_amount * BP,
        )
        breakdown.append(running.row("base", _base_detail(rules)))
        for category, weight in extra.items():
            running.num += eligible * earning.points * weight
            multiplier = earning.multiplier_for(category)
            breakdown.append(running.row(f"category:{category}", _times(multiplier)))
        for rule, multiplier in boosts:
            running.num *= multiplier
            running.den *= BP
            breakdown.append(running.row(rule, _times(multiplier)))
        points = running.total()
        cap = earning.max_points_per_purchase
        if cap is not None and points > cap:
            breakdown.append(Applied("cap", f"at most {cap} per purchase", cap - points))
            points = cap
    welcome = earning.welcome_bonus
    if welcome is not None and welcome.on == "first_purchase" and member.is_first_purchase:
        breakdown.append(Applied("welcome", "first purchase", welcome.points))
        points += welcome.points

    cashback_points = 0
    cashback, money = rules.cashback, rules.points_as_money
    if cashback is not None and money is not None and total_weight > 0:
        # Paid share of line i = paid × w_i / W; cashback = Σ share × rate × m_i × boosts, i.e.
        # paid × rate × factor, where factor = Σ(w_i × m_i) × Π boosts / (W × BP × BP^k).
        factor_num, factor_den = 1, 1
        if cashback.boosts_apply:
            factor_num, factor_den = boosted_weight, total_weight * BP
            for _rule, multiplier in boosts:
                factor_num *= multiplier
                factor_den *= BP
        minor = paid * cashback.rate * factor_num // (BP * factor_den)
        cashback_points = minor // money.point_value
        detail = f"{_percent(cashback.rate)} of {_money(rules, paid)}"
        if factor_num != factor_den:
            detail += " " + _times_fraction(factor_num, factor_den)
        breakdown.append(Applied("cashback", detail, cashback_points))

    return PurchaseQuote(
        amount=amount,
        discount=discount,
        discount_rate=headline_rate,
        paid=paid,
        points=points,
        cashback_points=cashback_points,
        breakdown=tuple(breakdown),
    )


def _times_fraction(num: int, den: int) -> str:
    """A combined multiplier for display, to 2 decimals (rounded down)."""
    hundredths = num * 100 // den
    return "×" + _decimal_bp(hundredths, 100)


# --- spending points ----------------------------------------------------------------------------


def points_value(rules: ProgramRules, points: int) -> int:
    """What ``points`` are worth in minor units (0 when points cannot pay for purchases)."""
    _check_amount("points", points)
    money = rules.points_as_money
    return 0 if money is None else points * money.point_value


def points_payment_limit(
    rules: ProgramRules, *, receipt_amount: int, balance: int
) -> tuple[int, int]:
    """(most points usable, their value) on a receipt still to pay of ``receipt_amount``.

    At most ``max_share`` of the receipt (floored to minor units, then to whole points) and never
    more than the balance; (0, 0) when the program has no points-as-money.
    """
    _check_amount("receipt amount", receipt_amount)
    money = rules.points_as_money
    if money is None or balance <= 0:
        return (0, 0)
    cap = receipt_amount * money.max_share // BP
    usable = min(balance, cap // money.point_value)
    return (usable, usable * money.point_value)


# --- tiers ------------------------------------------------------------------------------------


def _tier_rank(rules: ProgramRules, key: str | None) -> int:
    """Position of tier ``key`` (−1 for no tier, or one no longer in the program)."""
    if rules.tiers is not None:
        for index, level in enumerate(rules.tiers.levels):
            if level.key == key:
                return index
    return -1


def qualifying_tier(rules: ProgramRules, metric_value: int) -> str | None:
    """The highest level whose threshold is ≤ ``metric_value`` (None without tiers)."""
    if rules.tiers is None:
        return None
    found: str | None = None
    for level in rules.tiers.levels:
        if level.threshold <= metric_value:
            found = level.key
    return found


def upgraded_tier(rules: ProgramRules, current: str | None, metric_value: int) -> str | None:
    """The new tier if ``metric_value`` qualifies for one above ``current`` now, else None.

    Upgrades happen at once (after a purchase); never lower here: see :func:`evaluated_tier`.
    """
    qualified = qualifying_tier(rules, metric_value)
    if qualified is None or _tier_rank(rules, qualified) <= _tier_rank(rules, current):
        return None
    return qualified


def evaluated_tier(rules: ProgramRules, metric_value: int) -> str | None:
    """The tier at a scheduled evaluation: whatever the window qualifies for, lower included."""
    return qualifying_tier(rules, metric_value)


# --- expiry -----------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    """``day`` moved by whole months; only used with days 1..28, which every month has."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def expiry_date(rules: ProgramRules, earned_on: date) -> date | None:
    """The last day points earned on ``earned_on`` can be used (None: they never expire).

    Lifetime: ``earned_on + days`` (points earned on 1 March with 365 days are usable through
    1 March next year). Period end: the last day of the promotion period containing
    ``earned_on``; periods are ``period_months`` long and aligned on ``period_start``.
    """
    expiry = rules.expiry
    if isinstance(expiry, LifetimeExpiry):
        return earned_on + timedelta(days=expiry.days)
    if isinstance(expiry, PeriodEndExpiry):
        anchor = expiry.period_start
        months = (earned_on.year - anchor.year) * 12 + earned_on.month - anchor.month
        if earned_on.day < anchor.day:
            months -= 1
        periods = months // expiry.period_months
        next_start = _add_months(anchor, (periods + 1) * expiry.period_months)
        return next_start - timedelta(days=1)
    return None


def expiry_warning_date(rules: ProgramRules, earned_on: date) -> date | None:
    """The day to warn the member about points earned on ``earned_on`` (None: no warning)."""
    expires = expiry_date(rules, earned_on)
    warn_days = getattr(rules.expiry, "warn_days", 0)
    if expires is None or not warn_days:
        return None
    return expires - timedelta(days=warn_days)
