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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from passes.driver_sql import DriverStatement
from passes.loyalty.models import (
    Card,
    IdempotencyRecord,
    LedgerEntry,
    Member,
    PointLot,
    Program,
    Purchase,
    WalletUpdate,
)
from passes.loyalty.pass_versions import (
    STAMP_EXPRESSIONS,
    change_stamp,
    next_pass_time,
    queue_wallet_update,
    wallet_upsert_from,
)
from passes.loyalty.rules import ProgramRules, parse_rules_document

Row = TypeVar("Row", LedgerEntry, Purchase)

WALLET_UPDATES = cast(Table, WalletUpdate.__table__)
PURCHASES = cast(Table, Purchase.__table__)
ENTRIES = cast(Table, LedgerEntry.__table__)
LOTS = cast(Table, PointLot.__table__)
CARDS = cast(Table, Card.__table__)
MEMBERS = cast(Table, Member.__table__)
PROGRAMS = cast(Table, Program.__table__)
ANSWERS = cast(Table, IdempotencyRecord.__table__)

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


@dataclass(frozen=True, slots=True)
class CardState:
    """A card as a purchase reads it, as plain values (the till reads it in one statement and
    builds no ORM objects). ``content_version`` is the version read: the purchase is written only
    if the card is still at it (every card change bumps it), so the till needs no row lock and no
    transaction around its read. ``reserved_purchase_id`` (PostgreSQL) is the purchase's id,
    drawn from its sequence by the same read, so the till's answer, which names the purchase, is
    stored by the same statement as the purchase."""

    id: int
    program_id: int
    number: str
    member_name: str
    birthday: date | None
    points_balance: int
    lifetime_spend: int
    tier_key: str | None
    content_version: int
    pass_updated_at: datetime
    design_updated_at: datetime
    rules: ProgramRules
    reserved_purchase_id: int | None = None

    @classmethod
    def of(cls, card: Card, rules: ProgramRules) -> CardState:
        """The state of a loaded (and locked) ORM card."""
        return cls(
            id=card.id,
            program_id=card.program_id,
            number=card.number,
            member_name=card.member.name,
            birthday=card.member.birthday,
            points_balance=card.points_balance,
            lifetime_spend=card.lifetime_spend,
            tier_key=card.tier_key,
            content_version=card.content_version,
            pass_updated_at=card.pass_updated_at,
            design_updated_at=card.program.design_updated_at,
            rules=rules,
        )


_STATE_COLUMNS = (
    CARDS.c.id,
    CARDS.c.program_id,
    CARDS.c.number,
    MEMBERS.c.name,
    MEMBERS.c.birthday,
    CARDS.c.points_balance,
    CARDS.c.lifetime_spend,
    CARDS.c.tier_key,
    CARDS.c.content_version,
    CARDS.c.pass_updated_at,
    PROGRAMS.c.design_updated_at,
    cast_(PROGRAMS.c.rules, Text),  # the text keys the parsed-rules cache; no JSON decoding
)
_STATE_FROM = CARDS.join(MEMBERS, MEMBERS.c.id == CARDS.c.member_id).join(
    PROGRAMS, PROGRAMS.c.id == CARDS.c.program_id
)
_STATE = (
    select(*_STATE_COLUMNS).select_from(_STATE_FROM).where(CARDS.c.number == bindparam("number"))
)
_READ_STATE = DriverStatement(_STATE)
# For a purchase: its id reserved too (PostgreSQL).
_STATE_FOR_PURCHASE = {
    "postgresql": _STATE.add_columns(func.nextval(func.pg_get_serial_sequence("purchases", "id"))),
    "sqlite": _STATE,
}
# (dialect, locked): SQLite transactions begin IMMEDIATE, so every read in one is already
# serialised with every writer.
_READ_STATE_FOR_PURCHASE = {
    ("postgresql", False): DriverStatement(_STATE_FOR_PURCHASE["postgresql"]),
    ("postgresql", True): DriverStatement(
        _STATE_FOR_PURCHASE["postgresql"].with_for_update(of=CARDS)
    ),
    ("sqlite", False): _READ_STATE,
    ("sqlite", True): _READ_STATE,
}


