"""Keep pass versions honest: any change to what a pass shows bumps its version and time.

Done in one ``before_flush`` hook rather than in each code path, so a future feature that edits a
balance, a member's name or a program's colours cannot forget it. Wallets are only as current as
these versions: Apple devices send back ``Last-Modified`` as ``If-Modified-Since`` (whole seconds),
so every change moves a pass's effective time (the later of card and design time) to a later whole
second, even when several changes fall within one second.

Bulk ``UPDATE`` statements bypass the ORM and this hook; code that issues them must call
:func:`bump_card` / :func:`bump_design` semantics itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    event,
    func,
    inspect,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from passes.db import upsert_insert, utcnow
from passes.loyalty.models import Card, Member, PassChangeCounter, Program, Store, WalletUpdate

SECOND = timedelta(seconds=1)

# Change stamps order pass changes for the PassKit web service's "updated since" tag, losslessly:
# a device's tag must cover every change committed after it, whatever the commit order.
# PostgreSQL: the writing transaction's id. A reader's tag is its snapshot's xmin, so any writer
# still running when it read has an id >= the tag and is found next time.
# SQLite: a counter bumped inside the writing transaction. Writers are serialised (BEGIN
# IMMEDIATE), so counter order is commit order.
STAMP_EXPRESSIONS: dict[str, Any] = {
    "postgresql": literal_column("pg_current_xact_id()::text::bigint"),
    "sqlite": select(PassChangeCounter.value).where(PassChangeCounter.id == 1).scalar_subquery(),
}
_ADVANCE_COUNTER = (
    update(PassChangeCounter)
    .where(PassChangeCounter.id == 1)
    .values(value=PassChangeCounter.value + 1)
)


def change_stamp(session: Session | Connection) -> Any:
    """The SQL expression of this change's stamp (advancing SQLite's counter first)."""
    connection = session.connection() if isinstance(session, Session) else session
    if connection.dialect.name == "sqlite":
        connection.execute(_ADVANCE_COUNTER)
    return STAMP_EXPRESSIONS[connection.dialect.name]


Owner = Callable[[Session, Any], "Program | Card | None"]


def _program_of(session: Session, row: Store) -> Program | None:
    if row.program is not None:
        return row.program
    return session.get(Program, row.program_id) if row.program_id else None


# What each kind of row contributes to a pass, and whose version a change to it bumps.
# Program collections (stores) count too: adding or removing a store changes every pass, and so
# does the rules document (tier names).
WATCHED: dict[type, tuple[frozenset[str], Owner]] = {
    Program: (
        frozenset(
            {
                "name",
                "organization_name",
                "description",
                "points_label",
                "background_color",
                "foreground_color",
                "label_color",
                "logo_image",
                "icon_image",
                "strip_image",
                "terms",
                "field_labels",
                "support_email",
                "support_phone",
                "website",
                "stores",
                "rules",
            }
        ),
        lambda _session, program: program,
    ),
    Store: (frozenset({"name", "latitude", "longitude", "relevant_text"}), _program_of),
    Card: (
        frozenset({"points_balance", "tier_key", "number", "barcode_payload", "expiry_notice"}),
        lambda _session, card: card,
    ),
    Member: (frozenset({"name"}), lambda _session, member: member.card),
}


def next_pass_time(*previous: datetime | None) -> datetime:
    """Now, in whole seconds, but strictly after every given time."""
    candidate = utcnow().replace(microsecond=0)
    for moment in previous:
        if moment is not None:
            candidate = max(candidate, moment.replace(microsecond=0) + SECOND)
    return candidate


def bump_card(session: Session, card: Card) -> None:
    """New content version; the pass's effective time moves past both card and design times;
    the wallet outbox gets (or keeps) a pending row for the card, in the same transaction."""
    card.content_version = Card.content_version + 1  # in SQL: concurrent bumps both count
    card.change_seq = change_stamp(session)
    card.pass_updated_at = next_pass_time(card.pass_updated_at, card.program.design_updated_at)
    queue_wallet_update(session, card.id)


def wallet_upsert_from(dialect: str, cards: Any, requested_at: Any) -> Any:
    """INSERT an outbox row for each card id that the one-column SELECT ``cards`` yields, or
    bump the row a card already has (both wallets and the webhooks pending again): one
    statement, no read."""
    insert = upsert_insert(dialect)
    outbox = cast(Table, WalletUpdate.__table__)
    statement = insert(outbox).from_select(
        [
            "card_id",
            "revision",
            "apple_pending",
            "google_pending",
            "hooks_pending",
            "requested_at",
            "apple_attempts",
            "google_attempts",
            "hooks_attempts",
        ],
        cards.add_columns(
            literal_column("1"),
            true(),
            true(),
            true(),
            requested_at,
            literal_column("0"),
            literal_column("0"),
            literal_column("0"),
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=[outbox.c.card_id],
        set_={
            "revision": outbox.c.revision + literal_column("1"),
            "apple_pending": true(),
            "google_pending": true(),
            "hooks_pending": true(),
            "requested_at": statement.excluded.requested_at,
        },
    )


def _wallet_upsert(dialect: str) -> Any:
    """INSERT the card's outbox row, or bump it if one is pending: one statement, no read."""
    return wallet_upsert_from(
        dialect,
        select(bindparam("card_id", type_=WalletUpdate.card_id.type)),
        bindparam("requested_at", type_=WalletUpdate.requested_at.type),
    )


