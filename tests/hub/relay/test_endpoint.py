"""The relay endpoint over real sockets: authentication, mailbox rules, delivery with
acknowledgement and redelivery, idempotent sends, frame limits; on the in-memory, SQLite
and PostgreSQL mailbox stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from podium.core.messages import CloseCode, MessageType, Receipt, encode_deliver, encode_frame
from podium.hub.config import RelaySettings
from podium.hub.relay import InMemoryMailboxStore, MailboxStore, SqlMailboxStore
from podium.hub.relay.endpoint import NO_TASK
from podium.hub.services import HubServices
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import upgrade_to_head
from tests.hub.conftest import PASSWORD, Clock, make_config, make_services
from tests.hub.relay.hub_server import TASK, envelope, peer, running_hub
from tests.hub.store.conftest import SQL_KINDS, database_url

POD_BOX = "pod/alice/census"
MAX_FRAME = 64 * 1024


@dataclass(frozen=True)
class Hub:
    """A running hub and the credentials of its users."""

    url: str
    services: HubServices
    pod_key: str  # alice's API key: her census pod runs with it
    alice: str
    bob: str  # a modeller
    eve: str  # another user

    @property
    def mailboxes(self) -> MailboxStore:
        return self.services.mailboxes


def _mailbox_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MailboxStore]:
    if kind == "memory":
        yield InMemoryMailboxStore()
        return
    engine = create_hub_engine(database_url(kind, request, tmp_path))
    try:
        upgrade_to_head(engine)
        yield SqlMailboxStore(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["memory", *SQL_KINDS])
def hub(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Hub]:
    """A hub on a loopback port with users alice (and her pod's API key), bob and eve."""
    (tmp_path / "hub").mkdir()
    for mailboxes in _mailbox_store(request.param, request, tmp_path):
        services = make_services(
            tmp_path,
            clock,
            relay=RelaySettings(max_frame_bytes=MAX_FRAME, window=4, reauth_interval_s=0.05),
        )
        services = HubServices(
            services.config,
            services.store,
            services.signer,
            services.passwords,
            clock=clock,
            mailboxes=mailboxes,
        )
        tokens = {}
        for name in ("alice", "bob", "eve"):
            services.accounts.create_user(name, PASSWORD, is_admin=False, now=clock())
            tokens[name] = services.accounts.login(name, PASSWORD, clock()).access_token
        _, pod_key = services.accounts.create_api_key("alice", "census pod", clock())
        with running_hub(services) as url:
            yield Hub(url, services, pod_key, tokens["alice"], tokens["bob"], tokens["eve"])


# -- authentication and reading rules ----------------------------------------------------


@pytest.mark.parametrize("credential", [None, "not-a-token"])
async def test_unauthenticated_connection_is_closed_4401(hub: Hub, credential: str | None) -> None:
    """Without a valid token or API key the hub closes the connection with 4401."""
    async with peer(hub.url, credential) as client:
        assert await client.close_code() == CloseCode.UNAUTHENTICATED


async def test_subscribing_to_another_users_pod_mailbox_is_refused(hub: Hub) -> None:
    """SUBSCRIBE to someone else's pod mailbox is REFUSED 4403 and the connection stays."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.subscribe(POD_BOX)
        refused = await bob.refused()
        assert (refused.code, refused.recipient, refused.task_id) == (
            CloseCode.FORBIDDEN_MAILBOX,
            POD_BOX,
            NO_TASK,
        )
        await bob.send_envelope(envelope())
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)


async def test_subscribing_to_another_partys_task_mailbox_is_refused(hub: Hub) -> None:
    """Task mailboxes are read only by their party: eve may not read bob's or alice's pod's."""
    async with peer(hub.url, hub.eve) as eve:
        for mailbox in (f"task/{TASK}/bob", f"task/{TASK}/alice.census"):
            await eve.subscribe(mailbox)
            refused = await eve.refused()
            assert (refused.code, refused.recipient, refused.task_id) == (
                CloseCode.FORBIDDEN_MAILBOX,
                mailbox,
                TASK,
            )


async def test_an_access_token_expiring_while_connected_closes_4440(hub: Hub, clock: Clock) -> None:
    """The hub re-checks the credential while the connection lives: once bob's access
    token has expired, his connection is closed with 4440 (reconnect with a fresh one)."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.send_envelope(envelope())
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)  # authenticated and served
        clock.advance(hub.services.config.access_token_ttl_s + 1)
        assert await bob.close_code() == CloseCode.CREDENTIAL_EXPIRED


async def test_a_revoked_api_key_closes_its_live_connection_4440(hub: Hub, clock: Clock) -> None:
    """Revoking the pod's API key cuts the pod's live connection; the owner's token
    connection is not touched."""
    async with peer(hub.url, hub.pod_key) as pod, peer(hub.url, hub.alice) as alice:
        for seq, client in enumerate((pod, alice)):  # a receipt each: both authenticated
            await client.send_envelope(envelope(sender="alice", seq=seq))
            assert await client.receipt() == Receipt(TASK, POD_BOX, seq)
        key_id = hub.pod_key.split("_")[1]
        hub.services.store.revoke_api_key(key_id, clock())
        assert await pod.close_code() == CloseCode.CREDENTIAL_EXPIRED
        await alice.send_envelope(envelope(sender="alice", seq=2))
        assert await alice.receipt() == Receipt(TASK, POD_BOX, 2)


# -- delivery ----------------------------------------------------------------------------


async def test_job_request_is_delivered_byte_exact_to_the_pod(hub: Hub) -> None:
    """A modeller's job request gets a RECEIPT; the pod then gets exactly that frame."""
    async with peer(hub.url, hub.bob) as bob:
        frame = await bob.send_envelope(envelope())
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)
    async with peer(hub.url, hub.pod_key) as pod:
        await pod.subscribe(POD_BOX)
        delivered = await pod.deliver()
        assert pod.last_raw == encode_deliver(delivered.id, frame)
        assert delivered.envelope == envelope()


