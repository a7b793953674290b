"""Run Alembic migrations programmatically (``flask passes init-db`` and the test suite)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our scripts; migrations run on ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; a no-op when it is already there."""
    if isinstance(bind, Connection):
        command.upgrade(alembic_config(bind), revision)
        return
    with bind.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def new_revision(bind: Engine, message: str) -> None:
    """Autogenerate a migration from the difference between the models and the database."""
    with bind.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
