"""Large bodies as sealed chunk streams (send_body / receive_body), on every relay harness."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Iterator

import pytest

from podium.core.crypto import DecryptionError, SessionKey, SessionOpener, SessionSealer
from podium.core.messages import MessageType
from podium.transport import BodyError, file_chunks, receive_body, send_body
from tests.transport.harness import WAIT_S, RelayHarness, eventually, fast_options
from tests.transport.test_transport_contract import (
    ALICE_TASK_INBOX,
    BOB_TASK_INBOX,
    TASK,
    message,
    needs_lost_receipts,
    open_task,
)

POD = "bob.census"
CHUNK = 64 * 1024


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` (not the chunk size: send_body cuts again)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def copy_body(
    harness: RelayHarness, body: bytes, *, piece: int = 10_000, drop_at: int | None = None
) -> tuple[bytes, int, int]:
    """Send ``body`` pod -> modeller; what arrived, chunks sent and received. With
    ``drop_at``, both parties' connections are cut once that many chunks arrived."""
    key = SessionKey.generate()
    received = bytearray()
    arrived = 0

    def write(plain: bytes) -> None:
        nonlocal arrived
        received.extend(plain)
        arrived += 1
        if arrived == drop_at:
            harness.drop("alice")
            harness.drop("bob")

    async with asyncio.timeout(WAIT_S * 4):
        async with (
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
        ):
            await open_task(me)
            receiving = asyncio.create_task(receive_body(me, SessionOpener(key, TASK, POD), write))
            sent = await send_body(
                pod,
                SessionSealer(key, TASK, POD),
                recipient=ALICE_TASK_INBOX,
                chunks=pieces(body, piece),
                chunk_bytes=CHUNK,
            )
            got = await receiving
            await eventually(lambda: harness.pending(ALICE_TASK_INBOX) == 0)
    assert sent.sha256 == got.sha256 == hashlib.sha256(body).hexdigest()
    assert sent.size == got.size == len(body)
    return bytes(received), sent.chunks, got.chunks


async def test_body_arrives_whole_in_chunks(harness: RelayHarness) -> None:
    """A body cut into odd pieces travels as full chunks and arrives byte for byte."""
    body = os.urandom(5 * CHUNK + 123)
    received, sent, got = await copy_body(harness, body)
    assert received == body
    assert sent == got == 6
    assert harness.stored(ALICE_TASK_INBOX) == 6


async def test_empty_body_is_one_final_chunk(harness: RelayHarness) -> None:
    received, sent, got = await copy_body(harness, b"")
    assert (received, sent, got) == (b"", 1, 1)


async def test_body_survives_dropped_connections(harness: RelayHarness) -> None:
    """Cutting both ends mid-stream costs nothing: no chunk lost or handed over twice."""
    body = os.urandom(12 * CHUNK)
    received, sent, got = await copy_body(harness, body, drop_at=4)
    assert received == body
    assert sent == got == 12


async def test_async_source_and_progress(harness: RelayHarness) -> None:
    """An async iterable of pieces works, and progress counts stored plaintext bytes."""
    body = os.urandom(3 * CHUNK + 7)
    key = SessionKey.generate()
    stored: list[int] = []
    opened: list[int] = []

    async def source() -> object:
        for part in pieces(body, 50_000):
            await asyncio.sleep(0)
            yield part

    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
        ):
            await open_task(me)
            receiving = asyncio.create_task(
                receive_body(
                    me, SessionOpener(key, TASK, POD), lambda _: None, progress=opened.append
                )
            )
            await send_body(
                pod,
                SessionSealer(key, TASK, POD),
                recipient=ALICE_TASK_INBOX,
                chunks=source(),  # type: ignore[arg-type]
                chunk_bytes=CHUNK,
                progress=stored.append,
            )
            await receiving
    assert sum(stored) == sum(opened) == len(body)
    assert sorted(stored) == sorted(opened) == sorted([CHUNK, CHUNK, CHUNK, 7])


async def test_sender_reads_no_further_than_the_window(harness: RelayHarness) -> None:
    """Back-pressure: while the hub stores nothing, the sender takes at most ``window``
    chunks (plus one of look-ahead) from its source."""
    needs_lost_receipts(harness)
    key = SessionKey.generate()
    taken = 0

    def source() -> Iterator[bytes]:
        nonlocal taken
        for _ in range(100):
            taken += 1
            yield b"x" * CHUNK

    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
        ):
            await open_task(me)
            harness.lose_receipts(True)
            sending = asyncio.create_task(
                send_body(
                    pod,
                    SessionSealer(key, TASK, POD),
                    recipient=ALICE_TASK_INBOX,
                    chunks=source(),
                    chunk_bytes=CHUNK,
                    window=3,
                )
            )
            await eventually(lambda: harness.stored(ALICE_TASK_INBOX) == 3)
            await asyncio.sleep(0.05)
            assert taken <= 3 + 1
            assert not sending.done()
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            harness.lose_receipts(False)


async def test_a_foreign_message_stops_the_receiver(harness: RelayHarness) -> None:
    """A message of another kind in the stream raises BodyError and stays unacknowledged."""
    key = SessionKey.generate()
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
        ):
            await open_task(me)
            await pod.send(message(0, to=ALICE_TASK_INBOX, sender=POD))
            with pytest.raises(BodyError, match="expected MODEL_PARAMETERS chunks"):
                await receive_body(me, SessionOpener(key, TASK, POD), lambda _: None)
            assert harness.pending(ALICE_TASK_INBOX) == 1


async def test_a_chunk_sealed_with_another_key_does_not_open(harness: RelayHarness) -> None:
    async with asyncio.timeout(WAIT_S):
        async with (
            harness.transport("alice").connect([ALICE_TASK_INBOX], options=fast_options()) as me,
            harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod,
        ):
            await open_task(me)
            await send_body(
                pod,
                SessionSealer(SessionKey.generate(), TASK, POD),
                recipient=ALICE_TASK_INBOX,
                chunks=[b"secret"],
                kind=MessageType.EVALUATION_RESULTS,
            )
            opener = SessionOpener(SessionKey.generate(), TASK, POD)
            with pytest.raises(DecryptionError):
                await receive_body(me, opener, lambda _: None, kind=MessageType.EVALUATION_RESULTS)


def test_file_chunks_reads_to_the_end() -> None:
    data = os.urandom(1000)
    assert list(file_chunks(io.BytesIO(data), 300)) == [
        data[:300],
        data[300:600],
        data[600:900],
        data[900:],
    ]
    with pytest.raises(ValueError, match="positive"):
        list(file_chunks(io.BytesIO(data), 0))


async def test_send_body_checks_its_arguments(harness: RelayHarness) -> None:
    async with harness.transport("bob").connect([BOB_TASK_INBOX], options=fast_options()) as pod:
        sealer = SessionSealer(SessionKey.generate(), TASK, POD)
        with pytest.raises(ValueError, match="positive"):
            await send_body(pod, sealer, recipient=ALICE_TASK_INBOX, chunks=[b""], window=0)
