"""Segments: which of a program's cards a campaign reaches, as one SQL condition on ``cards``
(so a campaign to a million cards is selected and written inside the database, never loaded).

A segment is a small JSON document, validated by :func:`parse_segment`:
``{"kind": "all"}``, ``{"kind": "tier", "tier": KEY}``,
``{"kind": "joined", "from": DATE, "until": DATE}`` (inclusive, program time zone),
``{"kind": "inactive", "days": N}`` (no purchase in N days), ``{"kind": "birthday_month"}``,
``{"kind": "balance", "at_least": POINTS}``,
``{"kind": "spend", "from": DATE, "until": DATE, "at_least": MINOR_UNITS}``,
``{"kind": "wallet", "wallet": "apple" | "google" | "none"}``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, extract, func, not_, select

from passes.loyalty.models import Card, Member, Purchase
from passes.loyalty.rules import ProgramRules
from passes.push.models import AppleRegistration, GoogleObject
from passes.text import N_, Text

KINDS = ("all", "tier", "joined", "inactive", "birthday_month", "balance", "spend", "wallet")
WALLETS = ("apple", "google", "none")


class SegmentError(ValueError):
    """A segment that cannot be used; ``field`` names the offending part, ``text`` what is
    wrong (``message``: the same in English)."""

    def __init__(self, field: str, text: Text | str) -> None:
        self.field = field
        self.text = text if isinstance(text, Text) else Text(text)
        self.message = str(self.text)
        super().__init__(f"{field}: {self.message}")


def parse_segment(data: Any, rules: ProgramRules) -> dict[str, Any]:
    """``data`` as a clean segment document, or SegmentError."""
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise SegmentError(
            "kind", Text(N_("choose one of %(choices)s"), {"choices": ", ".join(KINDS)})
        )
    kind = data["kind"]
    if kind in ("all", "birthday_month"):
        return {"kind": kind}
    if kind == "tier":
        tier = data.get("tier")
        if rules.tier_level(tier if isinstance(tier, str) else None) is None:
            raise SegmentError("tier", Text(N_("choose one of the program's tiers")))
        return {"kind": kind, "tier": tier}
    if kind == "wallet":
        if data.get("wallet") not in WALLETS:
            raise SegmentError(
                "wallet", Text(N_("choose one of %(choices)s"), {"choices": ", ".join(WALLETS)})
            )
        return {"kind": kind, "wallet": data["wallet"]}
    if kind == "inactive":
        return {"kind": kind, "days": _whole(data, "days", 1, 3650)}
    if kind == "balance":
        return {"kind": kind, "at_least": _whole(data, "at_least", 0, 10**9)}
    start, end = _date(data, "from"), _date(data, "until")
    if end < start:
        raise SegmentError("until", Text(N_("must not be before from")))
    document: dict[str, Any] = {"kind": kind, "from": start.isoformat(), "until": end.isoformat()}
    if kind == "spend":
        document["at_least"] = _whole(data, "at_least", 1, 10**12)
    return document


def _whole(data: dict[str, Any], field: str, low: int, high: int) -> int:
    value = data.get(field)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SegmentError(
            field,
            Text(N_("must be a whole number from %(low)s to %(high)s"), {"low": low, "high": high}),
        )
    return value


def _date(data: dict[str, Any], field: str) -> date:
    value = data.get(field)
    try:
        return date.fromisoformat(value) if isinstance(value, str) else date.fromisoformat("")
    except ValueError:
        raise SegmentError(field, Text(N_("must be a date (YYYY-MM-DD)"))) from None


def segment_condition(
    segment: dict[str, Any], program_id: int, rules: ProgramRules, now: datetime
) -> ColumnElement[bool]:
    """The condition on ``cards`` (joined to ``members``) that selects the segment."""
    in_program = Card.program_id == program_id
    kind = segment["kind"]
    zone = ZoneInfo(rules.timezone)
    condition: ColumnElement[bool]
    if kind == "all":
        return in_program
    if kind == "tier":
        condition = Card.tier_key == segment["tier"]
    elif kind == "joined":
        start, end = _local_range(segment, zone)
        condition = and_(Member.created_at >= start, Member.created_at < end)
    elif kind == "inactive":
        since = now - timedelta(days=segment["days"])
        condition = not_(exists().where(Purchase.card_id == Card.id, Purchase.created_at >= since))
    elif kind == "birthday_month":
        month = now.astimezone(zone).month
        condition = and_(Member.birthday.is_not(None), extract("month", Member.birthday) == month)
    elif kind == "balance":
        condition = Card.points_balance >= segment["at_least"]
    elif kind == "spend":
        start, end = _local_range(segment, zone)
        spenders = (
            select(Purchase.card_id)
            .where(
                Purchase.program_id == program_id,
                Purchase.created_at >= start,
                Purchase.created_at < end,
            )
            .group_by(Purchase.card_id)
            .having(
                func.sum(
                    Purchase.paid - (Purchase.paid * Purchase.refunded_amount) / Purchase.amount
                )
                >= segment["at_least"]
            )
        )
        condition = Card.id.in_(spenders)
    else:  # wallet
        apple = exists().where(AppleRegistration.card_id == Card.id)
        # Offered to Google Wallet and not deleted there (as far as Google's callbacks tell).
        google = exists().where(
            GoogleObject.card_id == Card.id, GoogleObject.in_wallet.is_not(False)
        )
        wallet = segment["wallet"]
        condition = (
            apple
            if wallet == "apple"
            else google
            if wallet == "google"
            else and_(not_(apple), not_(google))
        )
    return and_(in_program, condition)


def _local_range(segment: dict[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[from, until] as local days, as UTC-aware instants [start, end)."""
    start = datetime.combine(date.fromisoformat(segment["from"]), time.min, tzinfo=zone)
    end = datetime.combine(
        date.fromisoformat(segment["until"]) + timedelta(days=1), time.min, tzinfo=zone
    )
    return start, end


def describe(segment: dict[str, Any]) -> Text:
    """The segment in words, for the console (``str()`` of it: in English)."""
    kind = segment["kind"]
    if kind == "all":
        return Text(N_("all members"))
    if kind == "tier":
        return Text(N_("members of tier %(tier)s"), {"tier": segment["tier"]})
    if kind == "joined":
        return Text(N_("joined %(from)s to %(until)s"), _period(segment))
    if kind == "inactive":
        return Text(N_("no purchase in %(days)s days"), {"days": segment["days"]})
    if kind == "birthday_month":
        return Text(N_("birthday this month"))
    if kind == "balance":
        return Text(N_("balance of at least %(points)s points"), {"points": segment["at_least"]})
    if kind == "spend":
        return Text(
            N_("spent at least %(amount)s from %(from)s to %(until)s"),
            {"amount": segment["at_least"], **_period(segment)},
        )
    wallet = segment["wallet"]
    if wallet == "apple":
        return Text(N_("card in apple wallet"))
    if wallet == "google":
        return Text(N_("card in google wallet"))
    return Text(N_("no wallet"))


def _period(segment: dict[str, Any]) -> dict[str, object]:
    return {"from": segment["from"], "until": segment["until"]}
