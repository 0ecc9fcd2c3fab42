"""The relay endpoint ``/relay``: a WebSocket per pod or modeller over the mailbox store.

Protocol (frames are the binary msgpack frames of :mod:`podium.core.messages`):

1. The client opens ``GET /relay`` with ``Authorization: Bearer <access token or API
   key>``. The hub accepts the WebSocket, then authenticates; if that fails it closes with
   ``4401`` (a close code reaches the client; a refused handshake would not).
2. ``SUBSCRIBE(mailboxes)``: each mailbox is judged on its own (rules in
   :mod:`podium.hub.relay.rules`: ``pod/<owner>/<pod>`` for its owner,
   ``task/<task_id>/<party>`` for its party). A mailbox that is not the client's is
   answered ``REFUSED`` with code ``4403``, ``to`` = the mailbox, ``task`` = its task id
   (32 zeros for a pod mailbox) and ``seq`` 0; the connection stays open. Past
   ``max_subscriptions`` mailboxes, ``REFUSED`` ``4429``.
3. For each subscribed mailbox the hub sends every pending message as
   ``DELIVER(id, frame)`` (``id`` is the store's message id, ``frame`` the bytes the
   sender sent), in id order per mailbox, then new ones as they arrive. At most ``window``
   deliveries are unacknowledged at once per connection: the hub reads no more from the
   store until ACKs make room.
4. ``ACK(ids)`` acknowledges deliveries in the client's subscribed mailboxes only. A
   delivery not acknowledged is delivered again on the next connection (at-least-once;
   clients drop duplicates by ``(task_id, sender, seq)``).
5. An envelope frame is a message to relay. Its ``sender`` must be one of the client's
   parties, and a task mailbox takes messages only between the task's participants
   (a ``JOB_REQUEST`` to a pod mailbox makes its sender and the pod participants);
   otherwise ``REFUSED`` ``4403`` and the connection stays open. Accepted frames are
   stored as they are (idempotent on ``(mailbox, sender, task_id, seq)``), the
   recipient's readers are woken, and the client gets ``RECEIPT(task, to, seq)``: the
   message is stored durably. Receipts and refusals come in the order of the messages.
6. A malformed or oversized frame, or an unexpected type, closes the connection with the
   :class:`FrameError`'s code (``4400``, ``4413``, ``4415``, ``4426``); other
   connections are not affected. A store failure closes with ``1011``.

7. The credential is checked again every ``reauth_interval_s`` while the connection
   lives: once it has expired (an access token) or was revoked (an API key, a user
   deactivated), the hub closes with ``4440``; a client that can get a fresh credential
   reconnects with it and resumes.

Keep-alive is uvicorn's WebSocket ping. Frames to the client go through a bounded queue
(``send_queue``): a client that does not read stops being read from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from podium.core.messages import (
    CLOSE_REASONS,
    Ack,
    CloseCode,
    Envelope,
    FrameError,
    MessageType,
    PodMailbox,
    Receipt,
    Refused,
    Subscribe,
    TaskMailbox,
    decode_client_frame,
    encode_control,
    encode_deliver,
    parse_mailbox,
)
from podium.hub.errors import HubError
from podium.hub.relay.rules import may_read, may_send_in_task, owns_party, pod_party
from podium.hub.relay.state import RelayState
from podium.hub.services import HubServices

__all__ = ["NO_TASK", "RELAY_PATH", "RelaySession", "relay_endpoint"]

_log = logging.getLogger("podium.hub.relay")

RELAY_PATH = "/relay"
#: The task id of a ``REFUSED`` answering a ``SUBSCRIBE`` of a pod mailbox.
NO_TASK = "0" * 32
_INTERNAL_ERROR = 1011
_INTERNAL_REASON = "internal error"


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


def _close_for(error: FrameError) -> _Close:
    return _Close(int(error.code), error.reason)


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, credential = websocket.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


async def relay_endpoint(websocket: WebSocket) -> None:
    """Serve one relay connection (the protocol is in the module docstring)."""
    services: HubServices = websocket.app.state.services
    await websocket.accept()
    credential = _bearer(websocket)

    async def authenticate() -> str | None:
        """The user behind the connection's credential now, or None."""
        if credential is None:
            return None
        try:
            principal = await run_in_threadpool(
                services.accounts.authenticate_bearer, credential, services.now()
            )
        except HubError as error:
            _log.info("relay credential refused: %s", error.code.value)
            return None
        return principal.name

    user = await authenticate()
    if user is None:
        code = CloseCode.UNAUTHENTICATED
        await websocket.close(int(code), CLOSE_REASONS[code])
        return
    await RelaySession(services.relay, user, websocket, authenticate).run()


