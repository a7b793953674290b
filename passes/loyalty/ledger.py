"""The points ledger: every balance change is an append-only entry, written in the same
transaction as the card's balance, lots, lifetime spend and tier.

Callers own the transaction (commit or roll back); every function here expects the card row to be
locked with :func:`lock_card` first, so two tills cannot interleave on one card: PostgreSQL takes a
row lock, and SQLite transactions already begin IMMEDIATE (one writer at a time).

Credits create a :class:`PointLot`; debits consume lots oldest first, so expiry takes what was
earned earliest and spending uses it up first.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import Connection, and_, extract, func, or_, select, update
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.loyalty.calculator import (
    Line,
    MemberContext,
    PurchaseQuote,
    expiry_date,
    period_start,
    points_payment_limit,
    points_value,
    price_purchase,
    upgraded_tier,
)
from passes.loyalty.ledger_sql import (
    CardState,
    Credit,
    PurchaseRows,
    change_card,
    insert_lot,
    insert_row,
    set_lot_remaining,
    spendable_lots,
    write_purchase,
)
from passes.loyalty.models import (
    ActionCount,
    Card,
    LedgerEntry,
    Member,
    PointLot,
    Program,
    Purchase,
    RewardStock,
)
from passes.loyalty.rules import ProgramRules, ProgressiveDiscount, parse_rules_document
from passes.text import N_, Text, in_language

# Larger amounts are typing errors, not purchases (100 million in major units).
MAX_AMOUNT = 10_000_000_000
MAX_POINTS = 1_000_000_000


class LedgerError(Exception):
    """An operation the rules refuse. ``code`` is stable for API clients; ``detail`` is for people.

    Raised before anything is written, or with the transaction to be rolled back by the caller.
    """

    def __init__(self, code: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


def rules_of(program: Program) -> ProgramRules:
    """The program's parsed rules (cached by content: programs change rules rarely)."""
    return parse_rules_document(json.dumps(program.rules or {}, sort_keys=True))