def read_card_state(
    connection: Connection, number: str, *, for_purchase: bool = False, lock: bool = False
) -> CardState | None:
    """The state of the card numbered ``number`` (None when there is none). ``for_purchase``:
    also reserve the id of the purchase about to be written (PostgreSQL); ``lock``: and hold the
    card's row lock until the end of the transaction (which the caller opened)."""
    statement = (
        _READ_STATE_FOR_PURCHASE[connection.dialect.name, lock] if for_purchase else _READ_STATE
    )
    return card_state_of(statement.first(connection, {"number": number}))


def card_state_for_purchase(dialect: str) -> Any:
    """The read of :func:`read_card_state` for a purchase (unlocked), as a subquery to read
    alongside something else; its columns decode with :func:`card_state_of`."""
    return _STATE_FOR_PURCHASE[dialect].subquery("card")


def card_state_of(row: Sequence[Any] | None, start: int = 0) -> CardState | None:
    """The card state in ``row`` from column ``start`` on (None for no row, or no card)."""
    if row is None or row[start] is None:
        return None
    row = row[start:]
    return CardState(
        id=row[0],
        program_id=row[1],
        number=row[2],
        member_name=row[3],
        birthday=row[4],
        points_balance=row[5],
        lifetime_spend=row[6],
        tier_key=row[7],
        content_version=row[8],
        pass_updated_at=row[9],
        design_updated_at=row[10],
        rules=parse_rules_document(row[11] or "{}"),
        reserved_purchase_id=row[12] if len(row) > 12 else None,
    )


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


@dataclass(frozen=True)
class PurchaseRows:
    """What a priced purchase writes: its row, its credits and the card's new state."""

    values: dict[str, Any]  # the purchases row but its id
    credits: Sequence[Credit]
    balance: int
    lifetime_spend: int
    tier_key: str | None
    now: datetime


# A purchase's credits share the purchase's card, program, source and time, and open fresh lots:
# the statement binds those once (psycopg caches a statement's parsing only up to 50 parameters).
_CREDIT_SHARED = {
    "program_id": "p_program_id",
    "card_id": "card_id",
    "source": "p_source",
    "created_at": "p_created_at",
}
_CREDIT_NULL = ("counterpart_card_id", "reason")
_ENTRY_OWN = tuple(
    key for key in _ENTRY_KEYS if key not in _CREDIT_SHARED and key not in _CREDIT_NULL
)
_LOT_SHARED = {"card_id": "card_id", "earned_at": "p_created_at"}
_LOT_OWN = tuple(key for key in _LOT_KEYS if key not in _LOT_SHARED and key != "warned_at")


def _typed_null(column: Any) -> Any:
    return cast_(null(), column.type)


def _from_guard(table: Table, values: dict[str, Any], guard: Any) -> Any:
    """INSERT ``values`` into ``table`` once for each row of ``guard`` (one row, or none)."""
    return insert(table).from_select(list(values), select(*values.values()).select_from(guard))


