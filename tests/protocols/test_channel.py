"""Sealed message streams over the in-process relay: framing, ordering and broken peers.

alice is the modeller; bob runs the pods ``bob.a`` (task A) and ``bob.b`` (task B), each
with its own wire task id and session key, as a modeller's task has. ``bob.c`` takes part
in task C, which alice also asked of ``bob.a``, but alice's :class:`Inbox` knows neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from podium.core.crypto import SequenceError, SessionKey, SessionSealer
from podium.core.messages import (
    Envelope,
    JobReject,
    MessageType,
    Opaque,
    Signal,
    TrainingMetrics,
    encode_payload,
    pod_mailbox,
    task_mailbox,
)
from podium.protocols import _channel
from podium.protocols._channel import (
    PART_BYTES,
    Inbox,
    Message,
    PeerGone,
    PeerStream,
    frame_record,
    part_header,
)
from podium.transport import Connection, InProcessRelay
from tests.transport.harness import WAIT_S, eventually, fast_options

ME = "alice"
POD_A, POD_B, STRANGER = "bob.a", "bob.b", "bob.c"
TASK_A, TASK_B, TASK_C = "a" * 32, "b" * 32, "c" * 32
SMALL_PARTS = 64


@dataclass
class Channel:
    """alice's and bob's connections to one relay, with the session keys of tasks A, B, C."""

    relay: InProcessRelay
    me: Connection
    pods: Connection
    keys: Mapping[str, SessionKey]

    def sealer(self, party: str, task_id: str) -> SessionSealer:
        """A fresh sealer for what ``party`` sends in ``task_id``."""
        return SessionSealer(self.keys[task_id], task_id, party)

    def stream(self, party: str, task_id: str) -> PeerStream:
        """What ``party`` sends alice in ``task_id``."""
        return PeerStream(
            self.pods, self.sealer(party, task_id), recipient=task_mailbox(task_id, ME)
        )

    async def send_sealed(
        self,
        sealer: SessionSealer,
        kind: MessageType,
        plain: bytes,
        *,
        final: bool = False,
        seq: int | None = None,
        body: bytes | None = None,
    ) -> bytes:
        """Seal ``plain`` and send it to alice; ``seq`` / ``body`` replace the sealed
        ones (to replay or forge). The sealed body is returned."""
        sealed_seq, sealed = sealer.seal(plain, final=final)
        await self.pods.send(
            Envelope(
                type=kind,
                task_id=sealer.task_id,
                sender=sealer.sender,
                recipient=task_mailbox(sealer.task_id, ME),
                seq=sealed_seq if seq is None else seq,
                sent_at=time.time(),
                meta={"final": final},
                body=sealed if body is None else body,
            )
        )
        return sealed


def job_request(task_id: str, pod: str) -> Envelope:
    """alice's request of ``task_id`` from bob's pod ``pod`` (makes both participants)."""
    return Envelope(
        type=MessageType.JOB_REQUEST,
        task_id=task_id,
        sender=ME,
        recipient=pod_mailbox("bob", pod),
        seq=0,
        sent_at=time.time(),
        body=b"sealed request",
    )


@asynccontextmanager
async def channel() -> AsyncIterator[Channel]:
    """A relay with tasks A (bob.a), B (bob.b) and C (bob.c and bob.a) opened by alice."""
    relay = InProcessRelay()
    alice = relay.transport(relay.add_user(ME))
    bob = relay.transport(relay.add_user("bob"))
    mailboxes = [task_mailbox(task, ME) for task in (TASK_A, TASK_B, TASK_C)]
    async with (
        alice.connect(mailboxes, options=fast_options()) as me,
        bob.connect([pod_mailbox("bob", "a")], options=fast_options()) as pods,
    ):
        async with asyncio.timeout(WAIT_S):
            for task_id, pod in [(TASK_A, "a"), (TASK_B, "b"), (TASK_C, "c"), (TASK_C, "a")]:
                await me.send(job_request(task_id, pod))
        keys = {task: SessionKey.generate() for task in (TASK_A, TASK_B, TASK_C)}
        yield Channel(relay, me, pods, keys)


@asynccontextmanager
async def reading(wire: Channel, *, answers_first: bool = False) -> AsyncIterator[Inbox]:
    """alice's inbox for bob.a (task A) and bob.b (task B), routing while the block runs."""
    peers = {POD_A: (TASK_A, wire.keys[TASK_A]), POD_B: (TASK_B, wire.keys[TASK_B])}
    inbox = Inbox(wire.me, peers=peers, answers_first=answers_first)
    routing = asyncio.create_task(inbox.run())
    try:
        yield inbox
    finally:
        routing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await routing