def lock_card(session: Session, card_id: int) -> Card:
    """Load ``card_id`` for update: later balance changes in this transaction are serialised."""
    card = session.scalar(
        select(Card)
        .where(Card.id == card_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # re-read what another till may have changed
    )
    if card is None:
        raise LedgerError("unknown_card", f"there is no card {card_id}", 404)
    return card


def local_date(rules: ProgramRules, moment: datetime) -> date:
    """The program's calendar date at ``moment`` (boosts, periods and expiry follow it)."""
    return moment.astimezone(ZoneInfo(rules.timezone)).date()


def end_of_local_day(rules: ProgramRules, day: date) -> datetime:
    """The first instant after ``day`` in the program's time zone, as UTC-aware datetime."""
    zone = ZoneInfo(rules.timezone)
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def _entry(
    session: Session,
    card: Card,
    *,
    kind: str,
    points: int,
    source: str,
    now: datetime,
    money: int | None = None,
    purchase: Purchase | None = None,
    counterpart: Card | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    apply: bool = True,
) -> LedgerEntry:
    """Write one entry now; with ``apply`` (the default) the card's balance moves with it.
    Callers that change the card in several ways at once pass ``apply=False`` and call
    :func:`change_card` once."""
    entry = insert_row(
        session,
        LedgerEntry(
            program_id=card.program_id,
            card_id=card.id,
            kind=kind,
            points=points,
            money=money,
            purchase_id=purchase.id if purchase is not None else None,
            counterpart_card_id=counterpart.id if counterpart is not None else None,
            source=source,
            reason=reason,
            detail=detail,
            created_at=now,
        ),
    )
    if apply:
        change_card(session, card, balance=card.points_balance + points, now=now)
    return entry


def credit(
    session: Session,
    card: Card,
    rules: ProgramRules,
    *,
    kind: str,
    points: int,
    source: str,
    now: datetime,
    purchase: Purchase | None = None,
    counterpart: Card | None = None,
    money: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    apply: bool = True,
) -> LedgerEntry | None:
    """Add ``points`` (> 0) to the card as a new lot that expires by the program's rules."""
    if points <= 0:
        return None
    entry = _entry(
        session,
        card,
        kind=kind,
        points=points,
        source=source,
        now=now,
        money=money,
        purchase=purchase,
        counterpart=counterpart,
        reason=reason,
        detail=detail,
        apply=apply,
    )
    insert_lot(
        session,
        **_lot_values(card.id, rules, points=points, now=now),
        entry_id=entry.id,
        purchase_id=purchase.id if purchase is not None else None,
    )
    return entry


def _credit_values(
    card: CardState,
    rules: ProgramRules,
    *,
    kind: str,
    points: int,
    money: int | None,
    source: str,
    now: datetime,
) -> Credit:
    """The entry and lot of a purchase's credit, for :func:`write_purchase` to tie together."""
    return Credit(
        entry={
            "program_id": card.program_id,
            "card_id": card.id,
            "kind": kind,
            "points": points,
            "money": money,
            "counterpart_card_id": None,
            "source": source,
            "reason": None,
            "detail": None,
            "created_at": now,
        },
        lot=_lot_values(card.id, rules, points=points, now=now),
    )


def _lot_values(card_id: int, rules: ProgramRules, *, points: int, now: datetime) -> dict[str, Any]:
    """A new point lot of ``points`` earned ``now``, expiring by the program's rules (its entry
    and purchase ids are added by the writer)."""
    expires_on = expiry_date(rules, local_date(rules, now))
    return {
        "card_id": card_id,
        "earned_at": now,
        "expires_at": end_of_local_day(rules, expires_on) if expires_on else None,
        "remaining": points,
        "warned_at": None,
    }


def debit(
    session: Session,
    card: Card,
    *,
    kind: str,
    points: int,
    source: str,
    now: datetime,
    purchase: Purchase | None = None,
    counterpart: Card | None = None,
    money: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    prefer_purchase: Purchase | None = None,
) -> LedgerEntry | None:
    """Take ``points`` (> 0) from the card, oldest lots first (a refunded purchase's own lot
    first when ``prefer_purchase`` is given). Refuses to go below zero."""
    if points <= 0:
        return None
    if points > card.points_balance:
        raise LedgerError(
            "insufficient_points",
            f"the card has {card.points_balance} points, {points} are needed",
        )
    lots = spendable_lots(session, card.id)
    if prefer_purchase is not None:
        lots.sort(key=lambda lot: lot[2] != prefer_purchase.id)
    left = points
    used: list[list[int]] = []
    for lot_id, remaining, _purchase_id in lots:
        if left == 0:
            break
        take = min(remaining, left)
        left -= take
        used.append([lot_id, take])
    if left:
        raise LedgerError(
            "ledger_inconsistent", f"card {card.id}: lots hold less than the balance", 500
        )
    remaining_of = {lot_id: remaining for lot_id, remaining, _purchase_id in lots}
    set_lot_remaining(session, [(lot_id, remaining_of[lot_id] - take) for lot_id, take in used])
    return _entry(
        session,
        card,
        kind=kind,
        points=-points,
        source=source,
        now=now,
        money=money,
        purchase=purchase,
        counterpart=counterpart,
        reason=reason,
        detail={**(detail or {}), "lots": used},
    )


# --------------------------------------------------------------------------- purchases


@dataclass(frozen=True)
class PurchaseResult:
    purchase: Purchase
    quote: PurchaseQuote
    tier_changed: bool


def _period_spend(session: Session | Connection, card_id: int, since: datetime) -> int:
    """What the member paid since ``since``, net of refunds (the progressive discount's base)."""
    spent = session.scalar(
        select(
            func.coalesce(
                func.sum(
                    Purchase.paid - (Purchase.paid * Purchase.refunded_amount) / Purchase.amount
                ),
                0,
            )
        ).where(Purchase.card_id == card_id, Purchase.created_at >= since)
    )
    return int(spent or 0)


def member_context(session: Session | Connection, card: CardState, now: datetime) -> MemberContext:
    """What the rules need to know about the member at ``now``: birthday, tier, spend in the
    current discount period (before this purchase) and whether they ever bought anything."""
    rules = card.rules
    period_spend = 0
    if isinstance(rules.discount, ProgressiveDiscount):  # the only rule that reads it
        today = local_date(rules, now)
        since = end_of_local_day(rules, period_start(rules, today) - timedelta(days=1))
        period_spend = _period_spend(session, card.id, since)
    first = False
    welcome_bonus = rules.earning.welcome_bonus
    if welcome_bonus is not None and welcome_bonus.on == "first_purchase":
        first = (
            session.scalar(select(Purchase.id).where(Purchase.card_id == card.id).limit(1)) is None
        )
    return MemberContext(
        birthday=card.birthday,
        tier_key=card.tier_key,
        period_spend=period_spend,
        is_first_purchase=first,
    )


def tier_metric(
    session: Session | Connection, card_id: int, rules: ProgramRules, now: datetime
) -> int:
    """The value tiers qualify on: net spend or points earned within the rules' window."""
    if rules.tiers is None:
        return 0
    since = now - timedelta(days=rules.tiers.window_days)
    if rules.tiers.metric == "spend":
        return _period_spend(session, card_id, since)
    earned = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.card_id == card_id,
            LedgerEntry.points > 0,
            LedgerEntry.kind.in_(("accrual", "action_bonus", "cashback", "welcome_bonus")),
            LedgerEntry.created_at >= since,
        )
    )
    return int(earned or 0)


