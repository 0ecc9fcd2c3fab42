"""The relay's state in the hub's services: housekeeping (idle task mailboxes and tasks go,
old acknowledgements are forgotten, pod mailboxes stay) and where the mailboxes live."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from podium.hub.config import RelaySettings
from podium.hub.relay import InMemoryMailboxStore, SqlMailboxStore
from podium.hub.relay.state import Housekept, RelayState
from podium.hub.services import HubServices
from podium.hub.store import SqlHubStore
from tests.hub.conftest import Clock, make_config, make_services
from tests.hub.relay.hub_server import TIMEOUT, running_hub
from tests.hub.store.conftest import T0

TASK = "d" * 32
TASK_BOX = f"task/{TASK}/bob"
POD_BOX = "pod/alice/census"


def test_housekeeping_removes_idle_task_mailboxes_and_old_acks() -> None:
    """After the idle time, task mailboxes and their tasks go; pod mailboxes stay."""
    store = InMemoryMailboxStore()
    relay = RelayState(
        store, RelaySettings(task_mailbox_idle_s=3600, ack_retention_s=60), clock=lambda: T0
    )
    assert store.register_task(TASK, "bob", "alice.census", T0)
    for mailbox in (TASK_BOX, POD_BOX):
        store.append(mailbox, sender="bob", task_id=TASK, seq=0, frame=b"f", now=T0)
    acked = store.append(POD_BOX, sender="bob", task_id=TASK, seq=1, frame=b"f", now=T0)
    store.ack(POD_BOX, [acked.message_id], T0)

    assert relay.housekeep(T0 + timedelta(seconds=30)) == Housekept(0, 0, 0)
    assert relay.housekeep(T0 + timedelta(hours=2)) == Housekept(1, 1, 1)
    assert store.get_mailbox(TASK_BOX) is None
    assert store.count(POD_BOX) == 1
    assert store.task_participants(TASK) is None


def test_opened_services_keep_mailboxes_in_the_hub_database(tmp_path: Path) -> None:
    """HubServices.open puts the mailboxes on the hub store's own engine."""
    services = HubServices.open(make_config(tmp_path))
    try:
        assert isinstance(services.mailboxes, SqlMailboxStore)
        assert isinstance(services.store, SqlHubStore)
        assert services.mailboxes.engine is services.store.engine
        services.mailboxes.append(POD_BOX, sender="bob", task_id=TASK, seq=0, frame=b"f", now=T0)
    finally:
        services.close()
    reopened = HubServices.open(make_config(tmp_path))
    try:
        assert reopened.mailboxes.count(POD_BOX) == 1
    finally:
        reopened.close()


def test_served_hub_runs_housekeeping(tmp_path: Path, clock: Clock) -> None:
    """While the app is served, idle task mailboxes are removed every interval."""
    settings = RelaySettings(housekeeping_interval_s=0.02, task_mailbox_idle_s=60)
    services = make_services(tmp_path, clock, relay=settings)
    services.mailboxes.append(TASK_BOX, sender="bob", task_id=TASK, seq=0, frame=b"f", now=clock())
    with running_hub(services):
        clock.advance(120)
        deadline = time.monotonic() + TIMEOUT
        while services.mailboxes.get_mailbox(TASK_BOX) is not None:
            assert time.monotonic() < deadline, "the idle task mailbox was not removed"
            time.sleep(0.01)


class CountingStore(InMemoryMailboxStore):
    """Counts task_participants lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def task_participants(self, task_id: str) -> frozenset[str] | None:
        self.lookups += 1
        return super().task_participants(task_id)


async def test_participants_are_cached_for_their_ttl_only() -> None:
    """Known tasks are looked up once per TTL; unknown ones every time; an expired
    task is not served from the cache once its entry has lived out its TTL."""
    store = CountingStore()
    clock = Clock()
    relay = RelayState(store, RelaySettings(participants_ttl_s=60), clock=clock)
    assert await relay.participants(TASK) is None
    assert await relay.participants(TASK) is None
    assert store.lookups == 2
    assert store.register_task(TASK, "bob", "alice.census", clock.now)
    for _ in range(3):
        assert await relay.participants(TASK) == frozenset({"bob", "alice.census"})
    assert store.lookups == 3
    relay.housekeep(clock.now + timedelta(days=30))  # the task expires in the store
    clock.advance(59)
    assert await relay.participants(TASK) == frozenset({"bob", "alice.census"})
    clock.advance(2)
    assert await relay.participants(TASK) is None
    assert store.lookups == 4