async def next_item(inbox: Inbox, party: str) -> Message | PeerGone:
    """The next item of ``party``'s queue (fails the test after WAIT_S seconds)."""
    async with asyncio.timeout(WAIT_S):
        return await inbox.queues[party].get()


async def next_message(inbox: Inbox, party: str) -> Message:
    """The next item of ``party``'s queue, which must be a message."""
    item = await next_item(inbox, party)
    assert isinstance(item, Message), item
    return item


async def peer_gone(inbox: Inbox, party: str) -> PeerGone:
    """The next item of ``party``'s queue, which must say the stream broke."""
    item = await next_item(inbox, party)
    assert isinstance(item, PeerGone), item
    return item


async def still_works(wire: Channel, inbox: Inbox) -> None:
    """bob.b's stream delivers a message (so everything sent before it was routed)."""
    await wire.stream(POD_B, TASK_B).send(MessageType.ONLINE_RESPONSE, Signal())
    message = await next_message(inbox, POD_B)
    assert (message.type, message.sender) == (MessageType.ONLINE_RESPONSE, POD_B)


# -- framing -------------------------------------------------------------------------------


def head(kind: MessageType) -> bytes:
    """The sealed header of a whole record's message."""
    return part_header(kind, more=False)


def more(kind: MessageType) -> bytes:
    """The sealed header of a part that more parts follow."""
    return part_header(kind, more=True)


def whole(kind: MessageType) -> bytes:
    """A whole empty-map record (a Signal) of ``kind``."""
    return head(kind) + b"\x80"


def test_a_small_record_is_one_whole_part() -> None:
    """A record under PART_BYTES is one plaintext: flag 0 and the encoded record."""
    record = TrainingMetrics({"loss": 0.5})

    assert frame_record(MessageType.TRAINING_METRICS, record) == [
        part_header(MessageType.TRAINING_METRICS, more=False) + encode_payload(record)
    ]


def test_an_empty_record_is_one_flag_byte() -> None:
    """A record that encodes to no bytes still makes one (whole) part."""
    assert frame_record(MessageType.SECURE_SHARE, Opaque(b"")) == [
        part_header(MessageType.SECURE_SHARE, more=False)
    ]


def test_a_large_record_is_split_with_more_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of at most PART_BYTES, every flag 1 but the last, concatenating to the record."""
    monkeypatch.setattr(_channel, "PART_BYTES", SMALL_PARTS)
    record = Opaque(bytes(range(256)) * 2)

    parts = frame_record(MessageType.MODEL_PARAMETERS, record)

    assert len(parts) == 8
    assert [part[0] for part in parts] == [1] * 7 + [0]
    assert {part[1] for part in parts} == {part_header(MessageType.MODEL_PARAMETERS, more=False)[1]}
    assert all(len(part) - 2 <= SMALL_PARTS for part in parts)
    assert b"".join(part[2:] for part in parts) == encode_payload(record)


def test_a_record_of_exactly_two_parts_has_no_empty_third(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record of exactly twice PART_BYTES makes two full parts."""
    monkeypatch.setattr(_channel, "PART_BYTES", SMALL_PARTS)

    parts = frame_record(MessageType.MODEL_PARAMETERS, Opaque(b"x" * (2 * SMALL_PARTS)))

    assert [(part[0], len(part)) for part in parts] == [(1, 66), (0, 66)]


def test_the_default_part_size_is_four_mebibytes() -> None:
    """PART_BYTES is 4 MiB, well under the hub's frame limit."""
    assert PART_BYTES == 4 * 1024 * 1024


# -- delivery ------------------------------------------------------------------------------


async def test_a_small_record_arrives_whole() -> None:
    """A record sent on a PeerStream reaches that peer's queue, opened and sealed-marked."""
    async with channel() as wire, reading(wire) as inbox:
        record = TrainingMetrics({"loss": 0.25, "accuracy": 0.9})
        await wire.stream(POD_A, TASK_A).send(MessageType.TRAINING_METRICS, record)

        message = await next_message(inbox, POD_A)

    assert message == Message(MessageType.TRAINING_METRICS, record, POD_A, sealed=True)
    assert inbox.queues[POD_B].empty()


async def test_messages_arrive_in_order_and_are_acknowledged() -> None:
    """Several records come out in the order sent, and the hub may forget them all."""
    async with channel() as wire, reading(wire) as inbox:
        stream = wire.stream(POD_A, TASK_A)
        for n in range(5):
            await stream.send(MessageType.TRAINING_UPDATE, Opaque(bytes([n])))

        got = [(await next_message(inbox, POD_A)).payload for _ in range(5)]
        await eventually(lambda: not wire.relay.pending(task_mailbox(TASK_A, ME)))

    assert got == [Opaque(bytes([n])) for n in range(5)]