@cache
def _purchase_statement(credits: int, *, given_id: bool, answer: bool) -> DriverStatement:
    """PostgreSQL: the card's new state, the purchase, ``credits`` entries with their lots, the
    card's outbox row and (``answer``) the till's stored answer, as one statement of
    data-modifying CTEs: one round trip instead of seven. ``given_id``: the purchase id was
    reserved beforehand.

    Everything hangs on the card's UPDATE, which applies only if the card is still at the
    version the purchase was priced from: otherwise no row is written and the statement returns
    no row. (A concurrent writer's row lock makes the UPDATE wait, then see the new version.)
    Foreign keys are checked at the end of the statement, when every row of it exists."""
    card = (
        update(CARDS)
        .where(
            CARDS.c.id == bindparam("card_id"),
            CARDS.c.content_version == bindparam("read_version"),
        )
        .values(
            points_balance=bindparam("new_balance"),
            lifetime_spend=bindparam("new_spend"),
            tier_key=bindparam("new_tier"),
            content_version=CARDS.c.content_version + literal_column("1"),
            pass_updated_at=bindparam("new_pass_time", type_=CARDS.c.pass_updated_at.type),
            change_seq=STAMP_EXPRESSIONS["postgresql"],
        )
        .returning(CARDS.c.id)
        .cte("c")
    )
    purchase_columns = ("id", *_COLUMNS[Purchase]) if given_id else _COLUMNS[Purchase]
    purchase = (
        _from_guard(
            PURCHASES,
            {key: bindparam(f"p_{key}", type_=PURCHASES.c[key].type) for key in purchase_columns},
            card,
        )
        .returning(PURCHASES.c.id)
        .cte("p")
    )
    ctes: list[Any] = [card]
    for index in range(credits):
        entry_values = {
            key: bindparam(_CREDIT_SHARED[key], type_=ENTRIES.c[key].type)
            if key in _CREDIT_SHARED
            else _typed_null(ENTRIES.c[key])
            if key in _CREDIT_NULL
            else bindparam(f"e{index}_{key}", type_=ENTRIES.c[key].type)
            for key in _ENTRY_KEYS
        }
        entry = (
            insert(ENTRIES)
            .from_select(
                [*_ENTRY_KEYS, "purchase_id"],
                select(*entry_values.values(), purchase.c.id),
            )
            .returning(ENTRIES.c.id)
            .cte(f"e{index}")
        )
        lot_values = {
            key: bindparam(_LOT_SHARED[key], type_=LOTS.c[key].type)
            if key in _LOT_SHARED
            else _typed_null(LOTS.c[key])
            if key == "warned_at"
            else bindparam(f"l{index}_{key}", type_=LOTS.c[key].type)
            for key in _LOT_KEYS
        }
        lot = (
            insert(LOTS)
            .from_select(
                [*_LOT_KEYS, "entry_id", "purchase_id"],
                select(
                    *lot_values.values(),
                    entry.c.id,
                    select(purchase.c.id).scalar_subquery(),  # one row each: no join needed
                ),
            )
            .returning(LOTS.c.id)
            .cte(f"l{index}")
        )
        ctes += [entry, lot]
    ctes.append(
        wallet_upsert_from(
            "postgresql",
            select(card.c.id),
            bindparam("requested_at", type_=WALLET_UPDATES.c.requested_at.type),
        )
        .returning(WALLET_UPDATES.c.card_id)
        .cte("w")
    )
    if answer:
        ctes.append(
            _from_guard(
                ANSWERS,
                {key: bindparam(f"a_{key}", type_=ANSWERS.c[key].type) for key in _ANSWER_KEYS},
                card,
            )
            .returning(ANSWERS.c.id)
            .cte("a")
        )
    return DriverStatement(select(purchase.c.id).add_cte(*ctes))


_ANSWER_KEYS = ("api_key_id", "key", "request_hash", "status", "body", "created_at")
_INSERT_ANSWER = insert(ANSWERS)


