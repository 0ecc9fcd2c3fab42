"""Sealed message streams between a modeller and each pod of a task.

Every message after the job request travels on the task's mailboxes, sealed with the
task's per-pod session key (:mod:`podium.core.crypto.session`): each party numbers what it
sends from 0 and opens what it receives strictly in order, so a replayed, reordered,
dropped or forged message is refused.

**Framing.** The plaintext of every sealed message is a two-byte header, a flag ("more
follows" or "whole") and the message type's code, then a part of a payload record
(:func:`~podium.core.messages.encode_payload`). A record larger than :data:`PART_BYTES`
goes as several messages of the same type, each but the last flagged "more follows". The
header is inside the sealing: the parts of a record cannot be cut or spliced, and the
relay cannot turn one message type into another (the envelope's type, which the hub
reads, must match the sealed one). A pod's very first message, ``JOB_ACCEPT`` or
``JOB_REJECT``, is framed the same way, except the unsealed rejection of a request the
pod could not verify (it has no key to seal with): that carries only the reason.

:class:`Inbox` reads one connection and hands each peer's opened messages, in order, to a
queue per peer; :class:`PeerStream` seals what this party sends to one peer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from podium.core.crypto import (
    DecryptionError,
    SequenceError,
    SessionKey,
    SessionOpener,
    SessionSealer,
)
from podium.core.errors import ProtocolError
from podium.core.messages import (
    Envelope,
    JobReject,
    MessageType,
    Payload,
    PayloadError,
    decode_payload,
    encode_payload,
)
from podium.transport import Connection, RelayClosedError

__all__ = [
    "PART_BYTES",
    "Inbox",
    "Message",
    "PeerGone",
    "PeerStream",
    "frame_record",
    "part_header",
]

_log = logging.getLogger("podium.protocols")

#: Bytes of a record per sealed message (the hub's frame limit is well above).
PART_BYTES = 4 * 1024 * 1024
#: The largest record a peer may send (its parts are put together in memory).
MAX_RECORD_BYTES = 2 * 1024 * 1024 * 1024
_WHOLE = 0
_MORE = 1
_FINAL = "final"
#: Each message type's code in the sealed header: the order of MessageType, append only.
_CODES = {kind: code for code, kind in enumerate(MessageType)}
_KINDS = dict(enumerate(MessageType))
_HEADER = 2


@dataclass(frozen=True, slots=True)
class Message:
    """One opened message: its type, record and sender (a party name); ``sealed`` is
    False only for the unsealed rejection of a request that could not be verified."""

    type: MessageType
    payload: Payload
    sender: str
    sealed: bool = True


@dataclass(frozen=True, slots=True)
class PeerGone:
    """Put in a peer's queue when its stream broke: ``error`` says how."""

    error: ProtocolError


def part_header(kind: MessageType, *, more: bool) -> bytes:
    """The sealed header of a part: its flag and its message type's code."""
    return bytes([_MORE if more else _WHOLE, _CODES[kind]])


def frame_record(kind: MessageType, record: Payload) -> list[bytes]:
    """The plaintexts of ``record``'s parts (a ``kind`` message), each with its header."""
    data = encode_payload(record)
    if not data:
        return [part_header(kind, more=False)]
    parts = []
    for start in range(0, len(data), PART_BYTES):
        more = start + PART_BYTES < len(data)
        parts.append(part_header(kind, more=more) + data[start : start + PART_BYTES])
    return parts


class PeerStream:
    """What this party sends to one peer of one task, sealed in order.

    Sends are pipelined: :meth:`send` returns once its frames are written, keeping up to
    :data:`WINDOW` of them in flight until the hub has stored them, so a run of small
    messages does not wait a round trip each. A send that fails raises from the next
    :meth:`send` or :meth:`flush`; a ``final`` send, and :meth:`flush`, return only once
    everything is stored.
    """

    #: Messages sent but not yet stored by the hub, at most.
    WINDOW = 16

    def __init__(
        self,
        connection: Connection,
        sealer: SessionSealer,
        *,
        recipient: str,
    ) -> None:
        self._connection = connection
        self._sealer = sealer
        self._recipient = recipient
        self._lock = asyncio.Lock()
        self._closed = False
        self._pending: deque[asyncio.Future[None]] = deque()

    @property
    def closed(self) -> bool:
        """Whether the final message was sent."""
        return self._closed

    async def send(self, kind: MessageType, record: Payload, *, final: bool = False) -> None:
        """Seal and send ``record`` as a ``kind`` message (in parts if large); return once
        the hub stored every part. ``final`` ends this party's stream."""
        async with self._lock:  # the parts of one record stay together, in order
            self._closed = self._closed or final
            parts = frame_record(kind, record)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                seq, body = self._sealer.seal(part, final=final and last)
                envelope = Envelope(
                    type=kind,
                    task_id=self._sealer.task_id,
                    sender=self._sealer.sender,
                    recipient=self._recipient,
                    seq=seq,
                    sent_at=time.time(),
                    meta={_FINAL: final and last},
                    body=body,
                )
                self._pending.append(asyncio.ensure_future(self._connection.send(envelope)))
                await asyncio.sleep(0)  # it writes its frame now, before the next one's
                await self._settle(self.WINDOW)
            if final:
                await self._settle(0)

    async def flush(self) -> None:
        """Return once the hub stored everything sent so far.

        Raises:
            RelayRefusedError, RelayClosedError: A send failed.
        """
        async with self._lock:
            await self._settle(0)

    async def _settle(self, keep: int) -> None:
        """Collect finished sends (raising a failure), waiting while more than ``keep``."""
        while self._pending and (len(self._pending) > keep or self._pending[0].done()):
            await self._pending.popleft()

    def cancel(self) -> None:
        """Give up on sends still in flight (the task is over)."""
        while self._pending:
            self._pending.popleft().cancel()