async def test_a_large_record_arrives_as_one_message_after_several_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record over PART_BYTES travels as several sealed messages and comes out as one."""
    monkeypatch.setattr(_channel, "PART_BYTES", SMALL_PARTS)
    record = Opaque(bytes(range(256)) * 4)
    async with channel() as wire:
        await wire.stream(POD_A, TASK_A).send(MessageType.MODEL_PARAMETERS, record)
        parts = wire.relay.pending(task_mailbox(TASK_A, ME))

        async with reading(wire) as inbox:
            message = await next_message(inbox, POD_A)
            await still_works(wire, inbox)

    assert len(parts) == 16
    assert [part.seq for part in parts] == list(range(16))
    assert {part.type for part in parts} == {MessageType.MODEL_PARAMETERS}
    assert message == Message(MessageType.MODEL_PARAMETERS, record, POD_A)
    assert inbox.queues[POD_A].empty()


async def test_a_final_message_closes_the_stream() -> None:
    """``final=True`` marks the PeerStream closed and the stream seals nothing more."""
    async with channel() as wire, reading(wire) as inbox:
        stream = wire.stream(POD_A, TASK_A)
        await stream.send(MessageType.TASK_START, Signal())
        open_before = not stream.closed

        await stream.send(MessageType.TASK_COMPLETE, Signal(), final=True)

        closed_after = stream.closed
        with pytest.raises(SequenceError):
            await stream.send(MessageType.LOG_MESSAGE, Signal())
        kinds = [(await next_message(inbox, POD_A)).type for _ in range(2)]

    assert open_before
    assert closed_after
    assert kinds == [MessageType.TASK_START, MessageType.TASK_COMPLETE]


async def test_only_the_last_part_of_a_final_record_is_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A final record in parts flags only its last part final, and still opens."""
    monkeypatch.setattr(_channel, "PART_BYTES", SMALL_PARTS)
    record = Opaque(b"r" * 200)
    async with channel() as wire:
        await wire.stream(POD_A, TASK_A).send(MessageType.EVALUATION_RESULTS, record, final=True)
        parts = wire.relay.pending(task_mailbox(TASK_A, ME))

        async with reading(wire) as inbox:
            message = await next_message(inbox, POD_A)

    assert [part.meta["final"] for part in parts] == [False, False, False, True]
    assert message.payload == record


async def test_a_message_after_the_final_one_breaks_the_stream() -> None:
    """A sealed message after the peer's final message puts a PeerGone in its queue."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        await wire.send_sealed(
            sealer, MessageType.TASK_COMPLETE, whole(MessageType.TASK_COMPLETE), final=True
        )
        forged = wire.sealer(POD_A, TASK_A)
        forged.seal(b"skip seq 0")
        await wire.send_sealed(forged, MessageType.LOG_MESSAGE, whole(MessageType.LOG_MESSAGE))

        assert (await next_message(inbox, POD_A)).type is MessageType.TASK_COMPLETE
        gone = await peer_gone(inbox, POD_A)

    assert "after the final message" in str(gone.error)


# -- broken streams ------------------------------------------------------------------------


async def test_a_tampered_body_breaks_only_that_peers_stream() -> None:
    """A changed ciphertext gives bob.a's queue a PeerGone; bob.b's stream still works."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        plain = frame_record(MessageType.MODEL_PARAMETERS, Opaque(b"weights"))[0]
        _, body = wire.sealer(POD_A, TASK_A).seal(plain)
        tampered = body[:-1] + bytes([body[-1] ^ 1])
        await wire.send_sealed(sealer, MessageType.MODEL_PARAMETERS, plain, body=tampered)

        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    assert str(gone.error).startswith(f"{POD_A}: ")
    assert "does not open" in str(gone.error)


async def test_a_broken_peer_is_ignored_from_then_on() -> None:
    """After its PeerGone, a peer's later messages are acknowledged and never queued."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        await wire.send_sealed(
            sealer, MessageType.TASK_START, whole(MessageType.TASK_START), body=b"x" * 40
        )
        await peer_gone(inbox, POD_A)
        for _ in range(3):
            await wire.send_sealed(sealer, MessageType.TASK_START, whole(MessageType.TASK_START))
        await still_works(wire, inbox)
        await eventually(lambda: not wire.relay.pending(task_mailbox(TASK_A, ME)))

    assert inbox.queues[POD_A].empty()


async def test_a_replayed_message_breaks_the_stream() -> None:
    """An earlier ciphertext sent again under the next seq does not open: PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        first = await wire.send_sealed(
            sealer, MessageType.TRAINING_UPDATE, head(MessageType.TRAINING_UPDATE) + b"one"
        )
        await wire.pods.send(
            Envelope(
                type=MessageType.TRAINING_UPDATE,
                task_id=TASK_A,
                sender=POD_A,
                recipient=task_mailbox(TASK_A, ME),
                seq=1,
                sent_at=time.time(),
                meta={"final": False},
                body=first,
            )
        )

        assert (await next_message(inbox, POD_A)).payload == Opaque(b"one")
        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    assert "message 1 does not open" in str(gone.error)