def _upgraded_tier_key(
    session: Session | Connection,
    card: CardState,
    rules: ProgramRules,
    now: datetime,
    pending: int = 0,
) -> str | None:
    """The tier the card moves up to now, or None when it stays (tiers only rise here).
    ``pending``: what a change not yet written adds to the metric (a purchase's paid amount
    or points)."""
    if rules.tiers is None:
        return None
    metric = tier_metric(session, card.id, rules, now) + pending
    new_tier = upgraded_tier(rules, card.tier_key, metric)
    if new_tier is None or new_tier == card.tier_key:
        return None
    return new_tier


def check_amount(amount: int, what: str = "amount") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError("invalid_amount", f"{what} must be an integer number of minor units")
    if amount <= 0:
        raise LedgerError("invalid_amount", f"{what} must be positive, got {amount}")
    if amount > MAX_AMOUNT:
        raise LedgerError("invalid_amount", f"{what} {amount} is beyond any real purchase")


@dataclass(frozen=True)
class PurchasePlan:
    """A purchase priced under the card's lock but not yet written: the rows to write, the quote
    behind them, and the member as the rules will see them once it is written."""

    rows: PurchaseRows
    quote: PurchaseQuote
    tier_changed: bool
    member_after: MemberContext


def plan_purchase(
    session: Session | Connection,
    card: CardState,
    *,
    amount: int,
    currency: str,
    lines: Sequence[Line] | None,
    store_id: int | None,
    receipt: str | None,
    source: str,
    now: datetime,
) -> PurchasePlan:
    """Apply the program's rules to a purchase: the points and cashback it earns, its discount,
    the spend and (upwards only) the tier it leads to. Reads what the rules need; writes nothing."""
    rules = card.rules
    check_amount(amount)
    if currency != rules.currency:
        raise LedgerError(
            "wrong_currency", f"this program works in {rules.currency}, not {currency}"
        )
    if lines is not None and any(
        isinstance(line.amount, bool) or not isinstance(line.amount, int) or line.amount < 0
        for line in lines
    ):
        raise LedgerError("invalid_amount", "every line amount must be zero or positive")
    if lines is not None and sum(line.amount for line in lines) != amount:
        raise LedgerError("lines_mismatch", "the lines' amounts must add up to the amount")
    today = local_date(rules, now)
    member = member_context(session, card, now)
    quote = price_purchase(rules, amount=amount, lines=lines, member=member, on=today)
    values = {
        "program_id": card.program_id,
        "card_id": card.id,
        "store_id": store_id,
        "amount": amount,
        "currency": currency,
        "discount": quote.discount,
        "paid": quote.paid,
        "points_earned": quote.points,
        "cashback_points": quote.cashback_points,
        "refunded_amount": 0,
        "reversed_points": 0,
        "receipt": receipt,
        "lines": [{"amount": x.amount, "category": x.category, "sku": x.sku} for x in lines]
        if lines is not None
        else None,
        "breakdown": [
            {"rule": row.rule, "detail": row.detail, "points": row.points}
            for row in quote.breakdown
        ],
        "source": source,
        "created_at": now,
    }
    credits = [
        _credit_values(card, rules, kind=kind, points=points, money=money, source=source, now=now)
        for kind, points, money in (
            ("accrual", quote.points, quote.paid),
            ("cashback", quote.cashback_points, None),
        )
        if points > 0
    ]
    # The card changes once: balance, spend and (upwards only) tier, with one version bump.
    # The tier counts this purchase, which is not written yet.
    pending = (
        quote.paid
        if rules.tiers is not None and rules.tiers.metric == "spend"
        else quote.points + quote.cashback_points
    )
    new_tier = _upgraded_tier_key(session, card, rules, now, pending=pending)
    tier_key = new_tier if new_tier is not None else card.tier_key
    rows = PurchaseRows(
        values=values,
        credits=credits,
        balance=card.points_balance + quote.points + quote.cashback_points,
        lifetime_spend=card.lifetime_spend + quote.paid,
        tier_key=tier_key,
        now=now,
    )
    member_after = replace(
        member,
        tier_key=tier_key,
        period_spend=member.period_spend + quote.paid,  # this purchase is in the current period
        is_first_purchase=False,
    )
    return PurchasePlan(rows, quote, new_tier is not None, member_after)


