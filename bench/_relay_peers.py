"""The two ends of ``bench.relay``'s bulk copy, each run in a child process of its own.

:func:`peer_main` plays one ``role`` (``"sender"`` or ``"receiver"``) of one ``mode``:

* ``tcp``: a raw loopback TCP copy with asyncio streams (the receiver listens);
* ``ws``: a direct one-hop WebSocket copy, one binary message per chunk (the receiver
  serves; no hub, no sealing);
* ``hub``: the pod sends each chunk sealed with :class:`SessionSealer` as a
  ``MODEL_PARAMETERS`` envelope to ``task/<task>/<modeller>`` through the hub, keeping at
  most ``window`` chunks unreceipted; the modeller (who first sent the ``JOB_REQUEST``
  that makes both participants) opens each with :class:`SessionOpener`, acknowledges it,
  and stops after the one marked final.

The hub receiver checks what it opens with a CRC-32 of the whole body (each chunk is
already authenticated by AES-GCM; the checksum proves the stream is whole and in order
without making a cryptographic hash the bottleneck: the hub crash test checks sha256);
the baselines' receivers only count the bytes (``digest=False``). Both ends report to the
parent through ``queue`` as ``(kind, role, figures)``: ``ready`` once connected (the
receiver's ``port`` when it listens), then ``done`` (the sender's ``started``, the
receiver's ``finished`` on :func:`time.monotonic`, comparable across processes, with
``digest`` and ``bytes``) or ``error`` with a traceback. Senders start when ``go`` is set.
Chunks are made on the fly from one random block (:func:`body_chunks`): memory stays
bounded whatever the body's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from podium.core.crypto import SessionKey, SessionOpener, SessionSealer
from podium.core.messages import (
    DEFAULT_MAX_FRAME_BYTES,
    DELIVER_OVERHEAD,
    Ack,
    Deliver,
    Envelope,
    MessageType,
    Receipt,
    Refused,
    Subscribe,
    decode_hub_frame,
    encode_control,
    encode_frame,
    pod_mailbox,
    task_mailbox,
)

CHUNK_BYTES = 4 * 1024 * 1024
#: The largest WebSocket message a benchmark client accepts: a DELIVER of a full frame.
WS_MAX_SIZE = DEFAULT_MAX_FRAME_BYTES + DELIVER_OVERHEAD
#: Rotation step between consecutive chunks of the pattern block (a prime).
_STRIDE = 1_048_573
_READ_BYTES = 1 << 20


class _Queue(Protocol):
    def put(self, item: tuple[str, str, dict[str, Any]]) -> None: ...


class _Event(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Parties:
    """Who talks in the hub mode: the modeller (a user) and the pod ``owner/pod``."""

    modeller: str
    owner: str
    pod: str

    @property
    def pod_party(self) -> str:
        """The pod's party name, ``<owner>.<pod>``."""
        return f"{self.owner}.{self.pod}"


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """Everything one end of a copy needs (picklable, for a spawned child)."""

    mode: str
    total: int
    chunk: int = CHUNK_BYTES
    seed: int = 0
    port: int = 0
    hub_url: str = ""
    api_key: str = ""
    parties: Parties | None = None
    task_id: str = ""
    session_key: bytes = b""
    window: int = 4
    digest: bool = True


# -- the body --------------------------------------------------------------------------


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """The sizes of the chunks of a ``total``-byte body cut every ``chunk`` bytes."""
    if total < 0 or chunk <= 0:
        raise ValueError("total must be >= 0 and chunk > 0")
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


def pattern_block(size: int, seed: int) -> bytes:
    """The random block chunks are cut from (seeded: every process makes the same)."""
    return random.Random(seed).randbytes(size)


def body_chunks(total: int, chunk: int, seed: int) -> Iterator[bytes]:
    """The body, chunk by chunk: chunk ``i`` is the pattern block rotated by
    ``i * _STRIDE`` bytes, cut to size. Only one block and one chunk are in memory."""
    block = memoryview(pattern_block(chunk, seed))
    for index, size in enumerate(chunk_sizes(total, chunk)):
        offset = (index * _STRIDE) % chunk
        yield b"".join((block[offset:], block[:offset]))[:size]


