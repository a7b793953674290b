"""The ledger's writes as prebuilt Core statements: one round trip each, no unit of work.

The till's hot path (a purchase: a purchase row, an entry, a lot, the card and its outbox row)
spent most of its time in the ORM's flush machinery, not in the database. These statements are
built once at import with bind parameters, so executing one costs a cache lookup and a round trip.
Rows written here are attached to the session as persistent objects (no second INSERT), and the
card's new values are set as committed state, so the ORM and the database agree afterwards.

Card changes made here bump the pass version and queue the wallet outbox explicitly, exactly as
``passes.loyalty.pass_versions`` does for changes that go through the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from passes.loyalty.models import Card, LedgerEntry, PointLot, Purchase
from passes.loyalty.pass_versions import (
    STAMP_EXPRESSIONS,
    change_stamp,
    next_pass_time,
    queue_wallet_update,
)

Row = TypeVar("Row", LedgerEntry, Purchase)

PURCHASES = cast(Table, Purchase.__table__)
ENTRIES = cast(Table, LedgerEntry.__table__)
LOTS = cast(Table, PointLot.__table__)
CARDS = cast(Table, Card.__table__)

_INSERT_PURCHASE = insert(PURCHASES).returning(PURCHASES.c.id)
_INSERT_ENTRY = insert(ENTRIES).returning(ENTRIES.c.id)
_INSERT_LOT = insert(LOTS)
_LOTS = (
    select(PointLot.id, PointLot.remaining, PointLot.purchase_id)
    .where(PointLot.card_id == bindparam("card_id"), PointLot.remaining > 0)
    .order_by(PointLot.earned_at, PointLot.id)
)
_SET_LOT_REMAINING = (
    update(LOTS)
    .where(LOTS.c.id == bindparam("lot_id"))
    .values(remaining=bindparam("new_remaining"))
)
_UPDATE_CARD = {
    dialect: update(CARDS)
    .where(CARDS.c.id == bindparam("card_id"))
    .values(
        points_balance=bindparam("new_balance"),
        lifetime_spend=bindparam("new_spend"),
        tier_key=bindparam("new_tier"),
        content_version=CARDS.c.content_version + 1,
        pass_updated_at=bindparam("new_pass_time"),
        change_seq=stamp,
    )
    for dialect, stamp in STAMP_EXPRESSIONS.items()
}

_COLUMNS: dict[type, tuple[str, ...]] = {
    Purchase: tuple(column.key for column in PURCHASES.columns if column.key != "id"),
    LedgerEntry: tuple(column.key for column in ENTRIES.columns if column.key != "id"),
}
_REQUIRED: dict[type, tuple[str, ...]] = {
    model: tuple(
        column.key
        for column in table.columns
        if column.key != "id" and (column.default is not None or not column.nullable)
    )
    for model, table in ((Purchase, PURCHASES), (LedgerEntry, ENTRIES))
}


def insert_row(session: Session, row: Row) -> Row:
    """INSERT ``row`` (a new Purchase or LedgerEntry) now, and make it persistent in ``session``
    without the flush machinery. Relationship attributes are not written: set the foreign keys."""
    statement = _INSERT_PURCHASE if isinstance(row, Purchase) else _INSERT_ENTRY
    values: dict[str, Any] = {key: getattr(row, key) for key in _COLUMNS[type(row)]}
    missing = [key for key in _REQUIRED[type(row)] if values[key] is None]
    if missing:  # column defaults are not applied here: callers give every value
        raise ValueError(f"{type(row).__name__} needs {', '.join(missing)}")
    row.id = session.connection().execute(statement, values).scalar_one()
    for key, value in values.items():
        set_committed_value(row, key, value)
    make_transient_to_detached(row)
    session.add(row)
    return row


def insert_lot(session: Session, **values: Any) -> None:
    session.connection().execute(_INSERT_LOT, values)


def spendable_lots(session: Session, card_id: int) -> list[tuple[int, int, int | None]]:
    """(lot id, remaining, purchase id) of the card's non-empty lots, oldest first."""
    session.flush()  # lots changed through the ORM must be visible to this read
    rows = session.connection().execute(_LOTS, {"card_id": card_id})
    return [(row.id, row.remaining, row.purchase_id) for row in rows]


def set_lot_remaining(session: Session, changes: list[tuple[int, int]]) -> None:
    """Write each (lot id, new remaining); one executemany round trip."""
    if not changes:
        return
    session.connection().execute(
        _SET_LOT_REMAINING,
        [{"lot_id": lot_id, "new_remaining": remaining} for lot_id, remaining in changes],
    )
    for lot_id, remaining in changes:  # keep loaded lots truthful
        loaded = session.identity_map.get(session.identity_key(PointLot, lot_id))
        if loaded is not None:
            set_committed_value(loaded, "remaining", remaining)


_UNCHANGED: Any = object()


def change_card(
    session: Session,
    card: Card,
    *,
    balance: int | None = None,
    lifetime_spend: int | None = None,
    tier_key: str | None = _UNCHANGED,
    now: datetime,
) -> None:
    """Write the locked card's new balance, spend and tier in one UPDATE that also bumps its pass
    version, then queue its wallet update. Values are absolute: the caller holds the row lock."""
    new_balance = card.points_balance if balance is None else balance
    new_spend = card.lifetime_spend if lifetime_spend is None else lifetime_spend
    new_tier = card.tier_key if tier_key is _UNCHANGED else tier_key
    pass_time = next_pass_time(card.pass_updated_at, card.program.design_updated_at)
    change_stamp(session)  # advances SQLite's counter; the statement carries the expression
    connection = session.connection()
    connection.execute(
        _UPDATE_CARD[connection.dialect.name],
        {
            "card_id": card.id,
            "new_balance": new_balance,
            "new_spend": new_spend,
            "new_tier": new_tier,
            "new_pass_time": pass_time,
        },
    )
    queue_wallet_update(session, card.id, now)
    set_committed_value(card, "points_balance", new_balance)
    set_committed_value(card, "lifetime_spend", new_spend)
    set_committed_value(card, "tier_key", new_tier)
    set_committed_value(card, "pass_updated_at", pass_time)
    session.expire(card, ["content_version", "change_seq"])
