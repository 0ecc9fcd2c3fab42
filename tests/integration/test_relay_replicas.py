"""Two hub replicas on one PostgreSQL: a pod connected to one and a modeller connected to
the other exchange messages live, woken across processes by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.core.messages import Deliver, MessageType, Receipt
from podium.hub.relay.notify import InProcessNotifier
from podium.hub.relay.notify_pg import PostgresNotifier
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, make_config
from tests.hub.relay.hub_server import TASK, Peer, envelope, peer, running_hub

pytestmark = pytest.mark.integration

POD_BOX = "pod/alice/census"
TO_BOB = f"task/{TASK}/bob"
#: How long a live delivery across replicas may take.
LIVE_S = 5.0


@dataclass(frozen=True)
class Replica:
    """One hub process's services and its relay URL."""

    services: HubServices
    url: str

    def readers(self, mailbox: str) -> int:
        notifier = self.services.notifier
        assert isinstance(notifier, InProcessNotifier)
        return notifier.readers(mailbox)


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Replica, Replica]]:
    """Two hubs, each with its own services, over the same PostgreSQL schema and data dir."""
    config = make_config(tmp_path, db_url=postgres_url)
    with ExitStack() as stack:
        pair = []
        for _ in range(2):
            services = HubServices.open(config)
            stack.callback(services.close)
            pair.append(Replica(services, stack.enter_context(running_hub(services))))
        yield pair[0], pair[1]


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LIVE_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _live(client: Peer) -> Deliver:
    frame = await client.recv(timeout=LIVE_S)
    assert isinstance(frame, Deliver), frame
    return frame


async def test_pod_and_modeller_on_different_replicas_exchange_messages(
    replicas: tuple[Replica, Replica],
) -> None:
    """bob's job request sent through replica B reaches alice's pod connected to replica A
    without a reconnect, and the pod's answer through A reaches bob on B."""
    a, b = replicas
    assert isinstance(a.services.notifier, PostgresNotifier)
    assert isinstance(b.services.notifier, PostgresNotifier)
    accounts, now = a.services.accounts, a.services.now()
    accounts.create_user("alice", PASSWORD, is_admin=False, now=now)
    accounts.create_user("bob", PASSWORD, is_admin=False, now=now)
    _, pod_key = accounts.create_api_key("alice", "census pod", now)
    bob_token = b.services.accounts.login("bob", PASSWORD, now).access_token

    async with peer(a.url, pod_key) as pod, peer(b.url, bob_token) as bob:
        await pod.subscribe(POD_BOX)
        await bob.subscribe(TO_BOB)
        await _until(lambda: a.readers(POD_BOX) == 1 and b.readers(TO_BOB) == 1)

        request = envelope()
        await bob.send_envelope(request)
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)
        delivered = await _live(pod)
        assert delivered.envelope == request
        await pod.ack(delivered.id)

        accept = envelope(sender="alice.census", recipient=TO_BOB, kind=MessageType.JOB_ACCEPT)
        await pod.send_envelope(accept)
        assert await pod.receipt() == Receipt(TASK, TO_BOB, 0)
        assert (await _live(bob)).envelope == accept
