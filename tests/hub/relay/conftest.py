"""Fixtures for the relay suites: one ``mailboxes`` fixture over every version of the
mailbox store (in-memory, SQLite in a temporary file, PostgreSQL in a schema of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.hub.relay import InMemoryMailboxStore, MailboxStore, SqlMailboxStore
from podium.hub.store.migrate import upgrade_to_head
from podium.hub.store.sql import create_hub_engine
from tests.hub.store.conftest import SQL_KINDS, database_url


@pytest.fixture(params=["memory", *SQL_KINDS])
def mailboxes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailboxStore]:
    """Each version of the mailbox store, empty."""
    if request.param == "memory":
        yield InMemoryMailboxStore()
        return
    engine = create_hub_engine(database_url(request.param, request, tmp_path))
    try:
        upgrade_to_head(engine)
        yield SqlMailboxStore(engine)
    finally:
        engine.dispose()
