"""Fixtures for the relay suites: one ``mailboxes`` fixture over every version of the
mailbox store (in-memory, SQLite in a temporary file, PostgreSQL in a schema of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.hub.relay import InMemoryMailboxStore, MailboxStore, SqlMailboxStore
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import upgrade_to_head
from tests.hub.store.conftest import SQL_KINDS, database_url

#: The SQL store again with every frame (threshold 1 byte) kept in a file.
WITH_FILES = [
    "sqlite+files",
    pytest.param("postgresql+files", marks=pytest.mark.integration),
]


@pytest.fixture(params=["memory", *SQL_KINDS, *WITH_FILES])
def mailboxes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailboxStore]:
    """Each version of the mailbox store, empty: in memory, on SQLite and PostgreSQL, and
    on both with frames in files."""
    if request.param == "memory":
        yield InMemoryMailboxStore()
        return
    kind, _, files = request.param.partition("+")
    engine = create_hub_engine(database_url(kind, request, tmp_path))
    try:
        upgrade_to_head(engine)
        if files:
            yield SqlMailboxStore(engine, frame_dir=tmp_path / "frames", file_threshold=1)
        else:
            yield SqlMailboxStore(engine)
    finally:
        engine.dispose()
