"""Large bodies over the relay: sealed chunks with a bounded window, in both directions.

A body of any size (a model's weights, a result set) travels as a stream of envelopes of
one ``kind`` from one sender to one mailbox, each carrying one chunk sealed by the task's
:class:`~podium.core.crypto.SessionSealer`. The last one has ``meta["final"] = True``, and
the final flag is bound into the sealing, so a receiver notices a truncated stream.

Memory stays bounded whatever the size:

- :func:`send_body` keeps at most ``window`` chunks unreceipted (each held until the hub
  stored it, for a resend after a reconnect), and reads the next chunk from ``chunks``
  only when one of them is receipted: back-pressure reaches the producer.
- :func:`receive_body` opens one chunk at a time, hands it to ``write`` and acknowledges
  it only after ``write`` returned, so a chunk whose handling a crash interrupted is
  delivered again. The connection drops duplicate deliveries (after a hub restart, say).

A hub restart in the middle costs nothing but time: the sender resends what the hub had
not receipted, the hub delivers again what the receiver had not acknowledged, and the
receiver's connection drops what it already handed over.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from podium.core.crypto import SessionOpener, SessionSealer
from podium.core.messages import Envelope, MessageType
from podium.transport._base import Connection
from podium.transport._errors import TransportError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_WINDOW",
    "BodyError",
    "BodySummary",
    "file_chunks",
    "receive_body",
    "send_body",
]

#: Plaintext bytes per chunk: half the hub's default frame limit, well clear of it.
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
#: Chunks in flight (sent, not yet stored by the hub) at once.
DEFAULT_WINDOW = 8
_FINAL = "final"

Chunks = Iterable[bytes | bytearray | memoryview] | AsyncIterable[bytes | bytearray | memoryview]
Write = Callable[[bytes], Awaitable[object] | object]


class BodyError(TransportError):
    """A body stream broke its rules: a message of another stream or kind arrived."""


@dataclass(frozen=True, slots=True)
class BodySummary:
    """What one body stream moved: plaintext bytes, chunks and the plaintext's sha256."""

    size: int
    chunks: int
    sha256: str


def file_chunks(stream: BinaryIO, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterable[bytes]:
    """Read ``stream`` to its end in pieces of ``chunk_bytes`` (for :func:`send_body`)."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    while piece := stream.read(chunk_bytes):
        yield piece


async def _pieces(chunks: Chunks) -> AsyncIterator[bytes | bytearray | memoryview]:
    if isinstance(chunks, AsyncIterable):
        async for piece in chunks:
            yield piece
    else:
        for piece in chunks:
            yield piece


async def _recut(chunks: Chunks, chunk_bytes: int) -> AsyncIterator[bytes]:
    """The bytes of ``chunks`` in pieces of exactly ``chunk_bytes`` (the last shorter),
    and one empty piece for an empty body."""
    buffer = bytearray()
    sent_any = False
    async for piece in _pieces(chunks):
        buffer += piece
        while len(buffer) >= chunk_bytes:
            yield bytes(buffer[:chunk_bytes])
            del buffer[:chunk_bytes]
            sent_any = True
    if buffer or not sent_any:
        yield bytes(buffer)


async def _with_last(pieces: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bool]]:
    """Each piece with whether it is the last (one piece of look-ahead)."""
    previous: bytes | None = None
    async for piece in pieces:
        if previous is not None:
            yield previous, False
        previous = piece
    if previous is not None:
        yield previous, True


async def send_body(
    connection: Connection,
    sealer: SessionSealer,
    *,
    recipient: str,
    chunks: Chunks,
    kind: MessageType = MessageType.MODEL_PARAMETERS,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    window: int = DEFAULT_WINDOW,
    progress: Callable[[int], object] | None = None,
) -> BodySummary:
    """Send the bytes of ``chunks`` to ``recipient`` as one sealed stream; return once the
    hub stored every chunk.

    ``chunks`` may be any (async) iterable of bytes; they are cut again into pieces of
    ``chunk_bytes``. The sealer's next sequence numbers are used, and its stream ends with
    this body (the final chunk). ``progress`` is called with the plaintext bytes of each
    chunk the hub stored.

    Raises:
        RelayRefusedError: The hub refused a chunk (the rest are not sent).
        RelayClosedError: The connection closed before the hub stored every chunk.
    """
    if chunk_bytes < 1 or window < 1:
        raise ValueError("chunk_bytes and window must be positive")
    digest = hashlib.sha256()
    size = count = 0
    in_flight: set[asyncio.Task[int]] = set()

    async def one(envelope: Envelope, plain_size: int) -> int:
        await connection.send(envelope)
        return plain_size

    async def settle(return_when: str) -> None:
        done, _ = await asyncio.wait(in_flight, return_when=return_when)
        for task in done:
            in_flight.discard(task)
            stored = task.result()  # a refusal or a close raises here
            if progress is not None:
                progress(stored)

    try:
        items = _with_last(_recut(chunks, chunk_bytes))
        while True:
            if len(in_flight) >= window:  # before taking more from the source
                await settle(asyncio.FIRST_COMPLETED)
            try:
                piece, last = await anext(items)
            except StopAsyncIteration:
                break
            seq, sealed = sealer.seal(piece, final=last)
            digest.update(piece)
            size += len(piece)
            count += 1
            envelope = Envelope(
                type=kind,
                task_id=sealer.task_id,
                sender=sealer.sender,
                recipient=recipient,
                seq=seq,
                sent_at=time.time(),
                meta={_FINAL: last},
                body=sealed,
            )
            # started now, in order: each send writes its frame before the next one's
            in_flight.add(asyncio.ensure_future(one(envelope, len(piece))))
            await asyncio.sleep(0)
        while in_flight:
            await settle(asyncio.FIRST_COMPLETED)
    finally:
        for task in in_flight:
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
    return BodySummary(size, count, digest.hexdigest())


async def receive_body(
    connection: Connection,
    opener: SessionOpener,
    write: Write,
    *,
    kind: MessageType = MessageType.MODEL_PARAMETERS,
    progress: Callable[[int], object] | None = None,
) -> BodySummary:
    """Receive one sealed stream from ``opener.sender`` on ``connection``, handing each
    opened chunk to ``write`` (a function or coroutine function) and then acknowledging
    it; return after the final chunk.

    The connection should carry only this stream while it runs: any other message raises
    :class:`BodyError` (unacknowledged, so the hub keeps it).

    Raises:
        BodyError: A message of another task, sender or kind arrived.
        DecryptionError: A chunk does not open (changed on the way, or another key).
        SequenceError: A chunk is missing or out of order.
        RelayClosedError: The connection closed before the final chunk.
    """
    digest = hashlib.sha256()
    size = count = 0
    while not opener.finished:
        envelope = await connection.receive()
        if (
            envelope.task_id != opener.task_id
            or envelope.sender != opener.sender
            or envelope.type is not kind
        ):
            raise BodyError(
                f"expected {kind.value} chunks of task {opener.task_id} from {opener.sender}, "
                f"got {envelope.type.value} of task {envelope.task_id} from {envelope.sender}"
            )
        final = envelope.meta.get(_FINAL) is True
        plain = opener.open(envelope.seq, envelope.body, final=final)
        outcome = write(plain)
        if isinstance(outcome, Awaitable):
            await outcome
        await connection.ack(envelope)
        digest.update(plain)
        size += len(plain)
        count += 1
        if progress is not None:
            progress(len(plain))
    return BodySummary(size, count, digest.hexdigest())
