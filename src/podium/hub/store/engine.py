"""The hub's SQLAlchemy engines: SQLite set up for a threaded server, or PostgreSQL.

:func:`create_hub_engine` sets SQLite up with :func:`podium.core.sqlite.sqlite_engine`
(WAL, ``BEGIN IMMEDIATE`` on connections with the write option ``WRITE_OPTION``) and
registers ``podium_lower()``, a Unicode lower case (SQLite's own ``lower()`` only knows
ASCII).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from podium.core.sqlite import sqlite_engine
from podium.hub.store.base import StoreError
from podium.hub.store.migrate import WRITE_OPTION

__all__ = ["SUPPORTED_BACKENDS", "create_hub_engine"]

#: The databases the hub runs on.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_hub_engine(url: str) -> sa.Engine:
    """An engine for the hub's database at ``url`` (``sqlite:///...``, or
    ``postgresql://...`` through psycopg 3). Connects lazily."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"the hub cannot keep its data in {backend!r}: give a sqlite:/// or postgresql:// URL"
        )
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    return _sqlite_engine(parsed)


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database not in (None, "", ":memory:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return sqlite_engine(url, write_option=WRITE_OPTION, on_connect=_register_functions)


def _register_functions(dbapi_connection: Any) -> None:
    dbapi_connection.create_function("podium_lower", 1, _lower, deterministic=True)


def _lower(value: str | None) -> str | None:
    """Unicode lower case for SQLite, whose own ``lower()`` only knows ASCII."""
    return None if value is None else value.lower()
