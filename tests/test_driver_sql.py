"""DriverStatement: a Core statement run on the driver's cursor must behave as SQLAlchemy would
(types in and out, literal values, errors) on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, bindparam, insert, literal, select, text
from sqlalchemy.exc import IntegrityError

from factories import make_program
from passes.accounts.api_keys import issue_key
from passes.db import make_sessionmaker
from passes.driver_sql import DriverStatement
from passes.loyalty.models import IdempotencyRecord, Program

_RECORD = DriverStatement(
    insert(IdempotencyRecord)
    .values(
        api_key_id=bindparam("api_key_id"),
        key=bindparam("key"),
        request_hash="h" * 64,  # a literal: sent as a parameter all the same
        status=201,
        body=bindparam("body"),
        created_at=bindparam("created_at"),
    )
    .returning(IdempotencyRecord.id, IdempotencyRecord.body, IdempotencyRecord.created_at)
)


def api_key_id(connection: Connection) -> int:
    session = make_sessionmaker(connection)(join_transaction_mode="create_savepoint")
    key = issue_key(session, make_program(session), role="admin", name="t")
    session.commit()
    return key.record.id


def test_types_go_in_and_come_out_as_sqlalchemy_would(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # the driver hands back the session's zone
        connection.exec_driver_sql("SET TIME ZONE 'Asia/Tokyo'")
    moment = datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    row = _RECORD.first(
        connection,
        {
            "api_key_id": api_key_id(connection),
            "key": "k1",
            "body": {"id": 1, "названия": ["кофе"]},
            "created_at": moment,
        },
    )
    assert row is not None
    record_id, body, created_at = row
    assert body == {"id": 1, "названия": ["кофе"]}  # JSON in and out
    assert created_at == moment and created_at.tzinfo is UTC  # UTC, as UTCDateTime promises
    stored = connection.execute(
        select(IdempotencyRecord.request_hash, IdempotencyRecord.status).where(
            IdempotencyRecord.id == record_id
        )
    ).one()
    assert tuple(stored) == ("h" * 64, 201)


def test_driver_errors_are_sqlalchemys(connection: Connection) -> None:
    values = {
        "api_key_id": api_key_id(connection),
        "key": "same",
        "body": {},
        "created_at": datetime.now(UTC),
    }
    with connection.begin_nested():
        _RECORD.first(connection, values)
    with pytest.raises(IntegrityError), connection.begin_nested():
        _RECORD.first(connection, values)  # the (api key, key) pair is unique


def test_text_and_expressions_with_parameters(connection: Connection) -> None:
    doubled = DriverStatement(select(literal(2) * bindparam("n", type_=Program.id.type)))
    assert doubled.first(connection, {"n": 21}) == (42,)
    named = DriverStatement(text("SELECT :a || :b"))
    assert named.rows(connection, {"a": "lo", "b": "yal"}) == [("loyal",)]