async def test_acknowledged_message_is_not_delivered_again(hub: Hub) -> None:
    """After an ACK, a new connection gets only newer messages."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.send_envelope(envelope(seq=0))
        await bob.receipt()
        async with peer(hub.url, hub.pod_key) as pod:
            await pod.subscribe(POD_BOX)
            await pod.ack((await pod.deliver()).id)
            await _until(lambda: hub.mailboxes.count(POD_BOX) == 0)
        await bob.send_envelope(envelope(seq=1))
        await bob.receipt()
    async with peer(hub.url, hub.pod_key) as pod:
        await pod.subscribe(POD_BOX)
        assert (await pod.deliver()).envelope.seq == 1


async def test_unacknowledged_message_is_delivered_again_after_reconnect(hub: Hub) -> None:
    """A delivery without ACK comes again, with the same id, on the next connection."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.send_envelope(envelope())
        await bob.receipt()
    async with peer(hub.url, hub.pod_key) as pod:
        await pod.subscribe(POD_BOX)
        first = await pod.deliver()
    async with peer(hub.url, hub.pod_key) as pod:
        await pod.subscribe(POD_BOX)
        assert await pod.deliver() == first


async def test_message_sent_while_subscribed_is_delivered_live(hub: Hub) -> None:
    """A subscriber already connected gets a new message without reconnecting."""
    async with peer(hub.url, hub.pod_key) as pod, peer(hub.url, hub.bob) as bob:
        await pod.subscribe(POD_BOX)
        await _until(lambda: hub.services.mailboxes.get_mailbox(POD_BOX) is not None)
        for seq in range(3):
            await bob.send_envelope(envelope(seq=seq))
            await bob.receipt()
            assert (await pod.deliver()).envelope.seq == seq


async def test_duplicate_send_is_stored_once(hub: Hub) -> None:
    """The same (task, sender, seq) sent twice gets two receipts and is stored once."""
    async with peer(hub.url, hub.bob) as bob:
        for _ in range(2):
            await bob.send_envelope(envelope())
            assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)
    assert hub.mailboxes.count(POD_BOX) == 1


async def test_deliveries_in_flight_are_bounded_by_the_window(hub: Hub) -> None:
    """No more than ``window`` (4) deliveries are unacknowledged; an ACK makes room."""
    async with peer(hub.url, hub.bob) as bob:
        for seq in range(6):
            await bob.send_envelope(envelope(seq=seq))
            await bob.receipt()
    async with peer(hub.url, hub.pod_key) as pod:
        await pod.subscribe(POD_BOX)
        first = [await pod.deliver() for _ in range(4)]
        assert [d.envelope.seq for d in first] == [0, 1, 2, 3]
        with pytest.raises(TimeoutError):
            await pod.recv(timeout=0.3)
        await pod.ack(first[0].id, first[1].id)
        assert [(await pod.deliver()).envelope.seq for _ in range(2)] == [4, 5]


