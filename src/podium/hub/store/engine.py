"""The hub's SQLAlchemy engines: SQLite set up for a threaded server, or PostgreSQL.

:func:`create_hub_engine` sets SQLite up with a WAL journal (readers never wait for the
writer), ``synchronous=NORMAL`` (with WAL, safe against a crash of the process), a 5 s busy
timeout, foreign keys on, and transactions that SQLAlchemy begins itself: ``BEGIN
IMMEDIATE`` on connections with the write option (``WRITE_OPTION``), so concurrent writers
queue on the busy timeout instead of failing half-way. It also registers
``podium_lower()``, a Unicode lower case (SQLite's own ``lower()`` only knows ASCII).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from podium.hub.store.base import StoreError
from podium.hub.store.migrate import WRITE_OPTION

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "SUPPORTED_BACKENDS", "create_hub_engine"]

#: The databases the hub runs on.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 5000


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
    in_memory = url.database in (None, "", ":memory:")
    if not in_memory and url.database is not None:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False},
        # One shared connection keeps an in-memory database alive across threads.
        poolclass=sa.pool.StaticPool if in_memory else sa.pool.QueuePool,
    )
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # SQLAlchemy emits BEGIN itself (_on_sqlite_begin): sqlite3's own transaction
    # handling would run SELECTs outside the transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
    dbapi_connection.create_function("podium_lower", 1, _lower, deterministic=True)


def _enable_wal(cursor: Any) -> None:
    """Switch the database to WAL once. The switch needs an exclusive lock, and SQLite
    answers "database is locked" at once (without waiting out busy_timeout) when another
    process opens the same new database at the same moment: retry for a while."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _on_sqlite_begin(connection: sa.Connection) -> None:
    writes = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _lower(value: str | None) -> str | None:
    """Unicode lower case for SQLite, whose own ``lower()`` only knows ASCII."""
    return None if value is None else value.lower()
