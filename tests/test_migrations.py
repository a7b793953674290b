"""Migrations on a fresh database of each engine: up, down to nothing, and up again; and the
ledger's append-only triggers."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from factories import make_card, make_program
from passes.db import make_engine, make_sessionmaker
from passes.loyalty.models import LedgerEntry, Program
from passes.migrate import alembic_config, upgrade
from postgres import Cluster


@pytest.fixture
def fresh_engine(
    engine_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Engine:
    if engine_name == "sqlite":
        return make_engine(f"sqlite:///{tmp_path_factory.mktemp('mig') / 'm.db'}")
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = f"migrations_{len(cluster.databases)}"
    return make_engine(cluster.url(cluster.create_database(name)))


def test_upgrade_downgrade_upgrade(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    tables = set(inspect(fresh_engine).get_table_names())
    assert {"programs", "cards", "ledger_entries", "wallet_updates", "alembic_version"} <= tables
    with fresh_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(fresh_engine).get_table_names()) <= {"alembic_version"}
    upgrade(fresh_engine)
    assert "ledger_entries" in inspect(fresh_engine).get_table_names()
    fresh_engine.dispose()


def test_ledger_entries_refuse_update_and_delete(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with make_sessionmaker(fresh_engine)() as session:
        program = make_program(session)
        card = make_card(session, program)
        session.add(
            LedgerEntry(
                program_id=program.id, card_id=card.id, kind="adjustment", points=5, source="t"
            )
        )
        session.commit()
        for statement in ("UPDATE ledger_entries SET points = 6", "DELETE FROM ledger_entries"):
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(text(statement))
            session.rollback()
        # Deleting the whole program (cascade) is allowed: history goes with its owner.
        session.delete(session.get(Program, program.id))
        session.commit()
        assert session.execute(text("SELECT COUNT(*) FROM ledger_entries")).scalar() == 0
    fresh_engine.dispose()


def test_migrations_build_exactly_the_models(fresh_engine: Engine) -> None:
    """Autogenerate finds nothing to do: tables, columns, indexes and constraints agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import passes.models

    upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection), passes.models.Base.metadata
        )
    fresh_engine.dispose()
    assert differences == []
