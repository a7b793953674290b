"""The program's figures, each a :class:`Table` (columns and rows of plain values) so that the
console can draw it and offer it as CSV from the same data.

Days are the program's own (its time zone), not UTC: a shop's "Monday" ends at its midnight.
Each daily series is one pass over the period's rows with a bucket per day, so it reads the
same on SQLite and PostgreSQL and needs no date functions of either. Money is in minor units.

Column names, overview keys and values are machine-readable English (the CSV keeps them); a
table's title is marked for translation, and the web layer labels the rest for its page.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.loyalty.ledger import rules_of
from passes.loyalty.models import Card, LedgerEntry, Program, Purchase
from passes.marketing.campaigns import progress
from passes.marketing.models import Campaign
from passes.push.models import AppleRegistration, GoogleObject
from passes.text import N_, Text

DAYS = 30
ACTIVE_DAYS = 30
NO_TIER = N_("no tier")  # the tiers table's row of cards without a tier


@dataclass(frozen=True)
class Table:
    name: str  # also the CSV file's name
    title: Text
    columns: list[str]
    rows: list[list[Any]]


def day_starts(zone: ZoneInfo, last_day: date, days: int) -> list[datetime]:
    """The UTC instants at which each of ``days`` local days up to ``last_day`` begins, and the
    end of the last one (``days + 1`` instants)."""
    first = last_day - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=n), time(), zone).astimezone(ZoneInfo("UTC"))
        for n in range(days + 1)
    ]


def _per_day(column: Any, starts: list[datetime], value: Any = 1) -> list[ColumnElement[Any]]:
    return [
        func.coalesce(func.sum(case((and_(column >= start, column < end), value), else_=0)), 0)
        for start, end in itertools.pairwise(starts)
    ]


def daily(
    session: Session, program: Program, *, days: int = DAYS, now: datetime | None = None
) -> Table:
    """Per local day: members who joined, members in all at the day's end, purchases, money
    paid and the average check."""
    now = now or utcnow()
    zone = ZoneInfo(rules_of(program).timezone)
    starts = day_starts(zone, now.astimezone(zone).date(), days)
    before = session.scalar(
        select(func.count())
        .select_from(Card)
        .where(Card.program_id == program.id, Card.created_at < starts[0])
    )
    joined = session.execute(
        select(*_per_day(Card.created_at, starts)).where(
            Card.program_id == program.id,
            Card.created_at >= starts[0],
            Card.created_at < starts[-1],
        )
    ).one()
    in_period = and_(
        Purchase.program_id == program.id,
        Purchase.created_at >= starts[0],
        Purchase.created_at < starts[-1],
    )
    counts = session.execute(select(*_per_day(Purchase.created_at, starts)).where(in_period)).one()
    paid = session.execute(
        select(*_per_day(Purchase.created_at, starts, Purchase.paid)).where(in_period)
    ).one()
    rows = []
    members = int(before or 0)
    for number, start in enumerate(starts[:-1]):
        members += int(joined[number])
        purchases, money = int(counts[number]), int(paid[number])
        average = (money + purchases // 2) // purchases if purchases else 0
        rows.append(
            [
                start.astimezone(zone).date().isoformat(),
                int(joined[number]),
                members,
                purchases,
                money,
                average,
            ]
        )
    return Table(
        "daily",
        Text(N_("Per day (last %(days)s days, %(zone)s)"), {"days": days, "zone": zone.key}),
        ["day", "joined", "members", "purchases", "paid", "average_check"],
        rows,
    )


def overview(session: Session, program: Program, *, now: datetime | None = None) -> Table:
    """The headline figures: members, cards in each wallet, active members, purchase frequency,
    average check, and points issued / redeemed / expired / outstanding (the liability)."""
    now = now or utcnow()
    since = now - timedelta(days=ACTIVE_DAYS)
    members = (
        session.scalar(select(func.count()).select_from(Card).where(Card.program_id == program.id))
        or 0
    )
    in_apple = (
        session.scalar(
            select(func.count(func.distinct(AppleRegistration.card_id)))
            .join(Card, Card.id == AppleRegistration.card_id)
            .where(Card.program_id == program.id)
        )
        or 0
    )
    offered_google, in_google = session.execute(
        select(
            func.count(),
            func.count(case((GoogleObject.in_wallet.is_(True), 1))),
        )
        .select_from(GoogleObject)
        .join(Card, Card.id == GoogleObject.card_id)
        .where(Card.program_id == program.id)
    ).one()
    recent = and_(Purchase.program_id == program.id, Purchase.created_at >= since)
    active, purchases, paid = session.execute(
        select(
            func.count(func.distinct(Purchase.card_id)),
            func.count(),
            func.coalesce(func.sum(Purchase.paid), 0),
        ).where(recent)
    ).one()
    issued, redeemed, expired = session.execute(
        select(
            func.coalesce(func.sum(case((LedgerEntry.points > 0, LedgerEntry.points), else_=0)), 0),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(LedgerEntry.points < 0, LedgerEntry.kind != "expiry"),
                            -LedgerEntry.points,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
            func.coalesce(
                func.sum(case((LedgerEntry.kind == "expiry", -LedgerEntry.points), else_=0)), 0
            ),
        ).where(LedgerEntry.program_id == program.id)
    ).one()
    outstanding = session.scalar(
        select(func.coalesce(func.sum(Card.points_balance), 0)).where(Card.program_id == program.id)
    )
    frequency = f"{purchases / active:.2f}" if active else "0"
    average = (int(paid) + purchases // 2) // purchases if purchases else 0
    rows: list[list[Any]] = [
        ["members", members],
        ["cards_in_apple_wallet", in_apple],
        ["cards_in_google_wallet", int(in_google)],
        ["cards_offered_to_google_wallet", int(offered_google)],
        [f"active_members_{ACTIVE_DAYS}_days", active],
        [f"purchases_{ACTIVE_DAYS}_days", purchases],
        [f"purchases_per_active_member_{ACTIVE_DAYS}_days", frequency],
        [f"average_check_{ACTIVE_DAYS}_days", average],
        ["points_issued", int(issued)],
        ["points_redeemed", int(redeemed)],
        ["points_expired", int(expired)],
        ["points_outstanding", int(outstanding or 0)],
    ]
    return Table("overview", Text(N_("Overview")), ["figure", "value"], rows)


def tiers(session: Session, program: Program) -> Table:
    """Members per tier, in the tiers' own order (then any tier no longer in the rules)."""
    counts = dict(
        session.execute(
            select(Card.tier_key, func.count())
            .where(Card.program_id == program.id)
            .group_by(Card.tier_key)
        ).all()
    )
    rows: list[list[Any]] = []
    for level in program.tier_levels():
        rows.append([level.get("name") or level.get("key"), counts.pop(level.get("key"), 0)])
    for key, count in sorted(counts.items(), key=lambda item: str(item[0])):
        rows.append([key or NO_TIER, count])
    return Table("tiers", Text(N_("Members per tier")), ["tier", "members"], rows)


def campaigns(session: Session, program: Program) -> Table:
    """Each campaign's reach (cards targeted) and delivery (cards whose wallets have it)."""
    rows: list[list[Any]] = []
    for campaign in session.scalars(
        select(Campaign)
        .where(Campaign.program_id == program.id)
        .order_by(Campaign.send_at.desc(), Campaign.id.desc())
    ):
        reached = campaign.targeted
        queued = progress(session, campaign).queued if reached is not None else None
        rows.append(
            [
                campaign.title,
                campaign.status,
                campaign.send_at.isoformat(),
                reached if reached is not None else "",
                "" if reached is None or queued is None else reached - queued,
                "" if queued is None else queued,
            ]
        )
    return Table(
        "campaigns",
        Text(N_("Campaigns")),
        ["campaign", "status", "send_at", "targeted", "delivered", "queued"],
        rows,
    )


def all_tables(session: Session, program: Program, *, now: datetime | None = None) -> list[Table]:
    return [
        overview(session, program, now=now),
        daily(session, program, now=now),
        tiers(session, program),
        campaigns(session, program),
    ]