def record_purchase(
    session: Session,
    card: Card,
    *,
    amount: int,
    currency: str,
    lines: Sequence[Line] | None,
    store_id: int | None,
    receipt: str | None,
    source: str,
    now: datetime | None = None,
) -> PurchaseResult:
    """Price and write a purchase of a loaded, locked ORM card (see :func:`plan_purchase`)."""
    now = now or utcnow()
    session.flush()  # the rules read purchases and entries: pending ones must be in the database
    state = CardState.of(card, rules_of(card.program))
    plan = plan_purchase(
        session,
        state,
        amount=amount,
        currency=currency,
        lines=lines,
        store_id=store_id,
        receipt=receipt,
        source=source,
        now=now,
    )
    purchase = write_purchase(session, card, state, plan.rows)
    return PurchaseResult(purchase, plan.quote, plan.tier_changed)


@dataclass(frozen=True)
class RefundResult:
    purchase: Purchase
    refunded: int
    reversed_points: int
    clawed_back: int
    shortfall: int


def refund_purchase(
    session: Session,
    card: Card,
    purchase: Purchase,
    *,
    amount: int | None,
    source: str,
    now: datetime | None = None,
) -> RefundResult:
    """Refund all or part of a purchase: reverse its points in proportion to the refunded share.

    Points already spent cannot be taken back: what the card holds is clawed back and the rest is
    reported as ``shortfall`` (the balance never goes negative). Tiers are not lowered here; only
    the scheduled evaluation downgrades.
    """
    now = now or utcnow()
    refundable = purchase.amount - purchase.refunded_amount
    amount = refundable if amount is None else amount
    check_amount(amount, "refund amount")
    if amount > refundable:
        raise LedgerError(
            "refund_too_large",
            f"at most {refundable} of this purchase can still be refunded, not {amount}",
        )
    earned = purchase.points_earned + purchase.cashback_points
    refunded_total = purchase.refunded_amount + amount
    target = earned * refunded_total // purchase.amount
    to_reverse = target - purchase.reversed_points
    clawed = min(to_reverse, card.points_balance)
    debit(
        session,
        card,
        kind="refund_reversal",
        points=clawed,
        source=source,
        now=now,
        purchase=purchase,
        money=amount,
        prefer_purchase=purchase,
        detail={"due": to_reverse, "shortfall": to_reverse - clawed},
    )
    paid_before = purchase.paid * purchase.refunded_amount // purchase.amount
    paid_after = purchase.paid * refunded_total // purchase.amount
    spend = max(0, card.lifetime_spend - (paid_after - paid_before))
    change_card(session, card, lifetime_spend=spend, now=now)
    purchase.refunded_amount = refunded_total
    purchase.reversed_points = target
    return RefundResult(purchase, amount, to_reverse, clawed, to_reverse - clawed)


# --------------------------------------------------------------------------- spending


@dataclass(frozen=True)
class RedemptionResult:
    entry: LedgerEntry
    points: int
    money: int
    reward_key: str | None = None


def redeem_as_money(
    session: Session,
    card: Card,
    *,
    receipt_amount: int,
    points: int | None,
    source: str,
    now: datetime | None = None,
) -> RedemptionResult:
    """Pay part of a receipt with points, within the program's cap (``points`` None = the most
    allowed)."""
    now = now or utcnow()
    rules = rules_of(card.program)
    if rules.points_as_money is None:
        raise LedgerError("not_offered", "this program does not let points pay for purchases")
    check_amount(receipt_amount, "receipt amount")
    limit, _ = points_payment_limit(
        rules, receipt_amount=receipt_amount, balance=card.points_balance
    )
    wanted = limit if points is None else points
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted <= 0:
        raise LedgerError("invalid_points", "points must be a positive integer")
    if wanted > card.points_balance:
        raise LedgerError(
            "insufficient_points", f"the card has {card.points_balance} points, not {wanted}"
        )
    if wanted > limit:
        raise LedgerError(
            "over_limit", f"at most {limit} points can pay for a receipt of {receipt_amount}"
        )
    money = points_value(rules, wanted)
    entry = debit(
        session, card, kind="redemption", points=wanted, source=source, now=now, money=money
    )
    assert entry is not None
    return RedemptionResult(entry, wanted, money)