# -- sending rules -----------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["alice", "alice.census", "eve"])
async def test_spoofed_sender_is_refused(hub: Hub, sender: str) -> None:
    """A message whose sender is not one of the client's parties is REFUSED 4403."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.send_envelope(envelope(sender=sender))
        refused = await bob.refused()
        assert (refused.code, refused.recipient, refused.seq) == (
            CloseCode.FORBIDDEN_MAILBOX,
            POD_BOX,
            0,
        )
        await bob.send_envelope(envelope(sender="bob.laptop", seq=1))
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 1)
    assert hub.mailboxes.count(POD_BOX) == 1


async def test_task_mailboxes_take_messages_only_between_participants(hub: Hub) -> None:
    """After bob's job request to alice's pod, the two may write to each other's task
    mailboxes; eve may not, nor may bob write to a non-participant's mailbox."""
    to_bob = f"task/{TASK}/bob"
    async with (
        peer(hub.url, hub.bob) as bob,
        peer(hub.url, hub.pod_key) as pod,
        peer(hub.url, hub.eve) as eve,
    ):
        await eve.send_envelope(
            envelope(sender="eve", recipient=to_bob, kind=MessageType.LOG_MESSAGE)
        )
        assert (await eve.refused()).code == CloseCode.FORBIDDEN_MAILBOX  # no such task yet
        await bob.send_envelope(envelope())
        await bob.receipt()
        accept = envelope(sender="alice.census", recipient=to_bob, kind=MessageType.JOB_ACCEPT)
        await pod.send_envelope(accept)
        assert await pod.receipt() == Receipt(TASK, to_bob, 0)
        await eve.send_envelope(
            envelope(sender="eve", recipient=to_bob, seq=1, kind=MessageType.LOG_MESSAGE)
        )
        assert (await eve.refused()).code == CloseCode.FORBIDDEN_MAILBOX
        await eve.send_envelope(envelope(sender="eve", recipient="pod/alice/other"))
        assert (await eve.refused()).code == CloseCode.FORBIDDEN_MAILBOX  # bob's task id
        await bob.send_envelope(
            envelope(recipient=f"task/{TASK}/eve", seq=1, kind=MessageType.TASK_START)
        )
        assert (await bob.refused()).code == CloseCode.FORBIDDEN_MAILBOX
        await bob.subscribe(to_bob)
        assert (await bob.deliver()).envelope == accept
    assert hub.mailboxes.count(to_bob) == 1


# -- restarts ----------------------------------------------------------------------------


async def test_task_outlives_a_hub_restart(tmp_path: Path) -> None:
    """A task registered before a restart still takes its participants' messages after the
    hub is rebuilt over the same SQLite database."""
    to_bob = f"task/{TASK}/bob"
    services = HubServices.open(make_config(tmp_path))
    try:
        services.accounts.create_user("bob", PASSWORD, is_admin=False, now=services.now())
        services.accounts.create_user("alice", PASSWORD, is_admin=False, now=services.now())
        bob_token = services.accounts.login("bob", PASSWORD, services.now()).access_token
        _, pod_key = services.accounts.create_api_key("alice", "census pod", services.now())
        with running_hub(services) as url:
            async with peer(url, bob_token) as bob:
                await bob.send_envelope(envelope())
                await bob.receipt()
    finally:
        services.close()
    restarted = HubServices.open(make_config(tmp_path))
    try:
        with running_hub(restarted) as url:
            async with peer(url, pod_key) as pod:
                accept = envelope(
                    sender="alice.census", recipient=to_bob, kind=MessageType.JOB_ACCEPT
                )
                await pod.send_envelope(accept)
                assert await pod.receipt() == Receipt(TASK, to_bob, 0)
                await pod.send_envelope(
                    envelope(
                        sender="alice.census",
                        task_id="e" * 32,
                        recipient=f"task/{'e' * 32}/bob",
                        kind=MessageType.JOB_ACCEPT,
                    )
                )
                assert (await pod.refused()).code == CloseCode.FORBIDDEN_MAILBOX
        assert restarted.mailboxes.count(to_bob) == 1
    finally:
        restarted.close()


# -- frame limits ------------------------------------------------------------------------


async def test_oversized_frame_closes_4413_and_others_keep_working(hub: Hub) -> None:
    """A frame over max_frame_bytes closes that connection with 4413 only."""
    async with peer(hub.url, hub.bob) as bob, peer(hub.url, hub.eve) as eve:
        await eve.send(encode_frame(envelope(sender="eve", body=b"x" * MAX_FRAME)))
        assert await eve.close_code() == CloseCode.FRAME_TOO_LARGE
        await bob.send_envelope(envelope())
        assert await bob.receipt() == Receipt(TASK, POD_BOX, 0)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (msgpack.packb({"v": 1, "type": "NO_SUCH_TYPE"}), CloseCode.UNKNOWN_MESSAGE_TYPE),
        (
            msgpack.packb({"v": 1, "type": "RECEIPT", "task": TASK, "to": POD_BOX, "seq": 0}),
            CloseCode.UNKNOWN_MESSAGE_TYPE,
        ),
        (b"\xc1", CloseCode.MALFORMED_FRAME),
        ("a text frame", CloseCode.MALFORMED_FRAME),
        (msgpack.packb({"v": 2, "type": "ACK", "ids": [1]}), CloseCode.UNSUPPORTED_VERSION),
    ],
)
async def test_bad_frame_closes_with_its_code(
    hub: Hub, frame: bytes | str, code: CloseCode
) -> None:
    """An unknown or unexpected type, malformed msgpack or a text frame closes with its code."""
    async with peer(hub.url, hub.bob) as bob:
        await bob.send(frame)
        assert await bob.close_code() == code


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` is true (polling), failing after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