class RelaySession:
    """One authenticated connection: a reader, a deliverer and a writer task."""

    def __init__(
        self,
        relay: RelayState,
        user: str,
        websocket: WebSocket,
        authenticate: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self._relay = relay
        self._authenticate = authenticate
        self._store = relay.store
        self._settings = relay.settings
        self._user = user
        self._websocket = websocket
        self._outbox: asyncio.Queue[bytes | _Close] = asyncio.Queue(relay.settings.send_queue)
        self._wake = asyncio.Event()
        self._cursors: dict[str, int | None] = {}  # subscribed mailbox -> last delivered id
        self._in_flight: dict[int, str] = {}  # delivered, unacknowledged id -> mailbox

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the client leaves or a frame ends the connection."""
        _log.debug("relay connection for %s", self._user)
        writer = asyncio.create_task(self._write_loop())
        workers = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._deliver_loop()),
        ]
        if self._authenticate is not None:
            workers.append(asyncio.create_task(self._reauth_loop(self._authenticate)))
        try:
            done, _ = await asyncio.wait([writer, *workers], return_when=asyncio.FIRST_COMPLETED)
            close = self._outcome(done)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._unsubscribe_all()
        try:
            await self._finish(writer, close)
        finally:
            await self._touch_all()

    def _outcome(self, done: Iterable[asyncio.Task[_Close | None]]) -> _Close | None:
        """How to close, from the first task that ended."""
        for task in done:
            error = task.exception()
            if error is not None:
                if isinstance(error, WebSocketDisconnect | OSError):
                    return None
                _log.error("relay connection for %s failed", self._user, exc_info=error)
                return _Close(_INTERNAL_ERROR, _INTERNAL_REASON)
            result = task.result()
            if result is not None:
                return result
        return None

    async def _finish(self, writer: asyncio.Task[_Close | None], close: _Close | None) -> None:
        """Flush what is queued, then close with ``close`` (bounded by ``close_timeout_s``)."""
        if writer.done() or close is None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            return
        try:
            async with asyncio.timeout(self._settings.close_timeout_s):
                await self._outbox.put(close)
                await writer
        except (TimeoutError, WebSocketDisconnect, OSError):
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await self._close_now(close)

    async def _close_now(self, close: _Close) -> None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):  # closed or gone
            await self._websocket.close(close.code, close.reason)

    def _unsubscribe_all(self) -> None:
        for mailbox in self._cursors:
            self._relay.notifier.unregister(mailbox, self._wake)

    async def _touch_all(self) -> None:
        """Mark the mailboxes read here active as the reader leaves (expiry counts from now)."""
        if self._cursors:
            now = self._relay.clock()
            for mailbox in list(self._cursors):
                await run_in_threadpool(self._store.touch, mailbox, now)

    async def _reauth_loop(self, authenticate: Callable[[], Awaitable[str | None]]) -> _Close:
        """Check the credential every ``reauth_interval_s``; end the connection (4440)
        once it no longer names this connection's user."""
        while True:
            await asyncio.sleep(self._settings.reauth_interval_s)
            if await authenticate() != self._user:
                _log.info("relay connection of %s closed: credential expired", self._user)
                code = CloseCode.CREDENTIAL_EXPIRED
                return _Close(int(code), CLOSE_REASONS[code])

    # -- writer ------------------------------------------------------------------------

    async def _write_loop(self) -> _Close | None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, _Close):
                await self._websocket.close(item.code, item.reason)
                return None
            await self._websocket.send_bytes(item)

    # -- reader ------------------------------------------------------------------------

    async def _read_loop(self) -> _Close | None:
        """Handle frames until the client leaves (None) or a frame ends the connection."""
        limit = self._settings.max_frame_bytes
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes")
            try:
                frame = decode_client_frame(
                    data if data is not None else message.get("text"),  # type: ignore[arg-type]
                    max_frame_bytes=limit,
                )
            except FrameError as error:
                _log.info("relay frame from %s refused: %s", self._user, error)
                return _close_for(error)
            if isinstance(frame, Subscribe):
                await self._subscribe(frame.mailboxes)
            elif isinstance(frame, Ack):
                await self._ack(frame.ids)
            else:
                assert data is not None  # an envelope decodes from binary only
                await self._relay_message(frame, data)

    async def _send(self, frame: Receipt | Refused) -> None:
        await self._outbox.put(encode_control(frame))

    async def _subscribe(self, mailboxes: Iterable[str]) -> None:
        now = self._relay.clock()
        for mailbox in mailboxes:
            if mailbox in self._cursors:
                continue
            parsed = parse_mailbox(mailbox)
            task_id = parsed.task_id if isinstance(parsed, TaskMailbox) else NO_TASK
            if not may_read(self._user, mailbox):
                await self._refuse(task_id, mailbox, 0, CloseCode.FORBIDDEN_MAILBOX)
                continue
            if len(self._cursors) >= self._settings.max_subscriptions:
                await self._refuse(task_id, mailbox, 0, CloseCode.TOO_MANY_REQUESTS)
                continue
            await run_in_threadpool(self._store.touch, mailbox, now)
            self._cursors[mailbox] = None
            self._relay.notifier.register(mailbox, self._wake)
        self._wake.set()

    async def _refuse(
        self, task_id: str, recipient: str, seq: int, code: CloseCode, reason: str = ""
    ) -> None:
        await self._send(Refused(task_id, recipient, seq, code, reason or CLOSE_REASONS[code]))

    async def _ack(self, ids: Iterable[int]) -> None:
        by_mailbox: dict[str, list[int]] = {}
        unknown: list[int] = []
        for message_id in ids:
            mailbox = self._in_flight.pop(message_id, None)
            if mailbox is None:
                unknown.append(message_id)
            else:
                by_mailbox.setdefault(mailbox, []).append(message_id)
        if unknown:  # delivered on an earlier connection: any subscribed mailbox may hold them
            for mailbox in self._cursors:
                by_mailbox.setdefault(mailbox, []).extend(unknown)
        now = self._relay.clock()
        for mailbox, message_ids in by_mailbox.items():
            await run_in_threadpool(self._store.ack, mailbox, message_ids, now)
        self._wake.set()

    async def _relay_message(self, envelope: Envelope, frame: bytes) -> None:
        refusal = await self._check_send(envelope)
        if refusal is not None:
            await self._refuse(envelope.task_id, envelope.recipient, envelope.seq, *refusal)
            return
        stored = await run_in_threadpool(
            lambda: self._store.append(
                envelope.recipient,
                sender=envelope.sender,
                task_id=envelope.task_id,
                seq=envelope.seq,
                frame=frame,
                now=self._relay.clock(),
            )
        )
        if stored.acked_at is None:
            await self._relay.notifier.notify(envelope.recipient)
        await self._send(Receipt(envelope.task_id, envelope.recipient, envelope.seq))

    async def _check_send(self, envelope: Envelope) -> tuple[CloseCode, str] | None:
        """Why ``envelope`` may not be relayed, or None if it may (the task's participants
        come from the mailbox store, so they survive restarts and span replicas)."""
        forbidden = CloseCode.FORBIDDEN_MAILBOX
        if not owns_party(self._user, envelope.sender):
            return forbidden, "the sender is not one of your parties"
        recipient = parse_mailbox(envelope.recipient)
        if isinstance(recipient, PodMailbox):
            if envelope.type is MessageType.JOB_REQUEST and not await run_in_threadpool(
                self._store.register_task,
                envelope.task_id,
                envelope.sender,
                pod_party(recipient),
                self._relay.clock(),
            ):
                return forbidden, "that task id belongs to another requester"
            return None
        participants = await self._relay.participants(recipient.task_id)
        if not may_send_in_task(envelope.sender, recipient.party, participants):
            return forbidden, "sender and recipient are not both participants of that task"
        return None

    # -- deliverer ---------------------------------------------------------------------

    async def _deliver_loop(self) -> _Close | None:
        """Send pending messages of the subscribed mailboxes, keeping at most ``window``
        unacknowledged; sleep until a new message, an ACK or a SUBSCRIBE wakes it."""
        while True:
            self._wake.clear()  # before reading: a message stored meanwhile sets it again
            more = False
            for mailbox in list(self._cursors):
                room = self._settings.window - len(self._in_flight)
                if room <= 0:
                    break
                more |= await self._deliver_from(mailbox, room)
            if not more:
                await self._wake.wait()

    async def _deliver_from(self, mailbox: str, room: int) -> bool:
        """Deliver up to ``room`` pending messages of ``mailbox``; whether it may hold more."""
        after = self._cursors[mailbox]
        messages = await run_in_threadpool(
            lambda: self._store.pending(mailbox, after_id=after, limit=room)
        )
        for message in messages:
            self._in_flight[message.message_id] = mailbox
            self._cursors[mailbox] = message.message_id
            await self._outbox.put(encode_deliver(message.message_id, message.frame))
        return len(messages) == room