def write_purchase_rows(
    connection: Connection,
    card: CardState,
    rows: PurchaseRows,
    *,
    answer: Callable[[int], dict[str, Any]] | None = None,
) -> int | None:
    """Write a priced purchase of ``card``: the card's new state with its pass version bump, the
    purchase, its credits and lots, its outbox row and, when given, the till's ``answer`` (the
    idempotency_records row that names the purchase by the id it is given); the purchase's id.

    Nothing is written, and None returned, when the card is no longer at the version it was read
    at: the caller reads it again and prices again. On PostgreSQL this is one statement (in a
    transaction of its own, or the caller's); on SQLite (in-process, no round trips to save) the
    same rows are written one statement at a time, in the caller's transaction. A duplicate
    answer raises IntegrityError with nothing written."""
    pass_time = next_pass_time(card.pass_updated_at, card.design_updated_at)
    if connection.dialect.name == "postgresql":
        params = _purchase_parameters(card, rows, pass_time, card.reserved_purchase_id)
        if answer is not None:
            if card.reserved_purchase_id is None:
                raise ValueError("an answer needs the purchase id reserved when the card was read")
            record = answer(card.reserved_purchase_id)
            params.update({f"a_{key}": record[key] for key in _ANSWER_KEYS})
        statement = _purchase_statement(
            len(rows.credits),
            given_id=card.reserved_purchase_id is not None,
            answer=answer is not None,
        )
        row = statement.first(connection, params)
        return None if row is None else int(row[0])
    change_stamp(connection)  # advances SQLite's counter; the statement carries the expression
    changed = connection.execute(
        _UPDATE_CARD_AT_VERSION,
        {
            "card_id": card.id,
            "read_version": card.content_version,
            "new_balance": rows.balance,
            "new_spend": rows.lifetime_spend,
            "new_tier": rows.tier_key,
            "new_pass_time": pass_time,
        },
    )
    if changed.rowcount != 1:
        return None
    purchase_id: int = connection.execute(_INSERT_PURCHASE, rows.values).scalar_one()
    for credit in rows.credits:
        entry_id = connection.execute(
            _INSERT_ENTRY, {**credit.entry, "purchase_id": purchase_id}
        ).scalar_one()
        connection.execute(
            _INSERT_LOT, {**credit.lot, "entry_id": entry_id, "purchase_id": purchase_id}
        )
    queue_wallet_update(connection, card.id, rows.now)
    if answer is not None:
        connection.execute(_INSERT_ANSWER, answer(purchase_id))
    return purchase_id


_UPDATE_CARD_AT_VERSION = _UPDATE_CARD["sqlite"].where(
    CARDS.c.content_version == bindparam("read_version")
)


def _purchase_parameters(
    card: CardState, rows: PurchaseRows, pass_time: datetime, purchase_id: int | None
) -> dict[str, Any]:
    params: dict[str, Any] = {f"p_{key}": value for key, value in rows.values.items()}
    if purchase_id is not None:
        params["p_id"] = purchase_id
    shared = {"p_program_id": card.program_id, "card_id": card.id}
    for index, credit in enumerate(rows.credits):
        entry, lot = credit.entry, credit.lot
        if (
            any(
                entry[key] != params.get(name, shared.get(name))
                for key, name in _CREDIT_SHARED.items()
            )
            or any(entry[key] is not None for key in _CREDIT_NULL)
            or any(
                lot[key] != params.get(name, shared.get(name)) for key, name in _LOT_SHARED.items()
            )
            or lot["warned_at"] is not None
        ):
            raise ValueError(f"credit {index} does not belong to this purchase: {credit}")
        params.update({f"e{index}_{key}": entry[key] for key in _ENTRY_OWN})
        params.update({f"l{index}_{key}": lot[key] for key in _LOT_OWN})
    params.update(
        card_id=card.id,
        read_version=card.content_version,
        new_balance=rows.balance,
        new_spend=rows.lifetime_spend,
        new_tier=rows.tier_key,
        new_pass_time=pass_time,
        requested_at=rows.now,
    )
    return params


def write_purchase(session: Session, card: Card, state: CardState, rows: PurchaseRows) -> Purchase:
    """:func:`write_purchase_rows` for a loaded ORM ``card`` (whose ``state`` was priced): the
    purchase comes back as a persistent Purchase, and the card's loaded state is brought up to
    date without a reload. The card must be locked (so its version cannot move)."""
    purchase_id = write_purchase_rows(session.connection(), state, rows)
    if purchase_id is None:
        raise RuntimeError(f"card {card.id} changed while locked: was it locked?")
    purchase = Purchase(id=purchase_id, **rows.values)
    for key, value in rows.values.items():
        set_committed_value(purchase, key, value)
    set_committed_value(purchase, "id", purchase_id)
    make_transient_to_detached(purchase)
    session.add(purchase)
    set_committed_value(card, "points_balance", rows.balance)
    set_committed_value(card, "lifetime_spend", rows.lifetime_spend)
    set_committed_value(card, "tier_key", rows.tier_key)
    session.expire(card, ["content_version", "change_seq", "pass_updated_at"])
    pending = session.identity_map.get(session.identity_key(WalletUpdate, card.id))
    if pending is not None:
        session.expire(pending)
    return purchase
