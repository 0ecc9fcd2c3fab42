"""The transport contract, run against every relay harness in conftest.HARNESSES.

Task mailboxes take messages only between a task's participants, so each case that uses
them first opens the task: a ``JOB_REQUEST`` from the modeller (alice) to the pod's
mailbox (bob's census pod), as a real modeller does (:func:`open_task`).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from podium.core.messages import CloseCode, Envelope, MessageType, pod_mailbox, task_mailbox
from podium.transport import Connection, RelayClosedError, RelayRefusedError, Transport
from tests.transport.harness import WAIT_S, RelayHarness, eventually, fast_options

TASK = "0123456789abcdef0123456789abcdef"
POD_INBOX = pod_mailbox("bob", "census")
BOB_TASK_INBOX = task_mailbox(TASK, "bob.census")
ALICE_TASK_INBOX = task_mailbox(TASK, "alice")


def message(seq: int, *, to: str = BOB_TASK_INBOX, sender: str = "alice") -> Envelope:
    return Envelope(
        type=MessageType.TRAINING_UPDATE,
        task_id=TASK,
        sender=sender,
        recipient=to,
        seq=seq,
        sent_at=time.time(),
        meta={"n": seq},
        body=f"body {seq}".encode(),
    )


def job_request(*, sender: str = "alice", task_id: str = TASK) -> Envelope:
    """The job request that opens ``task_id`` between ``sender`` and bob's census pod."""
    return Envelope(
        type=MessageType.JOB_REQUEST,
        task_id=task_id,
        sender=sender,
        recipient=POD_INBOX,
        seq=0,
        sent_at=time.time(),
        body=b"sealed request",
    )


async def open_task(connection: Connection) -> None:
    """Make alice and bob.census participants of TASK (alice's connection sends)."""
    await connection.send(job_request())


def needs_lost_receipts(harness: RelayHarness) -> None:
    """Skip on a harness that cannot withhold receipts (the case runs on the others)."""
    if not harness.can_lose_receipts:
        pytest.skip(
            "a real hub cannot be made to lose receipts; this case runs on the in-process "
            "and websocket-bridge harnesses"
        )


async def receive(connection: Connection) -> Envelope:
    async with asyncio.timeout(WAIT_S):
        return await connection.receive()


async def first_message(transport: Transport, mailboxes: list[str]) -> Envelope:
    """Connect, wait for one message, close."""
    async with (
        asyncio.timeout(WAIT_S),
        transport.connect(mailboxes, options=fast_options()) as connection,
    ):
        return await connection.receive()


async def nothing_more(connection: Connection) -> None:
    """Fail if a message arrives within a short while."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await connection.receive()


async def test_round_trip(harness: RelayHarness) -> None:
    """A message sent to a pod's mailbox reaches the pod's connection intact."""
    sent = message(0, to=POD_INBOX)
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([POD_INBOX], options=fast_options()) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await me.send(sent)
            got = await receive(pod)
            await pod.ack(got)
            await eventually(lambda: harness.pending(POD_INBOX) == 0)
    assert got == sent
    assert got.body == sent.body
    assert harness.stored(POD_INBOX) == 1


async def test_order_per_sender(harness: RelayHarness) -> None:
    """Messages from one sender arrive in the order sent."""
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            for seq in range(10):
                await me.send(message(seq))
            seqs = [(await receive(pod)).seq for _ in range(10)]
    assert seqs == list(range(10))


async def test_redelivery_after_drop_reaches_the_application_once(
    harness: RelayHarness,
) -> None:
    """Messages redelivered after a dropped connection are not handed over again."""
    options = fast_options()
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=options) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            for seq in range(3):
                await me.send(message(seq))
            first = [await receive(pod) for _ in range(3)]  # taken, not acknowledged
            harness.drop("bob")
            await eventually(lambda: harness.connections("bob") == 1)
            await me.send(message(3))
            after = await receive(pod)
            await nothing_more(pod)
            for envelope in [*first, after]:
                await pod.ack(envelope)
            await eventually(lambda: harness.pending(BOB_TASK_INBOX) == 0)
    assert [m.seq for m in first] == [0, 1, 2]
    assert after.seq == 3


async def test_unreceipted_send_is_resent_and_stored_once(harness: RelayHarness) -> None:
    """A send whose receipt was lost completes after a reconnect; the hub stores it once."""
    needs_lost_receipts(harness)
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            harness.lose_receipts(True)
            sending = asyncio.create_task(me.send(message(0)))
            await eventually(lambda: harness.stored(BOB_TASK_INBOX) == 1)
            assert not sending.done()
            harness.lose_receipts(False)
            harness.drop("alice")
            await sending
            await me.send(message(1))
            seqs = [(await receive(pod)).seq for _ in range(2)]
            await nothing_more(pod)
    assert seqs == [0, 1]
    assert harness.stored(BOB_TASK_INBOX) == 2


async def test_subscribing_to_a_mailbox_not_yours_is_fatal(harness: RelayHarness) -> None:
    """Subscribing to another user's mailbox closes the connection with 4403, for good."""
    with pytest.raises(RelayClosedError) as caught:
        await first_message(harness.transport("alice"), [POD_INBOX])
    assert caught.value.code == 4403


