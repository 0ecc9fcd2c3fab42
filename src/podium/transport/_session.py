"""The reconnecting relay connection, over any :class:`~podium.transport._link.Link`.

One background task owns the link: it dials (with backoff), subscribes, resends every
message not yet receipted (in the order they were first sent), then reads frames until the
link drops, and starts again. The rules it keeps:

- **Sending.** Each outgoing message waits in an ordered outbox, keyed by the hub's
  receipt key ``(task_id, recipient, seq)``, until a ``RECEIPT`` (done) or ``REFUSED``
  (:class:`RelayRefusedError`) answers it. The hub's append is idempotent, so resending a
  message whose receipt was lost stores nothing new. Sending the same key twice shares one
  wait. A cancelled :meth:`RelaySession.send` may still be delivered.
- **Receiving.** A ``DELIVER`` is checked against the :class:`Deduplicator`; a new message
  goes to the inbox and is *held* (by its delivery id on the current link) until the
  application acknowledges it. A redelivery of a held message only refreshes its delivery
  id; a redelivery of an acknowledged or older one is acknowledged again at once and dropped.
  Delivery ids are only ever sent on the link that issued them.
- **Closing.** A fatal close code (:data:`FATAL_CLOSE_CODES`), or a ``REFUSED`` answer to
  the subscription (naming one of our mailboxes, as the hub answers a mailbox that is not
  ours), ends the connection: pending sends raise :class:`RelayClosedError`, receives
  raise it once the inbox is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from podium.core.messages import (
    Ack,
    CloseCode,
    Deliver,
    Envelope,
    FrameError,
    Receipt,
    Refused,
    Subscribe,
    decode_hub_frame,
    encode_control,
    encode_frame,
)
from podium.transport._base import Connection, ConnectionOptions
from podium.transport._dedup import Deduplicator
from podium.transport._errors import RelayClosedError, RelayRefusedError
from podium.transport._link import Dialer, Link, LinkClosed

__all__ = ["RelaySession"]

logger = logging.getLogger("podium.transport")

#: ``(task_id, recipient, seq)``: how the hub names a message in RECEIPT and REFUSED.
_ReceiptKey = tuple[str, str, int]
#: ``(recipient, task_id, sender, seq)``: the hub's append identity of a received message.
_MessageKey = tuple[str, str, str, int]


def _message_key(envelope: Envelope) -> _MessageKey:
    return (envelope.recipient, envelope.task_id, envelope.sender, envelope.seq)


@dataclass(slots=True)
class _Outgoing:
    frame: bytes
    done: asyncio.Future[None]
    sent_on: int = 0  # the link generation it was last written on (0: never)


class RelaySession(Connection):
    """A :class:`Connection` that reconnects, resends and drops duplicates."""

    def __init__(
        self,
        dial: Dialer,
        mailboxes: Sequence[str],
        options: ConnectionOptions,
        *,
        renews_credential: bool = False,
    ) -> None:
        self._renews_credential = renews_credential
        self._mailboxes = frozenset(mailboxes)
        self._subscribe = encode_control(Subscribe(tuple(mailboxes)))  # validates, no I/O
        self._dial = dial
        self._options = options
        self._dedup = Deduplicator(options.dedup_capacity)
        self._outbox: dict[_ReceiptKey, _Outgoing] = {}
        self._held: dict[_MessageKey, tuple[int, int]] = {}  # -> (generation, delivery id)
        self._inbox: asyncio.Queue[Envelope] = asyncio.Queue(options.inbox_size)
        self._link: Link | None = None  # set while subscribed and caught up
        self._generation = 0
        self._closed: RelayClosedError | None = None
        self._closed_event = asyncio.Event()
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("a relay connection can be entered only once")
        self._runner = asyncio.create_task(self._run(), name="podium-relay-connection")
        ready = asyncio.create_task(self._ready.wait())
        closed = asyncio.create_task(self._closed_event.wait())
        try:
            await asyncio.wait({ready, closed}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self.aclose()
            raise
        finally:
            ready.cancel()
            closed.cancel()
        if self._closed is not None:
            await self.aclose()
            raise self._closed
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        self._fail(RelayClosedError(None))
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    def _fail(self, error: RelayClosedError) -> None:
        if self._closed is not None:
            return
        self._closed = error
        self._closed_event.set()
        self._link = None
        for outgoing in self._outbox.values():
            if not outgoing.done.done():
                outgoing.done.set_exception(error)
                outgoing.done.exception()  # retrieved: no "never retrieved" warning
        self._outbox.clear()

    # -- application side --------------------------------------------------------------

    async def send(self, envelope: Envelope) -> None:
        if self._closed is not None:
            raise self._closed
        key = (envelope.task_id, envelope.recipient, envelope.seq)
        outgoing = self._outbox.get(key)
        if outgoing is None:
            frame = encode_frame(envelope)
            if len(frame) > self._options.max_frame_bytes:
                raise FrameError(
                    CloseCode.FRAME_TOO_LARGE,
                    f"{len(frame)} > {self._options.max_frame_bytes} bytes: send it in chunks",
                )
            outgoing = _Outgoing(frame, asyncio.get_running_loop().create_future())
            self._outbox[key] = outgoing
            link = self._link
            if link is not None:
                outgoing.sent_on = self._generation
                await self._write(link, frame)
        await asyncio.shield(outgoing.done)

    async def receive(self) -> Envelope:
        envelope = await self._next()
        if self._options.auto_ack:
            await self.ack(envelope)
        return envelope

    async def _next(self) -> Envelope:
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        if self._closed is not None:
            raise self._closed
        get = asyncio.create_task(self._inbox.get())
        closed = asyncio.create_task(self._closed_event.wait())
        try:
            await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        raise self._closed or RelayClosedError(None)  # closed: the only other way out

    async def ack(self, envelope: Envelope) -> None:
        held = self._held.pop(_message_key(envelope), None)
        link = self._link
        if held is None or link is None or held[0] != self._generation:
            return  # already acknowledged, or the hub will redeliver it and we ack then
        await self._write(link, encode_control(Ack((held[1],))))

    # -- link side -----------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                error, was_ready = await self._attempt()
            except Exception:  # a bug must not leave the application waiting for ever
                logger.exception("relay connection failed")
                self._fail(RelayClosedError(None, "the relay client failed: see the log"))
                return
            if self._closed is not None:
                return
            if error.fatal or (
                error.code == CloseCode.CREDENTIAL_EXPIRED and not self._renews_credential
            ):
                logger.warning("relay connection refused for good: %s", error)
                self._fail(RelayClosedError(error.code, error.reason))
                return
            if was_ready:
                attempt = 0
            delay = self._options.backoff.delay(attempt)
            attempt += 1
            logger.info("relay link lost (%s); reconnecting in %.3fs", error, delay)
            await asyncio.sleep(delay)

    async def _attempt(self) -> tuple[LinkClosed, bool]:
        """Dial and serve one link until it drops: why it ended, and whether it got as
        far as subscribing and catching up."""
        try:
            link = await self._dial()
        except LinkClosed as error:
            return error, False
        self._generation += 1
        generation = self._generation
        reader = asyncio.create_task(self._read(link, generation))
        was_ready = False
        try:
            await link.send(self._subscribe)
            await self._resend(link, generation)
            self._link, was_ready = link, True
            self._ready.set()
            await reader
        except LinkClosed as error:
            return error, was_ready
        finally:
            self._link = None
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, LinkClosed):
                await reader
            await link.close()
        raise AssertionError("unreachable: the reader only ends by raising")  # pragma: no cover

    async def _resend(self, link: Link, generation: int) -> None:
        while True:
            stale = [item for item in self._outbox.values() if item.sent_on != generation]
            if not stale:
                return
            for item in stale:
                if not item.done.done():
                    item.sent_on = generation
                    await link.send(item.frame)

    async def _write(self, link: Link, frame: bytes) -> None:
        # A failed write is not the caller's problem: the reader sees the link drop and
        # the next link resends whatever is still unreceipted.
        with contextlib.suppress(LinkClosed):
            await link.send(frame)

    async def _read(self, link: Link, generation: int) -> None:
        while True:
            data = await link.recv()
            try:
                frame = decode_hub_frame(data, max_frame_bytes=self._options.max_frame_bytes)
            except FrameError as error:
                logger.warning("the hub sent a bad frame: %s", error)
                await link.close(int(error.code), error.reason)
                raise LinkClosed(error.code, error.reason) from None
            if self._closed is not None:
                raise LinkClosed(None, "closed")
            if isinstance(frame, Deliver):
                await self._on_deliver(link, generation, frame)
            elif isinstance(frame, Receipt):
                self._settle((frame.task_id, frame.recipient, frame.seq), None)
            elif (frame.task_id, frame.recipient, frame.seq) in self._outbox:
                self._settle((frame.task_id, frame.recipient, frame.seq), frame)
            elif frame.recipient in self._mailboxes:
                self._refuse_subscription(frame)
                raise LinkClosed(frame.code, frame.reason)

    def _refuse_subscription(self, frame: Refused) -> None:
        # The hub answers a SUBSCRIBE it will not serve with REFUSED naming the mailbox
        # (4403: not yours; 4429: too many). Reconnecting would be refused again.
        logger.warning("the hub refused mailbox %s: %s", frame.recipient, frame.reason)
        reason = f"mailbox {frame.recipient} refused: {frame.reason}"
        self._fail(RelayClosedError(int(frame.code), reason))

    async def _on_deliver(self, link: Link, generation: int, frame: Deliver) -> None:
        envelope = frame.envelope
        key = _message_key(envelope)
        if key in self._held:  # redelivered before the application acknowledged it
            self._held[key] = (generation, frame.id)
            return
        if not self._dedup.accept(key[:3], envelope.seq):
            await self._write(link, encode_control(Ack((frame.id,))))
            return
        self._held[key] = (generation, frame.id)
        await self._inbox.put(envelope)

    def _settle(self, key: _ReceiptKey, refused: Refused | None) -> None:
        outgoing = self._outbox.pop(key, None)
        if outgoing is None or outgoing.done.done():
            return
        if refused is None:
            outgoing.done.set_result(None)
            return
        outgoing.done.set_exception(
            RelayRefusedError(
                int(refused.code),
                refused.reason,
                task_id=refused.task_id,
                recipient=refused.recipient,
                seq=refused.seq,
            )
        )
