"""SQLAlchemy pieces every Podium database shares (the hub's and the pod DB).

- :class:`UtcDateTime`: a column type that refuses naive datetimes and reads back aware
  UTC on every database.
- :func:`sqlite_engine`: SQLite set up for a threaded process: WAL journal (readers never
  wait for the writer), ``synchronous=NORMAL`` (with WAL, safe against a crash of the
  process), a 5 s busy timeout, foreign keys on, and transactions that SQLAlchemy begins
  itself: ``BEGIN IMMEDIATE`` on connections carrying the caller's write option, so
  concurrent writers queue on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "UtcDateTime", "sqlite_engine"]

#: How long a SQLite writer waits for another to finish.
SQLITE_BUSY_TIMEOUT_MS = 5000


class UtcDateTime(sa.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only takes aware datetimes and returns aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Refuse naive datetimes; store every value in UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: Podium stores timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        """Read back as aware UTC (SQLite returns naive values, stored as UTC)."""
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - every driver parses them
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def sqlite_engine(
    url: sa.URL,
    *,
    write_option: str,
    on_connect: Callable[[Any], None] | None = None,
) -> sa.Engine:
    """An engine on the SQLite database at ``url`` (an in-memory one shares a single
    connection across threads). Transactions of connections with the execution option
    ``write_option`` set begin ``IMMEDIATE``; ``on_connect`` gets every new DB-API
    connection after the pragmas (to register functions, say)."""
    in_memory = url.database in (None, "", ":memory:")
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False},
        poolclass=sa.pool.StaticPool if in_memory else sa.pool.QueuePool,
    )

    def connected(dbapi_connection: Any, _record: object) -> None:
        # SQLAlchemy emits BEGIN itself (below): sqlite3's own transaction handling
        # would run SELECTs outside the transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        if on_connect is not None:
            on_connect(dbapi_connection)

    def begin(connection: sa.Connection) -> None:
        writes = connection.get_execution_options().get(write_option, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    sa.event.listen(engine, "connect", connected)
    sa.event.listen(engine, "begin", begin)
    return engine


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
