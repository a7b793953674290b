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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from passes.loyalty.models import Card, LedgerEntry, PointLot, Purchase, WalletUpdate
from passes.loyalty.pass_versions import (
    STAMP_EXPRESSIONS,
    change_stamp,
    next_pass_time,
    queue_wallet_update,
)

Row = TypeVar("Row", LedgerEntry, Purchase)

WALLET_UPDATES = cast(Table, WalletUpdate.__table__)
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


# --------------------------------------------------------------------------- a whole purchase


@dataclass(frozen=True)
class Credit:
    """One positive ledger entry of a purchase and the point lot it opens. The ids that tie them
    together (purchase, entry) are filled in by :func:`write_purchase`."""

    entry: dict[str, Any]  # ledger_entries values but purchase_id
    lot: dict[str, Any]  # point_lots values but entry_id and purchase_id


_ENTRY_KEYS = tuple(key for key in _COLUMNS[LedgerEntry] if key != "purchase_id")
_LOT_KEYS = tuple(
    column.key for column in LOTS.columns if column.key not in ("id", "entry_id", "purchase_id")
)


@cache
def _purchase_statement(credits: int) -> Select[Any]:
    """PostgreSQL: the purchase, ``credits`` entries with their lots, the card's new state and its
    outbox row as one statement of data-modifying CTEs (one round trip instead of six)."""
    purchase = (
        insert(PURCHASES)
        .values({key: bindparam(f"p_{key}") for key in _COLUMNS[Purchase]})
        .returning(PURCHASES.c.id)
        .cte("p")
    )
    ctes: list[Any] = []
    for index in range(credits):
        entry = (
            insert(ENTRIES)
            .from_select(
                [*_ENTRY_KEYS, "purchase_id"],
                select(
                    *[
                        bindparam(f"e{index}_{key}", type_=ENTRIES.c[key].type)
                        for key in _ENTRY_KEYS
                    ],
                    purchase.c.id,
                ),
            )
            .returning(ENTRIES.c.id)
            .cte(f"e{index}")
        )
        lot = (
            insert(LOTS)
            .from_select(
                [*_LOT_KEYS, "entry_id", "purchase_id"],
                select(
                    *[bindparam(f"l{index}_{key}", type_=LOTS.c[key].type) for key in _LOT_KEYS],
                    entry.c.id,
                    select(purchase.c.id).scalar_subquery(),  # one row each: no join needed
                ),
            )
            .returning(LOTS.c.id)
            .cte(f"l{index}")
        )
        ctes += [entry, lot]
    card = (
        update(CARDS)
        .where(CARDS.c.id == bindparam("card_id"))
        .values(
            points_balance=bindparam("new_balance"),
            lifetime_spend=bindparam("new_spend"),
            tier_key=bindparam("new_tier"),
            content_version=CARDS.c.content_version + 1,
            pass_updated_at=bindparam("new_pass_time"),
            change_seq=STAMP_EXPRESSIONS["postgresql"],
        )
        .returning(CARDS.c.id)
        .cte("c")
    )
    outbox = postgresql_insert(WALLET_UPDATES).values(
        card_id=bindparam("card_id"),
        revision=1,
        apple_pending=True,
        google_pending=True,
        requested_at=bindparam("requested_at"),
        apple_attempts=0,
        google_attempts=0,
    )
    outbox_cte = (
        outbox.on_conflict_do_update(
            index_elements=[WALLET_UPDATES.c.card_id],
            set_={
                "revision": WALLET_UPDATES.c.revision + 1,
                "apple_pending": True,
                "google_pending": True,
                "requested_at": outbox.excluded.requested_at,
            },
        )
        .returning(WALLET_UPDATES.c.card_id)
        .cte("w")
    )
    return select(purchase.c.id).add_cte(*ctes, card, outbox_cte)


def write_purchase(
    session: Session,
    card: Card,
    *,
    purchase: Purchase,
    credits: Sequence[Credit],
    balance: int,
    lifetime_spend: int,
    tier_key: str | None,
    now: datetime,
) -> Purchase:
    """Write ``purchase`` (a new, unsaved row), its credits and the card's new state with its
    version bump and outbox row, in the caller's transaction. The card must be locked.

    On PostgreSQL this is one statement; on SQLite (in-process, no round trips) the same rows are
    written one statement at a time. Returns ``purchase``, persistent in ``session``."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        insert_row(session, purchase)
        for credit in credits:
            entry = insert_row(session, LedgerEntry(**credit.entry, purchase_id=purchase.id))
            insert_lot(session, **credit.lot, entry_id=entry.id, purchase_id=purchase.id)
        change_card(
            session,
            card,
            balance=balance,
            lifetime_spend=lifetime_spend,
            tier_key=tier_key,
            now=now,
        )
        return purchase
    values: dict[str, Any] = {key: getattr(purchase, key) for key in _COLUMNS[Purchase]}
    params: dict[str, Any] = {f"p_{key}": value for key, value in values.items()}
    for index, credit in enumerate(credits):
        params.update({f"e{index}_{key}": credit.entry[key] for key in _ENTRY_KEYS})
        params.update({f"l{index}_{key}": credit.lot[key] for key in _LOT_KEYS})
    pass_time = next_pass_time(card.pass_updated_at, card.program.design_updated_at)
    params.update(
        card_id=card.id,
        new_balance=balance,
        new_spend=lifetime_spend,
        new_tier=tier_key,
        new_pass_time=pass_time,
        requested_at=now,
    )
    purchase.id = connection.execute(_purchase_statement(len(credits)), params).scalar_one()
    for key, value in values.items():
        set_committed_value(purchase, key, value)
    make_transient_to_detached(purchase)
    session.add(purchase)
    set_committed_value(card, "points_balance", balance)
    set_committed_value(card, "lifetime_spend", lifetime_spend)
    set_committed_value(card, "tier_key", tier_key)
    set_committed_value(card, "pass_updated_at", pass_time)
    session.expire(card, ["content_version", "change_seq"])
    pending = session.identity_map.get(session.identity_key(WalletUpdate, card.id))
    if pending is not None:
        session.expire(pending)
    return purchase