def sync_reward_stock(session: Session, program: Program) -> None:
    """Create stock rows for stocked rewards that have none (after a rules change or import)."""
    rules = rules_of(program)
    existing = set(
        session.scalars(select(RewardStock.reward_key).where(RewardStock.program_id == program.id))
    )
    for reward in rules.rewards:
        if reward.stock is not None and reward.key not in existing:
            session.add(
                RewardStock(program_id=program.id, reward_key=reward.key, remaining=reward.stock)
            )


def redeem_reward(
    session: Session, card: Card, *, reward_key: str, source: str, now: datetime | None = None
) -> RedemptionResult:
    """Exchange points for a catalogue reward; a stocked reward loses one unit atomically."""
    now = now or utcnow()
    rules = rules_of(card.program)
    reward = next((r for r in rules.rewards if r.key == reward_key), None)
    if reward is None:
        raise LedgerError(
            "unknown_reward", f"there is no reward {reward_key!r} in this program", 404
        )
    if reward.cost > card.points_balance:
        raise LedgerError(
            "insufficient_points",
            f"{reward.name} costs {reward.cost} points; the card has {card.points_balance}",
        )
    if reward.stock is not None:
        sync_reward_stock(session, card.program)
        session.flush()
        taken = session.execute(
            update(RewardStock)
            .where(
                RewardStock.program_id == card.program_id,
                RewardStock.reward_key == reward_key,
                RewardStock.remaining > 0,
            )
            .values(remaining=RewardStock.remaining - 1)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise LedgerError("out_of_stock", f"{reward.name} is out of stock", 409)
    entry = debit(
        session,
        card,
        kind="reward",
        points=reward.cost,
        source=source,
        now=now,
        reason=reward.name,
        detail={"reward": reward.key},
    )
    assert entry is not None
    return RedemptionResult(entry, reward.cost, 0, reward.key)


# --------------------------------------------------------------------------- other movements


def award_action(
    session: Session, card: Card, *, action_key: str, source: str, now: datetime | None = None
) -> LedgerEntry:
    """Points for a review, a referral, a survey…, within the action's per-member limit."""
    now = now or utcnow()
    rules = rules_of(card.program)
    action = next((a for a in rules.actions if a.key == action_key), None)
    if action is None:
        raise LedgerError(
            "unknown_action", f"there is no action {action_key!r} in this program", 404
        )
    counter = session.get(ActionCount, (card.id, action_key))
    if counter is None:
        counter = ActionCount(card_id=card.id, action_key=action_key, count=0)
        session.add(counter)
    if action.limit_per_member is not None and counter.count >= action.limit_per_member:
        raise LedgerError(
            "limit_reached",
            f"{action.name}: at most {action.limit_per_member} time(s) per member",
            409,
        )
    counter.count += 1
    entry = credit(
        session,
        card,
        rules,
        kind="action_bonus",
        points=action.points,
        source=source,
        now=now,
        reason=action.name,
        detail={"action": action.key},
    )
    if entry is None:
        raise LedgerError("invalid_points", f"{action.name} awards no points")
    return entry


def welcome(session: Session, card: Card, *, now: datetime | None = None) -> LedgerEntry | None:
    """The welcome bonus on joining, when the rules give it then."""
    now = now or utcnow()
    rules = rules_of(card.program)
    bonus = rules.earning.welcome_bonus
    if bonus is None or bonus.on != "join":
        return None
    return credit(
        session,
        card,
        rules,
        kind="welcome_bonus",
        points=bonus.points,
        source="system",
        now=now,
        reason="welcome bonus",
    )


def adjust(
    session: Session,
    card: Card,
    *,
    points: int,
    reason: str,
    actor: str,
    now: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> LedgerEntry:
    """A manual correction by a person, with the reason and who did it kept in the ledger."""
    now = now or utcnow()
    if not reason.strip():
        raise LedgerError("reason_required", "an adjustment needs a reason")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise LedgerError("invalid_points", "points must be a non-zero integer")
    if abs(points) > MAX_POINTS:
        raise LedgerError("invalid_points", f"{points} points is beyond any real adjustment")
    if points > 0:
        entry = credit(
            session,
            card,
            rules_of(card.program),
            kind="adjustment",
            points=points,
            source=actor,
            now=now,
            reason=reason.strip(),
            detail=detail,
        )
    else:
        entry = debit(
            session,
            card,
            kind="adjustment",
            points=-points,
            source=actor,
            now=now,
            reason=reason.strip(),
            detail=detail,
        )
    assert entry is not None
    return entry


@dataclass(frozen=True)
class TransferResult:
    out_entry: LedgerEntry
    in_entry: LedgerEntry
    points: int


def transfer(
    session: Session,
    sender: Card,
    receiver: Card,
    *,
    points: int,
    source: str,
    now: datetime | None = None,
) -> TransferResult:
    """Move points between two cards of one program within the program's limits.

    Both cards must be locked (lower id first, see :func:`lock_cards`).
    """
    now = now or utcnow()
    if sender.program_id != receiver.program_id:
        raise LedgerError("other_program", "points move only between cards of the same program")
    if sender.id == receiver.id:
        raise LedgerError("same_card", "a card cannot transfer points to itself")
    rules = rules_of(sender.program)
    limits = rules.transfers
    if limits is None or not limits.enabled:
        raise LedgerError("not_offered", "this program does not allow transfers")
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise LedgerError("invalid_points", "points must be a positive integer")
    if points < limits.min_points or (limits.max_points is not None and points > limits.max_points):
        raise LedgerError(
            "over_limit",
            f"a transfer must be between {limits.min_points} and {limits.max_points} points",
        )
    if limits.max_per_day is not None:
        day_start = end_of_local_day(rules, local_date(rules, now) - timedelta(days=1))
        today = session.scalar(
            select(func.count()).where(
                LedgerEntry.card_id == sender.id,
                LedgerEntry.kind == "transfer_out",
                LedgerEntry.created_at >= day_start,
            )
        )
        if (today or 0) >= limits.max_per_day:
            raise LedgerError(
                "limit_reached", f"at most {limits.max_per_day} transfers per day", 409
            )
    out_entry = debit(
        session,
        sender,
        kind="transfer_out",
        points=points,
        source=source,
        now=now,
        counterpart=receiver,
    )
    in_entry = credit(
        session,
        receiver,
        rules,
        kind="transfer_in",
        points=points,
        source=source,
        now=now,
        counterpart=sender,
    )
    assert out_entry is not None and in_entry is not None
    return TransferResult(out_entry, in_entry, points)


def lock_cards(session: Session, *card_ids: int) -> list[Card]:
    """Lock several cards in id order (two transfers A→B and B→A cannot deadlock)."""
    locked = {card_id: lock_card(session, card_id) for card_id in sorted(set(card_ids))}
    return [locked[card_id] for card_id in card_ids]


# --------------------------------------------------------------------------- scheduled work


@dataclass
class ExpiryReport:
    cards: int = 0
    points: int = 0
    expired: list[tuple[int, int]] = field(default_factory=list)  # (card id, points)


def expire_due(session: Session, *, now: datetime | None = None, batch: int = 500) -> ExpiryReport:
    """Expire every lot whose time has come (oldest first on each card). Idempotent."""
    now = now or utcnow()
    report = ExpiryReport()
    card_ids = list(
        session.scalars(
            select(PointLot.card_id)
            .where(PointLot.expires_at <= now, PointLot.remaining > 0)
            .distinct()
            .order_by(PointLot.card_id)  # every job locks cards in id order: no deadlocks
            .limit(batch)
        )
    )
    for card_id in card_ids:
        card = lock_card(session, card_id)
        due = list(
            session.execute(
                select(PointLot.id, PointLot.remaining).where(
                    PointLot.card_id == card_id, PointLot.expires_at <= now, PointLot.remaining > 0
                )
            )
        )
        points = sum(row.remaining for row in due)
        if not points:
            continue
        used = [[row.id, row.remaining] for row in due]
        set_lot_remaining(session, [(row.id, 0) for row in due])
        _entry(
            session,
            card,
            kind="expiry",
            points=-points,
            source="system",
            now=now,
            reason="points expired",
            detail={"lots": used},
        )
        card.expiry_notice = expiry_notice(session, card, now=now)  # what is left of it
        report.cards += 1
        report.points += points
        report.expired.append((card_id, points))
    return report


def expiring_soon(
    session: Session, *, now: datetime | None = None, limit: int | None = None
) -> list[tuple[int, int, datetime]]:
    """(card id, points, first expiry) for lots inside their program's warning window and not
    warned yet; marks them warned, so each lot is announced once. Cards in id order, each
    locked before its lots are marked (the order the till locks in); at most ``limit``."""
    now = now or utcnow()
    candidates: list[tuple[int, int]] = []  # (card id, warn days)
    for program in session.scalars(select(Program)).all():
        warn_days = getattr(rules_of(program).expiry, "warn_days", None)
        if not warn_days:
            continue
        candidates += [
            (card_id, warn_days)
            for card_id in session.scalars(
                select(PointLot.card_id)
                .join(Card, Card.id == PointLot.card_id)
                .where(Card.program_id == program.id, *_warning_window(now, warn_days))
                .distinct()
            )
        ]
    candidates.sort()
    found: list[tuple[int, int, datetime]] = []
    for card_id, warn_days in candidates[:limit]:
        lock_card(session, card_id)
        lots = session.scalars(
            select(PointLot).where(PointLot.card_id == card_id, *_warning_window(now, warn_days))
        )
        points, first = 0, None
        for lot in lots:
            assert lot.expires_at is not None
            points += lot.remaining
            first = lot.expires_at if first is None else min(first, lot.expires_at)
            lot.warned_at = now
        if first is not None:
            found.append((card_id, points, first))
    return found


def _warning_window(now: datetime, warn_days: int) -> tuple[Any, ...]:
    return (
        PointLot.remaining > 0,
        PointLot.warned_at.is_(None),
        PointLot.expires_at > now,
        PointLot.expires_at <= now + timedelta(days=warn_days),
    )


def warn_expiring(
    session: Session, *, now: datetime | None = None, limit: int | None = None
) -> int:
    """Put a notice of points about to expire on each card that has some newly in the warning
    window (at most ``limit`` cards): both wallets show it, Apple on the lock screen. Returns
    the cards warned; the caller commits."""
    now = now or utcnow()
    warned = expiring_soon(session, now=now, limit=limit)
    session.flush()
    for card_id, _points, _first in warned:
        card = lock_card(session, card_id)
        card.expiry_notice = expiry_notice(session, card, now=now)
    return len(warned)


def expiry_notice(session: Session, card: Card, *, now: datetime | None = None) -> str | None:
    """The card's notice of warned points still to expire ("120 Beans expire at the end of
    31 Mar 2026": all of them, by the first day any expire), or None. Derived from the lots
    each time, so spending or expiring some of them keeps it true."""
    now = now or utcnow()
    points, first = session.execute(
        select(func.coalesce(func.sum(PointLot.remaining), 0), func.min(PointLot.expires_at)).where(
            PointLot.card_id == card.id,
            PointLot.warned_at.is_not(None),
            PointLot.remaining > 0,
            PointLot.expires_at > now,
        )
    ).one()
    if not points or first is None:
        return None
    # Lots end at the first instant of a day: the day before is the last to use them.
    day = local_date(rules_of(card.program), first - timedelta(microseconds=1))
    language = card.member.language or "en"
    notice = Text(
        _EXPIRY_NOTICE,
        {
            "points": points,
            "label": card.program.points_label,
            "day": format_date(day, "d MMM y", locale=language),
        },
    )
    return in_language(notice, language)  # the words of the page the member joined on


_EXPIRY_NOTICE = N_("%(points)s %(label)s expire at the end of %(day)s")


def birthday_gift_candidates(
    session: Session, program: Program, *, now: datetime | None = None
) -> list[int]:
    """Cards of ``program`` whose member has a birthday today (the program's day; 29 February
    is celebrated on the 28th in other years) and no birthday gift yet this year."""
    rules = rules_of(program)
    birthday = rules.earning.birthday
    if birthday is None or not birthday.gift:
        return []
    today = local_date(rules, now or utcnow())
    days = [(today.month, today.day)]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        days.append((2, 29))
    return list(
        session.scalars(
            select(Card.id)
            .join(Member, Member.id == Card.member_id)
            .where(
                Card.program_id == program.id,
                or_(
                    *(
                        and_(
                            extract("month", Member.birthday) == month,
                            extract("day", Member.birthday) == day,
                        )
                        for month, day in days
                    )
                ),
                Card.id.not_in(_gifted_since(program, _start_of_local_year(rules, today))),
            )
            .order_by(Card.id)
        )
    )


def give_birthday_gift(
    session: Session, card_id: int, *, now: datetime | None = None
) -> LedgerEntry | None:
    """The card's birthday gift, unless it has had this year's (checked under the card's lock,
    so two workers never both give it). The caller commits."""
    now = now or utcnow()
    card = lock_card(session, card_id)
    rules = rules_of(card.program)
    birthday = rules.earning.birthday
    if birthday is None or not birthday.gift:
        return None
    today = local_date(rules, now)
    born = card.member.birthday
    if born is None or not _is_birthday(born, today):
        return None
    already = session.scalar(
        _gifted_since(card.program, _start_of_local_year(rules, today)).where(
            LedgerEntry.card_id == card.id
        )
    )
    if already is not None:
        return None
    return credit(
        session,
        card,
        rules,
        kind="birthday_gift",
        points=birthday.gift,
        source="system",
        now=now,
        reason=f"birthday gift {today.year}",
    )


def _is_birthday(born: date, today: date) -> bool:
    if (born.month, born.day) == (today.month, today.day):
        return True
    leap_day = (born.month, born.day) == (2, 29)
    return leap_day and (today.month, today.day) == (2, 28) and not calendar.isleap(today.year)


def _start_of_local_year(rules: ProgramRules, today: date) -> datetime:
    return end_of_local_day(rules, date(today.year - 1, 12, 31))


def _gifted_since(program: Program, since: datetime) -> Any:
    return select(LedgerEntry.card_id).where(
        LedgerEntry.program_id == program.id,
        LedgerEntry.kind == "birthday_gift",
        LedgerEntry.created_at >= since,
    )


@dataclass(frozen=True)
class TierChange:
    card_id: int
    old: str | None
    new: str | None


def evaluate_tiers(
    session: Session, program: Program, *, now: datetime | None = None, batch: int = 1000
) -> list[TierChange]:
    """Re-qualify every card of ``program`` on its window's metric: the only place a tier goes
    down (purchases only ever upgrade). See :func:`tier_candidates` and :func:`retier`."""
    now = now or utcnow()
    changes = (
        retier(session, card_id, program, now=now)
        for card_id in tier_candidates(session, program, now=now, batch=batch)
    )
    return [change for change in changes if change is not None]


def tier_candidates(
    session: Session, program: Program, *, now: datetime, batch: int = 1000
) -> list[int]:
    """The cards of ``program`` whose tier its metric, read for all cards in one pass, says
    should change. Tills keep working meanwhile, so each is checked again by :func:`retier`."""
    from passes.loyalty.calculator import evaluated_tier

    rules = rules_of(program)
    if rules.tiers is None:
        return []
    since = now - timedelta(days=rules.tiers.window_days)
    if rules.tiers.metric == "spend":
        metric = select(
            Purchase.card_id,
            func.sum(Purchase.paid - (Purchase.paid * Purchase.refunded_amount) / Purchase.amount),
        ).where(Purchase.program_id == program.id, Purchase.created_at >= since)
        values = dict(session.execute(metric.group_by(Purchase.card_id)).all())
    else:
        metric = select(LedgerEntry.card_id, func.sum(LedgerEntry.points)).where(
            LedgerEntry.program_id == program.id,
            LedgerEntry.points > 0,
            LedgerEntry.kind.in_(("accrual", "action_bonus", "cashback", "welcome_bonus")),
            LedgerEntry.created_at >= since,
        )
        values = dict(session.execute(metric.group_by(LedgerEntry.card_id)).all())
    cards = session.execute(
        select(Card.id, Card.tier_key)
        .where(Card.program_id == program.id)
        .order_by(Card.id)
        .execution_options(yield_per=batch)
    )
    return [
        card_id
        for card_id, tier_key in cards
        if evaluated_tier(rules, int(values.get(card_id) or 0)) != tier_key
    ]


def retier(session: Session, card_id: int, program: Program, *, now: datetime) -> TierChange | None:
    """Re-qualify one card under its row lock, on its metric read now: a purchase committed
    after the candidates were read counts, and one in flight waits for this transaction (and is
    then priced on the new tier). The change goes to the outbox through the version hook."""
    from passes.loyalty.calculator import evaluated_tier

    rules = rules_of(program)
    card = lock_card(session, card_id)
    new = evaluated_tier(rules, tier_metric(session, card_id, rules, now))
    if new == card.tier_key:
        return None
    change = TierChange(card.id, card.tier_key, new)
    card.tier_key = new
    return change


@dataclass(frozen=True)
class Drift:
    card_id: int
    what: str
    stored: int
    computed: int


def check_ledger(session: Session) -> list[Drift]:
    """Recompute every card's balance from its entries (and from its lots) and report drift."""
    drift: list[Drift] = []
    sums = dict(
        session.execute(
            select(LedgerEntry.card_id, func.sum(LedgerEntry.points)).group_by(LedgerEntry.card_id)
        ).all()
    )
    lots = dict(
        session.execute(
            select(PointLot.card_id, func.sum(PointLot.remaining)).group_by(PointLot.card_id)
        ).all()
    )
    for card_id, balance in session.execute(select(Card.id, Card.points_balance)):
        from_entries = int(sums.get(card_id) or 0)
        in_lots = int(lots.get(card_id) or 0)
        if from_entries != balance:
            drift.append(Drift(card_id, "balance vs ledger entries", balance, from_entries))
        if in_lots != balance:
            drift.append(Drift(card_id, "balance vs point lots", balance, in_lots))
        if balance < 0:
            drift.append(Drift(card_id, "negative balance", balance, 0))
    return drift
