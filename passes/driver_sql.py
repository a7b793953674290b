"""Core statements run straight on the DB-API cursor: for the few statements on the till's hot
path, where SQLAlchemy's per-execution work (cache key, execution context, result wrapping) cost
more CPU than the database spent on them.

A :class:`DriverStatement` is still written with SQLAlchemy Core against the mapped tables, so it
stays true to the schema; it is compiled once per dialect and its parameters still go through the
column types' bind processors (JSON, UTC timestamps). Only PostgreSQL takes the direct path; on
SQLite (in-process, no round trips to save) the statement runs through SQLAlchemy as usual.
Driver errors are re-raised as SQLAlchemy's, so callers catch ``IntegrityError`` either way, and a
connection the driver lost is invalidated, as SQLAlchemy would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled

_CURSOR = "passes.driver_sql.cursor"


class _Compiled(NamedTuple):
    sql: str
    processors: dict[str, Callable[[Any], Any]]  # bind parameter name -> its type's processor
    constants: dict[str, Any]  # literal values in the statement, which are parameters too
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # column position -> its processor


def _processed(
    row: tuple[Any, ...], results: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for index, process in results:
        values[index] = process(values[index])
    return tuple(values)


class DriverStatement:
    """One Core statement that returns rows (a SELECT, or a write with RETURNING), executed on
    the driver's cursor on PostgreSQL. Rows come back as plain tuples in the statement's column
    order, through the column types' result processors (UTC timestamps) as SQLAlchemy would."""

    def __init__(self, statement: Executable) -> None:
        if not getattr(statement, "exported_columns", True):  # an INSERT without RETURNING
            raise ValueError("a DriverStatement must return rows (add RETURNING)")
        self.statement = statement
        self._compiled: _Compiled | None = None

    def _compile(self, dialect: Dialect) -> _Compiled:
        if self._compiled is None:  # only PostgreSQL's psycopg takes this path
            compiled: Compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            if compiled.post_compile_params:  # type: ignore[attr-defined]
                raise ValueError("expanding IN parameters are rendered per execution: use ANY()")
            processors: dict[str, Callable[[Any], Any]] = {}
            constants: dict[str, Any] = {}  # literal values in the statement are parameters too
            for bind, name in compiled.bind_names.items():  # type: ignore[attr-defined]
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
                if not bind.required:
                    value = bind.effective_value
                    constants[name] = processor(value) if processor is not None else value
            results: list[tuple[int, Callable[[Any], Any]]] = []
            for index, column in enumerate(getattr(self.statement, "exported_columns", ())):
                result = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if result is not None:
                    results.append((index, result))
            self._compiled = _Compiled(compiled.string, processors, constants, tuple(results))
        return self._compiled

    def rows(self, connection: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute with ``parameters`` (every bind parameter by name) and fetch all rows."""
        if connection.dialect.name != "postgresql":
            return [tuple(row) for row in connection.execute(self.statement, dict(parameters))]
        compiled = self._compile(connection.dialect)
        processors = compiled.processors
        values = dict(compiled.constants)
        for name, value in parameters.items():
            values[name] = processors[name](value) if name in processors else value
        pooled = connection.connection
        try:
            # One cursor per pooled connection, kept with it: a cursor remembers how to send
            # each Python type, which a new cursor would work out again for every parameter.
            cursor = pooled.info.get(_CURSOR)
            if cursor is None:
                assert pooled.driver_connection is not None
                cursor = pooled.info[_CURSOR] = pooled.driver_connection.cursor()
            cursor.execute(compiled.sql, values)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as exc:
            lost = connection.dialect.is_disconnect(exc, connection.connection, None)
            if lost:
                # As SQLAlchemy does: a lost connection usually means a restart, so the pool's
                # other connections are replaced too (ThreadConnections notices the new pool).
                connection.invalidate(exc)
                connection.engine.dispose(close=False)
            raise DBAPIError.instance(
                compiled.sql,
                values,
                exc,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
            ) from exc
        if compiled.results:  # e.g. timestamps in UTC whatever the session's time zone
            rows = [_processed(row, compiled.results) for row in rows]
        return rows

    def first(
        self, connection: Connection, parameters: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        rows = self.rows(connection, parameters)
        return rows[0] if rows else None