def body_digest(total: int, chunk: int, seed: int) -> str:
    """The sha256 of the whole body, as a receiver should find it."""
    digest = hashlib.sha256()
    for part in body_chunks(total, chunk, seed):
        digest.update(part)
    return digest.hexdigest()


def body_checksum(total: int, chunk: int, seed: int) -> str:
    """The CRC-32 of the whole body (8 hex digits), as the hub receiver should find it."""
    crc = 0
    for part in body_chunks(total, chunk, seed):
        crc = zlib.crc32(part, crc)
    return f"{crc:08x}"


# -- frames ----------------------------------------------------------------------------


def hub_headers(api_key: str) -> dict[str, str]:
    """The headers of a relay connection authenticated by ``api_key``."""
    return {"Authorization": f"Bearer {api_key}"}


def hub_connect(url: str, api_key: str) -> connect:
    """A raw WebSocket client of the relay (no compression; DELIVERs of full frames)."""
    return connect(
        url, additional_headers=hub_headers(api_key), compression=None, max_size=WS_MAX_SIZE
    )


def envelope_frame(
    kind: MessageType,
    task_id: str,
    sender: str,
    recipient: str,
    seq: int,
    body: bytes,
    meta: dict[str, bool] | None = None,
) -> bytes:
    """An encoded envelope frame."""
    envelope = Envelope(
        type=kind,
        task_id=task_id,
        sender=sender,
        recipient=recipient,
        seq=seq,
        sent_at=time.time(),
        meta=meta or {},
        body=body,
    )
    return encode_frame(envelope)


def read_hub_frame(data: bytes | str) -> Deliver | Receipt | Refused:
    """A frame from the hub; a refusal raises."""
    if isinstance(data, str):
        raise RuntimeError("the hub sent a text frame")
    frame = decode_hub_frame(data, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)
    if isinstance(frame, Refused):
        raise RuntimeError(f"refused: {frame.code} {frame.reason} (seq {frame.seq})")
    return frame


async def request_task(ws: ClientConnection, parties: Parties, task_id: str) -> None:
    """Send the modeller's ``JOB_REQUEST`` for ``task_id`` and wait for its receipt,
    making the modeller and the pod participants of the task."""
    frame = envelope_frame(
        MessageType.JOB_REQUEST,
        task_id,
        parties.modeller,
        pod_mailbox(parties.owner, parties.pod),
        0,
        b"job request",
    )
    await ws.send(frame)
    while not isinstance(read_hub_frame(await ws.recv()), Receipt):
        pass


# -- the ends --------------------------------------------------------------------------


class _Digest:
    """Counts the bytes received and, if ``enabled``, checksums them (CRC-32)."""

    def __init__(self, enabled: bool) -> None:
        self._crc: int | None = 0 if enabled else None
        self.count = 0

    def update(self, data: bytes) -> None:
        """Take the next received bytes."""
        self.count += len(data)
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)

    def figures(self) -> dict[str, Any]:
        """The byte count and the checksum in hex ("" when not checking)."""
        digest = "" if self._crc is None else f"{self._crc:08x}"
        return {"bytes": self.count, "digest": digest}


async def _wait(go: _Event) -> float:
    await asyncio.to_thread(go.wait)
    return time.monotonic()


async def _tcp_receiver(spec: PeerSpec, queue: _Queue) -> dict[str, Any]:
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest, left = _Digest(spec.digest), spec.total
        while left:
            data = await reader.read(min(_READ_BYTES, left))
            if not data:
                break
            digest.update(data)
            left -= len(data)
        writer.close()
        done.set_result(digest.figures())

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        queue.put(("ready", "receiver", {"port": server.sockets[0].getsockname()[1]}))
        figures = await done
        return {"finished": time.monotonic(), **figures}


async def _tcp_sender(spec: PeerSpec, queue: _Queue, go: _Event) -> dict[str, Any]:
    _, writer = await asyncio.open_connection("127.0.0.1", spec.port)
    queue.put(("ready", "sender", {}))
    started = await _wait(go)
    for part in body_chunks(spec.total, spec.chunk, spec.seed):
        writer.write(part)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    return {"started": started}


