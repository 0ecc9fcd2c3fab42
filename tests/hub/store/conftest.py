"""Fixtures for the hub store suites: one ``store`` fixture over every version of the store
(in-memory, SQLite in a temporary file, PostgreSQL in a schema of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.hub.store import HubStore, InMemoryHubStore, NewAuditEvent, SqlHubStore
from podium.hub.store.sql import open_sql_store

#: A fixed instant with microseconds, so round trips show any lost precision.
T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

SQL_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def audit(action: str, *, pod_id: str | None = None, actor: str = "alice") -> NewAuditEvent:
    """An audit event to hand to a store method."""
    return NewAuditEvent(at=T0, actor=actor, action=action, pod_id=pod_id)


def database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["memory", *SQL_KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubStore]:
    """Each version of the hub store, empty."""
    if request.param == "memory":
        yield InMemoryHubStore()
        return
    sql = open_sql_store(database_url(request.param, request, tmp_path))
    try:
        yield sql
    finally:
        sql.close()


@pytest.fixture(params=SQL_KINDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHubStore]:
    """Each SQL version of the hub store, empty."""
    sql = open_sql_store(database_url(request.param, request, tmp_path))
    try:
        yield sql
    finally:
        sql.close()


@pytest.fixture(params=SQL_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty SQLite or PostgreSQL database."""
    return database_url(request.param, request, tmp_path)