async def test_an_out_of_order_message_breaks_the_stream() -> None:
    """A message whose seq is not the next expected one gives a PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        _, zeroth = sealer.seal(head(MessageType.TRAINING_UPDATE) + b"zero")
        await wire.send_sealed(
            sealer, MessageType.TRAINING_UPDATE, head(MessageType.TRAINING_UPDATE) + b"one"
        )

        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    assert zeroth  # sealed as seq 0 but never sent: seq 1 came first
    assert "a gap before message 1; expected 0" in str(gone.error)


async def test_parts_of_two_message_types_interleaved_break_the_stream() -> None:
    """A part of another type inside a record's parts gives a PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        data = encode_payload(Opaque(b"0123456789"))
        await wire.send_sealed(
            sealer, MessageType.MODEL_PARAMETERS, more(MessageType.MODEL_PARAMETERS) + data[:5]
        )
        await wire.send_sealed(
            sealer, MessageType.TRAINING_UPDATE, head(MessageType.TRAINING_UPDATE) + data[5:]
        )

        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    message = str(gone.error)
    assert "TRAINING_UPDATE inside the parts of a MODEL_PARAMETERS" in message


async def test_parts_of_one_type_put_together_by_hand_open() -> None:
    """Hand-made parts of one type (flag 1, then flag 0) come out as one record."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        data = encode_payload(Opaque(b"0123456789"))
        await wire.send_sealed(
            sealer, MessageType.SECURE_SHARE, more(MessageType.SECURE_SHARE) + data[:3]
        )
        await wire.send_sealed(
            sealer, MessageType.SECURE_SHARE, more(MessageType.SECURE_SHARE) + data[3:7]
        )
        await wire.send_sealed(
            sealer, MessageType.SECURE_SHARE, head(MessageType.SECURE_SHARE) + data[7:]
        )

        message = await next_message(inbox, POD_A)

    assert message == Message(MessageType.SECURE_SHARE, Opaque(b"0123456789"), POD_A)


async def test_a_final_part_that_says_more_follows_breaks_the_stream() -> None:
    """A final message flagged "more follows" gives a PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        await wire.send_sealed(
            sealer,
            MessageType.TRAINING_UPDATE,
            more(MessageType.TRAINING_UPDATE) + b"abc",
            final=True,
        )

        gone = await peer_gone(inbox, POD_A)

    assert "final message says more parts follow" in str(gone.error)


@pytest.mark.parametrize("plain", [b"", b"\x00", b"\x02\x08" + encode_payload(Signal())])
async def test_a_part_without_a_valid_flag_breaks_the_stream(plain: bytes) -> None:
    """An empty plaintext, or a flag byte other than 0 or 1, gives a PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        await wire.send_sealed(wire.sealer(POD_A, TASK_A), MessageType.TASK_START, plain)

        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    assert "no valid part flag" in str(gone.error)


async def test_a_record_that_does_not_decode_breaks_the_stream() -> None:
    """A sealed part whose record is not its type's payload gives a PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        await wire.send_sealed(
            sealer,
            MessageType.TRAINING_METRICS,
            head(MessageType.TRAINING_METRICS) + b"not msgpack",
        )

        await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)


# -- strangers -----------------------------------------------------------------------------


async def test_a_message_from_an_unknown_sender_is_acknowledged_and_dropped() -> None:
    """bob.c is no peer of the inbox: its message is acknowledged, queued nowhere."""
    async with channel() as wire, reading(wire) as inbox:
        stranger = wire.stream(STRANGER, TASK_C)
        await stranger.send(MessageType.TRAINING_UPDATE, Opaque(b"hello"))

        await still_works(wire, inbox)
        await eventually(lambda: not wire.relay.pending(task_mailbox(TASK_C, ME)))

    assert wire.relay.stored(task_mailbox(TASK_C, ME)) == 1
    assert STRANGER not in inbox.queues
    assert inbox.queues[POD_A].empty()