async def test_sending_as_someone_else_is_refused(harness: RelayHarness) -> None:
    """A message whose sender is not the caller is refused; the connection stays usable."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect(
            [ALICE_TASK_INBOX], options=fast_options()
        ) as me:
            await open_task(me)
            with pytest.raises(RelayRefusedError) as caught:
                await me.send(message(0, sender="bob"))
            await me.send(message(0))
    assert caught.value.code == 4403
    assert harness.stored(BOB_TASK_INBOX) == 1


async def test_bad_credential_is_fatal(harness: RelayHarness) -> None:
    """A credential the hub does not know fails the connection with 4401."""
    with pytest.raises(RelayClosedError) as caught:
        await first_message(harness.bad_transport(), [ALICE_TASK_INBOX])
    assert caught.value.code == 4401


async def test_unacked_message_is_redelivered_to_a_new_connection(
    harness: RelayHarness,
) -> None:
    """A message taken but not acknowledged comes again to the party's next connection."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect(
            [ALICE_TASK_INBOX], options=fast_options()
        ) as me:
            await open_task(me)
            await me.send(message(0))
        async with harness.transport("bob").connect([BOB_TASK_INBOX]) as first:
            taken = await receive(first)
        async with harness.transport("bob").connect([BOB_TASK_INBOX]) as second:
            again = await receive(second)
            await second.ack(again)
            await eventually(lambda: harness.pending(BOB_TASK_INBOX) == 0)
        async with harness.transport("bob").connect([BOB_TASK_INBOX]) as third:
            await nothing_more(third)
    assert again == taken


async def test_two_hundred_messages_arrive_in_order(harness: RelayHarness) -> None:
    """200 messages sent back to back arrive complete and in order."""
    count = 200
    async with asyncio.timeout(WAIT_S * 2):
        async with (
            harness.transport("bob").connect(
                [BOB_TASK_INBOX], options=fast_options(auto_ack=True)
            ) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            await asyncio.gather(*(me.send(message(seq)) for seq in range(count)))
            seqs = [(await receive(pod)).seq for _ in range(count)]
            await eventually(lambda: harness.pending(BOB_TASK_INBOX) == 0)
    assert seqs == list(range(count))
    assert harness.stored(BOB_TASK_INBOX) == count


async def test_async_for_ends_when_the_connection_is_closed(harness: RelayHarness) -> None:
    """Iterating a connection yields messages and stops quietly once it is closed."""
    seen: list[int] = []
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect(
            [ALICE_TASK_INBOX], options=fast_options()
        ) as me:
            await open_task(me)
            await me.send(message(0))
            await me.send(message(1))
        async with harness.transport("bob").connect(
            [BOB_TASK_INBOX], options=fast_options(auto_ack=True)
        ) as pod:

            async def consume() -> None:
                async for envelope in pod:
                    seen.append(envelope.seq)

            consumer = asyncio.create_task(consume())
            await eventually(lambda: len(seen) == 2)
        await consumer
    assert seen == [0, 1]


async def test_ack_lost_in_a_drop_does_not_deliver_again(harness: RelayHarness) -> None:
    """A message acknowledged while the link is down is redelivered by the hub, dropped
    as a duplicate and acknowledged for good."""
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            for seq in range(3):
                await me.send(message(seq))
            taken = [await receive(pod) for _ in range(3)]
            harness.drop("bob")
            for envelope in taken:
                await pod.ack(envelope)  # the link is gone: these acks are lost
            await eventually(lambda: harness.pending(BOB_TASK_INBOX) == 0)
            await nothing_more(pod)
    assert [m.seq for m in taken] == [0, 1, 2]


async def test_redelivery_of_a_message_not_yet_acked_is_not_acked_for_the_app(
    harness: RelayHarness,
) -> None:
    """A message the application holds stays pending at the hub across a reconnect until
    the application acknowledges it."""
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
        ):
            await open_task(me)
            await me.send(message(0))
            held = await receive(pod)
            harness.drop("bob")
            await eventually(lambda: harness.connections("bob") == 1)
            await asyncio.sleep(0.05)  # time for the redelivery to arrive
            assert harness.pending(BOB_TASK_INBOX) == 1
            await pod.ack(held)
            await eventually(lambda: harness.pending(BOB_TASK_INBOX) == 0)


