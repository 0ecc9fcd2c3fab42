"""Run the hub's Alembic migrations from code: no ``alembic.ini``, no logging set-up.

The migration scripts ship inside the package (``podium/hub/migrations``), so this works
from a wheel as well as from a checkout. On PostgreSQL an advisory lock serialises hub
replicas that start at the same time; on SQLite the write transaction does the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = [
    "MIGRATIONS_DIR",
    "WRITE_OPTION",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade_to_head",
]

logger = logging.getLogger("podium.hub.store.migrate")

#: The folder holding ``env.py`` and ``versions/``.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Execution option marking a transaction as a writer: ``BEGIN IMMEDIATE`` on SQLite
#: engines from :func:`podium.hub.store.engine.create_hub_engine`, ignored elsewhere.
WRITE_OPTION = "podium_write"

#: Key of the PostgreSQL advisory lock held while migrating (any constant; "podhub01").
_PG_LOCK_KEY = 0x706F_6468_7562_3031


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for the hub's migrations, bound to ``connection``."""
    config = Config()
    # configparser interpolation: a literal % in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the shipped migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: sa.Engine) -> None:
    """Bring the database to the newest revision; a no-op when it is there already."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(alembic_config(connection), "head")
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        logger.info("hub database migrated from %s to %s", before or "empty", after)