async def test_a_peer_writing_in_another_task_is_dropped() -> None:
    """bob.a's message under task C (not its task A) is acknowledged and dropped, and
    bob.a's own stream is unharmed."""
    async with channel() as wire, reading(wire) as inbox:
        await wire.stream(POD_A, TASK_C).send(MessageType.TRAINING_UPDATE, Opaque(b"c"))
        await wire.stream(POD_A, TASK_A).send(MessageType.TRAINING_UPDATE, Opaque(b"a"))

        message = await next_message(inbox, POD_A)
        await eventually(lambda: not wire.relay.pending(task_mailbox(TASK_C, ME)))

    assert message.payload == Opaque(b"a")
    assert inbox.queues[POD_A].empty()


# -- the first answer ----------------------------------------------------------------------


def unsealed_reject(reason: str) -> Envelope:
    """bob.a's rejection of a request it could not verify: not sealed, seq 0."""
    return Envelope(
        type=MessageType.JOB_REJECT,
        task_id=TASK_A,
        sender=POD_A,
        recipient=task_mailbox(TASK_A, ME),
        seq=0,
        sent_at=time.time(),
        meta={"sealed": False},
        body=encode_payload(JobReject(reason)),
    )


async def test_an_unsealed_reject_is_read_when_answers_come_first() -> None:
    """With ``answers_first``, the unsealed JOB_REJECT arrives marked ``sealed=False``."""
    async with channel() as wire, reading(wire, answers_first=True) as inbox:
        await wire.pods.send(unsealed_reject("SIGNATURE_INVALID"))

        message = await next_message(inbox, POD_A)

    assert message == Message(
        MessageType.JOB_REJECT, JobReject("SIGNATURE_INVALID"), POD_A, sealed=False
    )


async def test_nothing_may_follow_an_unsealed_reject() -> None:
    """After the unsealed rejection, a sealed message from that pod gives a PeerGone."""
    async with channel() as wire, reading(wire, answers_first=True) as inbox:
        await wire.pods.send(unsealed_reject("SIGNATURE_INVALID"))
        sealer = wire.sealer(POD_A, TASK_A)
        sealer.seal(b"seq 0 was the rejection")
        await wire.send_sealed(
            sealer, MessageType.JOB_ACCEPT, frame_record(MessageType.JOB_ACCEPT, Signal())[0]
        )

        await next_message(inbox, POD_A)
        gone = await peer_gone(inbox, POD_A)

    assert "after the final message" in str(gone.error)


async def test_an_unsealed_reject_is_refused_unless_answers_come_first() -> None:
    """Without ``answers_first`` an unsealed message does not open: PeerGone."""
    async with channel() as wire, reading(wire) as inbox:
        await wire.pods.send(unsealed_reject("SIGNATURE_INVALID"))

        await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)


async def test_a_sealed_first_answer_is_read_as_sealed() -> None:
    """A JOB_ACCEPT sealed and framed as the pod sends it arrives with ``sealed=True``."""
    async with channel() as wire, reading(wire, answers_first=True) as inbox:
        (plain,) = frame_record(MessageType.JOB_ACCEPT, Signal())
        await wire.send_sealed(wire.sealer(POD_A, TASK_A), MessageType.JOB_ACCEPT, plain)

        message = await next_message(inbox, POD_A)

    assert message == Message(MessageType.JOB_ACCEPT, Signal(), POD_A, sealed=True)


async def test_closing_the_connection_ends_every_peers_stream() -> None:
    """When the connection closes, the inbox's run ends and each queue gets a PeerGone."""
    async with channel() as wire:
        peers = {POD_A: (TASK_A, wire.keys[TASK_A]), POD_B: (TASK_B, wire.keys[TASK_B])}
        inbox = Inbox(wire.me, peers=peers)
        routing = asyncio.create_task(inbox.run())
        await asyncio.sleep(0)
        await wire.me.__aexit__(None, None, None)
        async with asyncio.timeout(WAIT_S):
            await routing

        gone = [await peer_gone(inbox, party) for party in (POD_A, POD_B)]

    assert all("closed" in str(item.error) for item in gone)


async def test_a_message_type_changed_on_the_way_breaks_the_stream() -> None:
    """Sealed as TASK_START but relayed as TASK_CANCEL: the header does not match the
    envelope's type, so the stream breaks instead of cancelling the task."""
    async with channel() as wire, reading(wire) as inbox:
        sealer = wire.sealer(POD_A, TASK_A)
        await wire.send_sealed(sealer, MessageType.TASK_CANCEL, whole(MessageType.TASK_START))

        gone = await peer_gone(inbox, POD_A)
        await still_works(wire, inbox)

    assert "sealed as another type" in str(gone.error)
