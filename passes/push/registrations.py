"""Which devices hold which passes, and which of a device's passes changed since its tag.

The PassKit web service calls these; the Apple sender reads registrations to find push tokens and
removes the ones APNs reports dead. Every write is a single upsert or delete under a unique key,
so concurrent identical registrations never duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.orm import Session

from passes.db import upsert_insert, utcnow
from passes.driver_sql import DriverStatement
from passes.loyalty.models import Card, Program
from passes.push.models import AppleDevice, AppleRegistration


@dataclass(frozen=True)
class PassCredentials:
    """What the web service needs to authorise a request and answer a conditional GET."""

    card_id: int
    authentication_token: str
    updated_at: datetime  # the pass's effective time: later of card and design


_PASS_BY_SERIAL = DriverStatement(
    select(
        Card.id,
        Card.authentication_token,
        Card.pass_updated_at,
        Program.design_updated_at,
    )
    .join(Program, Program.id == Card.program_id)
    .where(Card.serial_number == bindparam("serial"))
)


def _device_read(
    reader: Session | Connection, statement: DriverStatement, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of one read-only statement that a device request makes.

    Devices make these reads with every request, and a 304 or an unchanged listing is nothing
    more. So the web layer hands in, on PostgreSQL, its thread's autocommit connection: a single
    statement sees one snapshot by itself, and there is no pool checkout, no BEGIN and no
    ROLLBACK (which would also drop psycopg's prepared statements, so every read would be planned
    again). A session (SQLite, whose transactions begin IMMEDIATE either way; the tests' session
    bound to their transaction) reads in its transaction.
    """
    connection = reader.connection() if isinstance(reader, Session) else reader
    return statement.rows(connection, params)


def pass_credentials(reader: Session | Connection, serial_number: str) -> PassCredentials | None:
    """The card behind ``serial_number`` (one indexed read, prebuilt), or None."""
    rows = _device_read(reader, _PASS_BY_SERIAL, {"serial": serial_number})
    if not rows:
        return None
    card_id, token, pass_updated_at, design_updated_at = rows[0]
    return PassCredentials(card_id, token, max(pass_updated_at, design_updated_at))


def register(session: Session, device: str, push_token: str, card_id: int) -> bool:
    """Register ``device`` for the card, storing its (possibly new) push token; True when the
    registration is new. The caller commits."""
    now = utcnow()
    insert = upsert_insert(session.connection().dialect.name)
    device_insert = insert(AppleDevice).values(
        library_identifier=device, push_token=push_token, registered_at=now, created_at=now
    )
    device_id = session.execute(
        device_insert.on_conflict_do_update(
            index_elements=[AppleDevice.library_identifier],
            set_={"push_token": push_token, "registered_at": now},
        ).returning(AppleDevice.id)
    ).scalar_one()
    created = session.execute(
        insert(AppleRegistration)
        .values(device_id=device_id, card_id=card_id, created_at=now)
        .on_conflict_do_nothing(
            index_elements=[AppleRegistration.device_id, AppleRegistration.card_id]
        )
        .returning(AppleRegistration.id)
    ).first()
    return created is not None


def unregister(session: Session, device: str, card_id: int) -> bool:
    """Forget the card on ``device``; forget the device once it holds no passes. True if the
    card was registered there."""
    device_id = session.scalar(
        select(AppleDevice.id).where(AppleDevice.library_identifier == device)
    )
    if device_id is None:
        return False
    removed = session.execute(
        delete(AppleRegistration).where(
            AppleRegistration.device_id == device_id, AppleRegistration.card_id == card_id
        )
    )
    _drop_if_empty(session, [device_id])
    return bool(removed.rowcount)  # type: ignore[attr-defined]


def _drop_if_empty(session: Session, device_ids: list[int]) -> None:
    if not device_ids:
        return
    session.execute(
        delete(AppleDevice).where(
            AppleDevice.id.in_(device_ids),
            ~select(AppleRegistration.id)
            .where(AppleRegistration.device_id == AppleDevice.id)
            .exists(),
        )
    )


# One statement, so the tag and the rows come from one snapshot. On PostgreSQL the tag is the
# snapshot's xmin: every transaction that had not finished when we read has an id >= it.
_LISTING = (
    "WITH snap AS ({snapshot}) "
    "SELECT snap.tag, found.serial_number FROM snap LEFT JOIN ("
    " SELECT cards.serial_number FROM apple_devices"
    " JOIN apple_registrations ON apple_registrations.device_id = apple_devices.id"
    " JOIN cards ON cards.id = apple_registrations.card_id"
    " JOIN programs ON programs.id = cards.program_id"
    " WHERE apple_devices.library_identifier = :device"
    " AND (cards.change_seq >= :since OR programs.design_change_seq >= :since)"
    ") AS found ON true"
)
_UPDATED_SINCE = {
    "postgresql": DriverStatement(
        text(
            _LISTING.format(
                snapshot="SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tag"
            )
        )
    ),
    "sqlite": DriverStatement(
        text(
            _LISTING.format(
                snapshot="SELECT value + 1 AS tag FROM pass_change_counter WHERE id = 1"
            )
        )
    ),
}


def parse_tag(tag: str | None) -> int:
    """A tag we issued, as a number; anything else counts as "no tag" (list everything), since
    listing too much costs a download and listing too little loses an update for good."""
    if tag is None or not tag.isdigit() or len(tag) > 19:
        return 0
    return int(tag)


def updated_since(reader: Session | Connection, device: str, since: int) -> tuple[list[str], str]:
    """Serial numbers of ``device``'s passes changed at or after tag ``since`` (all of them for
    0), and the tag to hand back as ``lastUpdated``."""
    connection = reader.connection() if isinstance(reader, Session) else reader
    statement = _UPDATED_SINCE[connection.dialect.name]
    rows = _device_read(connection, statement, {"device": device, "since": since})
    serials = sorted({serial for _tag, serial in rows if serial is not None})
    return serials, str(rows[0][0])
