"""Waking relay readers across hub replicas with PostgreSQL LISTEN/NOTIFY: notifications
wake local readers, the store notifies on append, and a dropped listener reconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from podium.hub.relay import SqlMailboxStore
from podium.hub.relay.notify_pg import PostgresNotifier, conninfo_from_url
from podium.hub.store.base import StoreError
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import upgrade_to_head
from tests.hub.store.conftest import T0

BOX = "pod/alice/census"
TIMEOUT = 5.0


def test_conninfo_keeps_credentials_and_options() -> None:
    """The SQLAlchemy URL becomes a libpq URI: no driver suffix, password and query kept."""
    url = "postgresql+psycopg://u:s%40cret@db:5433/hub?options=-csearch_path%3Dx"
    assert conninfo_from_url(url) == "postgresql://u:s%40cret@db:5433/hub?options=-csearch_path%3Dx"


def test_sqlite_store_cannot_notify(tmp_path: Path) -> None:
    """Only PostgreSQL can carry notifications to other replicas."""
    engine = create_hub_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with pytest.raises(StoreError, match="PostgreSQL"):
            SqlMailboxStore(engine, notify_channel="podium_relay")
    finally:
        engine.dispose()


@pytest.fixture
def channel() -> str:
    """A channel of this test's own, so parallel runs do not wake each other."""
    return f"podium_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def notifier(postgres_url: str, channel: str) -> AsyncIterator[PostgresNotifier]:
    """A started notifier listening on ``channel`` with a short backoff."""
    listener = PostgresNotifier(
        conninfo_from_url(postgres_url), channel=channel, min_backoff_s=0.05, max_backoff_s=0.2
    )
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


async def _notify(postgres_url: str, channel: str, payload: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        conninfo_from_url(postgres_url), autocommit=True
    ) as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


@pytest.mark.integration
async def test_notification_wakes_only_the_readers_of_its_mailbox(
    notifier: PostgresNotifier, postgres_url: str, channel: str
) -> None:
    """A NOTIFY from another session wakes the readers of the named mailbox, not others."""
    assert notifier.listening
    reader, other = asyncio.Event(), asyncio.Event()
    notifier.register(BOX, reader)
    notifier.register("pod/bob/other", other)
    await _notify(postgres_url, channel, BOX)
    await asyncio.wait_for(reader.wait(), TIMEOUT)
    assert not other.is_set()


@pytest.mark.integration
async def test_append_notifies_listening_replicas(postgres_url: str) -> None:
    """A store with a notify channel wakes a listener's reader when it stores a message."""
    channel = f"podium_test_{uuid.uuid4().hex[:12]}"
    engine = create_hub_engine(postgres_url)
    listener = PostgresNotifier(conninfo_from_url(postgres_url), channel=channel)
    await listener.start()
    try:
        upgrade_to_head(engine)
        store = SqlMailboxStore(engine, notify_channel=channel)
        reader = asyncio.Event()
        listener.register(BOX, reader)
        store.append(BOX, sender="bob", task_id="t", seq=0, frame=b"f", now=T0)
        await asyncio.wait_for(reader.wait(), TIMEOUT)
    finally:
        await listener.stop()
        engine.dispose()


@pytest.mark.integration
async def test_dropped_listener_reconnects_and_wakes_every_reader(
    notifier: PostgresNotifier, postgres_engine: sa.Engine, postgres_url: str, channel: str
) -> None:
    """When the server ends the listening session, the notifier connects again, wakes
    every local reader once (they may have missed a message) and hears notifications."""
    readers = [asyncio.Event() for _ in range(2)]
    notifier.register(BOX, readers[0])
    notifier.register("pod/bob/other", readers[1])
    kill = sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = :q")
    with postgres_engine.begin() as conn:
        assert conn.execute(kill, {"q": f'LISTEN "{channel}"'}).scalar_one() == 1
    async with asyncio.timeout(TIMEOUT):
        while notifier.connections < 2:
            await asyncio.sleep(0.01)
        for reader in readers:
            await reader.wait()
    readers[0].clear()
    await _notify(postgres_url, channel, BOX)
    await asyncio.wait_for(readers[0].wait(), TIMEOUT)