async def _ws_receiver(spec: PeerSpec, queue: _Queue) -> dict[str, Any]:
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle(ws: ServerConnection) -> None:
        digest, left = _Digest(spec.digest), spec.total
        while left:
            data = await ws.recv(decode=False)
            digest.update(data)
            left -= len(data)
        done.set_result(digest.figures())

    async with serve(handle, "127.0.0.1", 0, compression=None, max_size=WS_MAX_SIZE) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        queue.put(("ready", "receiver", {"port": port}))
        figures = await done
        return {"finished": time.monotonic(), **figures}


async def _ws_sender(spec: PeerSpec, queue: _Queue, go: _Event) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{spec.port}"
    async with connect(url, compression=None, max_size=WS_MAX_SIZE) as ws:
        queue.put(("ready", "sender", {}))
        started = await _wait(go)
        for part in body_chunks(spec.total, spec.chunk, spec.seed):
            await ws.send(part)
        await ws.wait_closed()
    return {"started": started}


async def _hub_receiver(spec: PeerSpec, queue: _Queue) -> dict[str, Any]:
    assert spec.parties is not None
    parties = spec.parties
    opener = SessionOpener(SessionKey(spec.session_key), spec.task_id, parties.pod_party)
    digest = _Digest(enabled=True)
    async with hub_connect(spec.hub_url, spec.api_key) as ws:
        await request_task(ws, parties, spec.task_id)
        mailbox = task_mailbox(spec.task_id, parties.modeller)
        await ws.send(encode_control(Subscribe((mailbox,))))
        queue.put(("ready", "receiver", {}))
        while not opener.finished:
            frame = read_hub_frame(await ws.recv(decode=False))
            if not isinstance(frame, Deliver):
                continue
            envelope = frame.envelope
            if envelope.seq < opener.next_seq:  # a duplicate delivery
                await ws.send(encode_control(Ack((frame.id,))))
                continue
            final = envelope.meta.get("final") is True
            plain = opener.open(envelope.seq, envelope.body, final=final)
            digest.update(plain)
            await ws.send(encode_control(Ack((frame.id,))))
        finished = time.monotonic()
    return {"finished": finished, **digest.figures()}


async def _hub_sender(spec: PeerSpec, queue: _Queue, go: _Event) -> dict[str, Any]:
    assert spec.parties is not None
    parties = spec.parties
    sender = parties.pod_party
    sealer = SessionSealer(SessionKey(spec.session_key), spec.task_id, sender)
    recipient = task_mailbox(spec.task_id, parties.modeller)
    room = asyncio.Semaphore(spec.window)
    count = len(chunk_sizes(spec.total, spec.chunk))

    async def receipts(ws: ClientConnection) -> None:
        try:
            for _ in range(count):
                while not isinstance(read_hub_frame(await ws.recv(decode=False)), Receipt):
                    pass
                room.release()
        except BaseException:
            room.release()  # wake the sender, which then raises this
            raise

    async with hub_connect(spec.hub_url, spec.api_key) as ws:
        queue.put(("ready", "sender", {}))
        started = await _wait(go)
        reader = asyncio.create_task(receipts(ws))
        for index, part in enumerate(body_chunks(spec.total, spec.chunk, spec.seed)):
            await room.acquire()
            if reader.done():  # failed early: raise its error
                await reader
            final = index == count - 1
            seq, sealed = sealer.seal(part, final=final)
            kind = MessageType.MODEL_PARAMETERS
            frame = envelope_frame(
                kind, spec.task_id, sender, recipient, seq, sealed, {"final": final}
            )
            await ws.send(frame)
        await reader
    return {"started": started}


async def _play(role: str, spec: PeerSpec, queue: _Queue, go: _Event) -> dict[str, Any]:
    if role == "receiver":
        receivers = {"tcp": _tcp_receiver, "ws": _ws_receiver, "hub": _hub_receiver}
        return await receivers[spec.mode](spec, queue)
    senders = {"tcp": _tcp_sender, "ws": _ws_sender, "hub": _hub_sender}
    return await senders[spec.mode](spec, queue, go)


def peer_main(role: str, spec: PeerSpec, queue: _Queue, go: _Event) -> None:
    """Play ``role`` of ``spec.mode`` and report to ``queue`` (a child process's target)."""
    try:
        figures = asyncio.run(_play(role, spec, queue, go))
    except BaseException:  # noqa: BLE001 - a child's boundary: report, the parent raises
        with contextlib.suppress(Exception):
            queue.put(("error", role, {"traceback": traceback.format_exc()}))
        return
    queue.put(("done", role, figures))