_WALLET_UPSERT = {dialect: _wallet_upsert(dialect) for dialect in ("postgresql", "sqlite")}


def queue_wallet_update(
    session: Session | Connection, card_id: int, now: datetime | None = None
) -> None:
    """Mark the card's wallets as needing an update, in the caller's transaction."""
    connection = session.connection() if isinstance(session, Session) else session
    connection.execute(
        _WALLET_UPSERT[connection.dialect.name],
        {"card_id": card_id, "requested_at": now or utcnow()},
    )
    if isinstance(session, Session):
        pending = session.identity_map.get(session.identity_key(WalletUpdate, card_id))
        if pending is not None:
            session.expire(pending)


def bump_design(session: Session, program: Program) -> None:
    """New design version; its time moves past every card's time, so every pass looks newer;
    and every card of the program gets a pending outbox row, so both wallets hear of it (one
    statement, in the same transaction)."""
    newest_card = session.scalar(
        select(func.max(Card.pass_updated_at)).where(Card.program_id == program.id)
    )
    program.design_version = Program.design_version + 1
    program.design_change_seq = change_stamp(session)
    program.design_updated_at = next_pass_time(program.design_updated_at, newest_card)
    connection = session.connection()
    connection.execute(
        wallet_upsert_from(
            connection.dialect.name,
            select(Card.id).where(Card.program_id == program.id),
            bindparam("requested_at", type_=WalletUpdate.requested_at.type),
        ),
        {"requested_at": utcnow()},
    )
    for key in list(session.identity_map.keys()):
        if key[0] is WalletUpdate:
            session.expire(session.identity_map[key])


@event.listens_for(Session, "before_flush")
def _bump_versions(session: Session, _context: Any, _instances: Any) -> None:
    targets: set[Program | Card | None] = set()
    with session.no_autoflush:
        for instance in session.dirty:
            watched = WATCHED.get(type(instance))
            if watched is None or not session.is_modified(instance):
                continue
            fields, owner = watched
            state = inspect(instance)
            if any(state.attrs[name].history.has_changes() for name in fields):
                targets.add(owner(session, instance))
        for instance in (*session.new, *session.deleted):
            if isinstance(instance, Store):
                targets.add(_program_of(session, instance))
        for target in targets:
            if target is None or target in session.new or target in session.deleted:
                continue
            if isinstance(target, Program):
                bump_design(session, target)
            else:
                bump_card(session, target)