class _Assembler:
    """Opens one peer's messages in order and puts records together from their parts."""

    def __init__(self, opener: SessionOpener, *, unsealed_reject: bool) -> None:
        self.opener = opener
        self._unsealed_reject = unsealed_reject
        self._kind: MessageType | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, envelope: Envelope) -> Message | None:
        sender = envelope.sender
        if (
            self._unsealed_reject
            and envelope.type is MessageType.JOB_REJECT
            and envelope.meta.get("sealed") is False
            and envelope.seq == 0
            and self.opener.next_seq == 0
        ):
            record = decode_payload(MessageType.JOB_REJECT, envelope.body)
            assert isinstance(record, JobReject)
            self.opener = _finished(self.opener)
            return Message(MessageType.JOB_REJECT, record, sender, sealed=False)
        final = envelope.meta.get(_FINAL) is True
        plain = self.opener.open(envelope.seq, envelope.body, final=final)
        if len(plain) < _HEADER or plain[0] not in (_WHOLE, _MORE):
            raise ProtocolError(f"a message from {sender} has no valid part flag")
        if _KINDS.get(plain[1]) is not envelope.type:
            raise ProtocolError(
                f"a message from {sender} was sealed as another type than its envelope's "
                f"{envelope.type.value} (changed on the way)"
            )
        if self._kind is not None and envelope.type is not self._kind:
            raise ProtocolError(
                f"{sender} sent a {envelope.type.value} inside the parts of a {self._kind.value}"
            )
        self._kind = envelope.type
        self._parts.append(plain[_HEADER:])
        self._size += len(plain) - _HEADER
        if self._size > MAX_RECORD_BYTES:
            raise ProtocolError(f"{sender} sent a record larger than {MAX_RECORD_BYTES} bytes")
        if plain[0] == _MORE:
            if final:
                raise ProtocolError(f"{sender}'s final message says more parts follow")
            return None
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._kind, self._parts, self._size = None, [], 0
        return Message(envelope.type, decode_payload(envelope.type, data), sender)


def _finished(opener: SessionOpener) -> SessionOpener:
    # after an unsealed rejection nothing more may come from that peer
    opener._finished = True
    return opener


class Inbox:
    """Reads ``connection`` and queues each known peer's messages, opened and in order.

    ``peers`` maps a peer's party name to its task id and the session key it seals with
    (a modeller's task has one wire task id per pod, so a pod's stream and mailbox are
    its own: no pod can even address another's). Messages from
    anyone else are acknowledged and dropped (logged). A message that does not open, or
    breaks the framing, ends that peer's stream: its queue gets a :class:`PeerGone`.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        peers: Mapping[str, tuple[str, SessionKey]],
        answers_first: bool = False,
    ) -> None:
        self._connection = connection
        self._tasks = {party: task_id for party, (task_id, _) in peers.items()}
        self._assemblers = {
            party: _Assembler(SessionOpener(key, task_id, party), unsealed_reject=answers_first)
            for party, (task_id, key) in peers.items()
        }
        self.queues: dict[str, asyncio.Queue[Message | PeerGone]] = {
            party: asyncio.Queue() for party in peers
        }

    async def run(self) -> None:
        """Route messages until the connection closes (then every queue gets a
        :class:`PeerGone`)."""
        try:
            async for envelope in self._connection:
                await self._route(envelope)
        except RelayClosedError as error:
            self._close_all(ProtocolError(f"the relay closed the connection: {error}"))
            raise
        self._close_all(ProtocolError("the connection to the hub was closed"))

    def _close_all(self, error: ProtocolError) -> None:
        for party, queue in self.queues.items():
            if party in self._assemblers:
                queue.put_nowait(PeerGone(error))

    async def _route(self, envelope: Envelope) -> None:
        assembler = self._assemblers.get(envelope.sender)
        if assembler is None or envelope.task_id != self._tasks.get(envelope.sender):
            _log.warning(
                "task %s: dropping a %s from %s, not a peer of this task",
                envelope.task_id,
                envelope.type.value,
                envelope.sender,
            )
            await self._connection.ack(envelope)
            return
        queue = self.queues[envelope.sender]
        try:
            message = assembler.feed(envelope)
        except (DecryptionError, SequenceError, PayloadError, ProtocolError) as error:
            _log.warning(
                "task %s: the stream from %s broke: %s", envelope.task_id, envelope.sender, error
            )
            del self._assemblers[envelope.sender]
            queue.put_nowait(PeerGone(ProtocolError(f"{envelope.sender}: {error}")))
            await self._connection.ack(envelope)
            return
        await self._connection.ack(envelope)
        if message is not None:
            queue.put_nowait(message)