async def test_a_non_participant_cannot_write_to_a_task_mailbox(harness: RelayHarness) -> None:
    """A message to a task mailbox from someone outside the task is refused with 4403."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect([ALICE_TASK_INBOX]) as me:
            await open_task(me)
        async with harness.transport("carol").connect(
            [task_mailbox(TASK, "carol")], options=fast_options()
        ) as carol:
            with pytest.raises(RelayRefusedError) as caught:
                await carol.send(message(0, sender="carol"))
    assert caught.value.code == 4403
    assert caught.value.recipient == BOB_TASK_INBOX
    assert harness.stored(BOB_TASK_INBOX) == 0


async def test_a_task_mailbox_refuses_messages_before_the_job_request(
    harness: RelayHarness,
) -> None:
    """Until a job request opens the task, its mailboxes take no messages."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect(
            [ALICE_TASK_INBOX], options=fast_options()
        ) as me:
            with pytest.raises(RelayRefusedError) as caught:
                await me.send(message(0))
            await open_task(me)
            await me.send(message(0))
    assert caught.value.code == 4403
    assert harness.stored(BOB_TASK_INBOX) == 1


async def test_a_task_belongs_to_its_first_requester(harness: RelayHarness) -> None:
    """A job request for a task id another modeller opened is refused with 4403."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect([ALICE_TASK_INBOX]) as me:
            await open_task(me)
        async with harness.transport("carol").connect(
            [task_mailbox(TASK, "carol")], options=fast_options()
        ) as carol:
            with pytest.raises(RelayRefusedError) as caught:
                await carol.send(job_request(sender="carol"))
    assert caught.value.code == 4403
    assert harness.stored(POD_INBOX) == 1


async def test_a_revoked_credential_ends_a_live_connection(harness: RelayHarness) -> None:
    """The hub re-checks credentials while connected: revoking alice's closes her
    connection with 4440, which a fixed credential cannot get past."""
    async with asyncio.timeout(WAIT_S):
        async with harness.transport("alice").connect(
            [ALICE_TASK_INBOX], options=fast_options()
        ) as me:
            await open_task(me)  # a receipt: the hub has authenticated this connection
            harness.revoke("alice")
            with pytest.raises(RelayClosedError) as closed:
                await me.receive()
    assert closed.value.code == CloseCode.CREDENTIAL_EXPIRED
    assert "expired or revoked" in str(closed.value)


async def test_a_renewing_connection_survives_revocation(harness: RelayHarness) -> None:
    """With a credential function, a connection cut for an expired credential dials
    again with the fresh one and goes on: nothing lost, nothing handed over twice."""
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
            harness.renewing_transport("alice").connect(
                [ALICE_TASK_INBOX], options=fast_options()
            ) as me,
        ):
            await open_task(me)
            await pod.send(message(0, to=ALICE_TASK_INBOX, sender="bob.census"))
            first = await receive(me)  # taken, not yet acknowledged
            harness.revoke("alice")
            await eventually(lambda: harness.dials["alice"] >= 2)
            await pod.send(message(1, to=ALICE_TASK_INBOX, sender="bob.census"))
            second = await receive(me)
            await nothing_more(me)
            await me.ack(first)
            await me.ack(second)
            await me.send(message(2))  # and alice can still send
            got = await receive(pod)
            await eventually(lambda: harness.pending(ALICE_TASK_INBOX) == 0)
    assert [first.seq, second.seq, got.seq] == [0, 1, 2]
