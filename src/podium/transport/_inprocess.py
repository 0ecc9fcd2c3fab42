"""The relay without sockets: an in-memory hub and a transport that talks to it.

:class:`InProcessRelay` keeps the hub's rules over the real frames (encoded and decoded
exactly as on the wire), so code tested against it behaves the same against a hub:

- a credential names a user; an unknown one is refused with close code 4401; a revoked
  one (:meth:`InProcessRelay.revoke`) closes its live connections with 4440;
- a user owns ``pod/<user>/*`` and ``task/*/<user>`` and ``task/*/<user>.<pod>``; subscribing
  to any other mailbox is answered ``REFUSED`` (4403, naming the mailbox, seq 0), and so is
  a message whose sender is not the user or one of their pods;
- a ``JOB_REQUEST`` to ``pod/<o>/<p>`` for task *T* from *S* makes *S* and ``<o>.<p>``
  participants of *T* (the first requester owns *T*; a request from anyone else is
  refused, 4403); a task mailbox takes messages only from a participant of its task,
  addressed to a participant (else 4403); any message may go to a pod mailbox;
- append is idempotent on ``(recipient, sender, task_id, seq)``; each stored message is
  answered with a ``RECEIPT``;
- a subscriber gets the pending (unacknowledged) messages of its mailboxes in order, then
  new ones as they arrive; unacknowledged ones come again on the next connection.

For fault tests it can drop connections (:meth:`InProcessRelay.drop`) and lose receipts
(:attr:`InProcessRelay.lose_receipts`). Everything runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.core.messages import (
    CLOSE_REASONS,
    DEFAULT_MAX_FRAME_BYTES,
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
    decode_frame,
    encode_control,
    encode_deliver,
    parse_mailbox,
)
from podium.transport._base import Connection, ConnectionOptions, Transport
from podium.transport._link import (
    ABNORMAL_CLOSURE,
    Credential,
    Link,
    LinkClosed,
    current_credential,
)
from podium.transport._session import RelaySession

__all__ = ["InProcessRelay", "InProcessTransport"]

_LOST = "connection dropped"
#: The task id of a REFUSED answer about a pod mailbox (which has no task).
_NO_TASK = "0" * 32


def owns_party(user: str, party: str) -> bool:
    """Whether ``party`` is ``user`` or one of ``user``'s pods."""
    owner, dot, _ = party.partition(".")
    return party == user or (dot == "." and owner == user)


def owns_mailbox(user: str, mailbox: str) -> bool:
    """Whether ``user`` may read ``mailbox``."""
    parsed = parse_mailbox(mailbox)
    if isinstance(parsed, PodMailbox):
        return parsed.owner == user
    return owns_party(user, parsed.party)


@dataclass(slots=True)
class _Stored:
    message_id: int
    frame: bytes
    acked: bool = False


@dataclass(slots=True)
class _Task:
    requester: str
    parties: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Box:
    messages: dict[int, _Stored] = field(default_factory=dict)
    ids: dict[tuple[str, str, int], int] = field(default_factory=dict)


class _HubSide(Link):
    """Both ends of one in-process connection: the client holds it as its link."""

    def __init__(self, relay: InProcessRelay, user: str, credential: str) -> None:
        self._relay = relay
        self.user = user
        self.credential = credential
        self.mailboxes: set[str] = set()
        self.delivered: set[int] = set()
        self._to_client: asyncio.Queue[bytes | LinkClosed] = asyncio.Queue()
        self.closed: LinkClosed | None = None

    # client side
    async def send(self, frame: bytes) -> None:
        if self.closed is not None:
            raise self.closed
        self._relay._handle(self, frame)

    async def recv(self) -> bytes:
        if self.closed is not None and self._to_client.empty():
            raise self.closed
        item = await self._to_client.get()
        if isinstance(item, LinkClosed):
            raise item
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.shut(code, reason)

    # hub side
    def push(self, frame: bytes) -> None:
        if self.closed is None:
            self._to_client.put_nowait(frame)

    def shut(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = LinkClosed(code, reason)
            self._to_client.put_nowait(self.closed)
            self._relay._sessions.discard(self)


class InProcessRelay:
    """An in-memory hub for tests and simulation (rules in the module docstring)."""

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._credentials: dict[str, str] = {}
        self._boxes: dict[str, _Box] = {}
        self._ids = itertools.count(1)
        self._sessions: set[_HubSide] = set()
        self._index: dict[int, tuple[str, _Stored]] = {}
        self._tasks: dict[str, _Task] = {}
        #: While true, messages are stored but their receipts are never sent.
        self.lose_receipts = False

    def add_user(self, name: str) -> str:
        """Register ``name`` (if new) and return a fresh credential for it."""
        credential = secrets.token_urlsafe(16)
        self._credentials[credential] = name
        return credential

    def revoke(self, credential: str) -> int:
        """Forget ``credential`` and close its live connections with ``4440``, as the hub
        does when it re-checks a revoked or expired credential; how many were closed."""
        self._credentials.pop(credential, None)
        victims = [s for s in self._sessions if s.credential == credential]
        code = CloseCode.CREDENTIAL_EXPIRED
        for session in victims:
            session.shut(int(code), CLOSE_REASONS[code])
        return len(victims)

    def transport(self, credential: Credential) -> InProcessTransport:
        """A transport that connects with ``credential`` (or a function giving it)."""
        return InProcessTransport(self, credential)

    def drop(self, user: str | None = None) -> int:
        """Cut every live connection (of ``user``, if given) without a close frame, as a
        lost network would; how many went."""
        victims = [s for s in self._sessions if user is None or s.user == user]
        for session in victims:
            session.shut(ABNORMAL_CLOSURE, _LOST)
        return len(victims)

    def connections(self, user: str | None = None) -> int:
        """How many connections (of ``user``, if given) are live."""
        return sum(1 for s in self._sessions if user is None or s.user == user)

    def stored(self, mailbox: str) -> int:
        """How many messages were ever stored in ``mailbox`` (acknowledged ones too)."""
        box = self._boxes.get(mailbox)
        return 0 if box is None else len(box.messages)

    def pending(self, mailbox: str) -> list[Envelope]:
        """The unacknowledged messages of ``mailbox``, in order."""
        box = self._boxes.get(mailbox)
        if box is None:
            return []
        return [
            decode_frame(m.frame, max_frame_bytes=self._max_frame_bytes)
            for m in box.messages.values()
            if not m.acked
        ]

    # -- the hub's side of a connection ---------------------------------------------------

    def open_link(self, credential: str) -> Link:
        """A new connection's link, as a dialer opens it (a bridge may serve it over a
        real socket). Raises :class:`LinkClosed` (4401) for an unknown credential."""
        user = self._credentials.get(credential)
        if user is None:
            raise LinkClosed(CloseCode.UNAUTHENTICATED, "unknown credential")
        session = _HubSide(self, user, credential)
        self._sessions.add(session)
        return session

    def _handle(self, session: _HubSide, data: bytes) -> None:
        try:
            frame = decode_client_frame(data, max_frame_bytes=self._max_frame_bytes)
        except FrameError as error:
            session.shut(error.code, error.reason)
            return
        if isinstance(frame, Subscribe):
            self._subscribe(session, frame.mailboxes)
        elif isinstance(frame, Ack):
            self._ack(session, frame.ids)
        else:
            self._append(session, frame, data)

    def _subscribe(self, session: _HubSide, mailboxes: Sequence[str]) -> None:
        for name in mailboxes:
            if not owns_mailbox(session.user, name):
                parsed = parse_mailbox(name)
                task_id = parsed.task_id if isinstance(parsed, TaskMailbox) else _NO_TASK
                refusal = Refused(task_id, name, 0, CloseCode.FORBIDDEN_MAILBOX, "not yours")
                session.push(encode_control(refusal))
                continue
            session.mailboxes.add(name)
            box = self._boxes.get(name)
            for message in [] if box is None else list(box.messages.values()):
                self._deliver(session, message)

    def _deliver(self, session: _HubSide, message: _Stored) -> None:
        if not message.acked and message.message_id not in session.delivered:
            session.delivered.add(message.message_id)
            session.push(encode_deliver(message.message_id, message.frame))

    def _ack(self, session: _HubSide, ids: Sequence[int]) -> None:
        for message_id in ids:
            found = self._index.get(message_id)
            if found is not None and found[0] in session.mailboxes:
                found[1].acked = True
                found[1].frame = b""

    def _refusal(self, user: str, envelope: Envelope) -> str | None:
        """Why ``envelope`` from ``user`` may not be relayed, or None if it may."""
        if not owns_party(user, envelope.sender):
            return "the sender is not you"
        recipient = parse_mailbox(envelope.recipient)
        if isinstance(recipient, PodMailbox):
            if envelope.type is MessageType.JOB_REQUEST:
                task = self._tasks.setdefault(envelope.task_id, _Task(envelope.sender))
                if task.requester != envelope.sender:
                    return "that task id belongs to another requester"
                task.parties.update((envelope.sender, f"{recipient.owner}.{recipient.name}"))
            return None
        known = self._tasks.get(recipient.task_id)
        if known is None or not {envelope.sender, recipient.party} <= known.parties:
            return "sender and recipient are not both participants of that task"
        return None

    def _append(self, session: _HubSide, envelope: Envelope, frame: bytes) -> None:
        ref = (envelope.task_id, envelope.recipient, envelope.seq)
        reason = self._refusal(session.user, envelope)
        if reason is not None:
            session.push(encode_control(Refused(*ref, CloseCode.FORBIDDEN_MAILBOX, reason)))
            return
        box = self._boxes.setdefault(envelope.recipient, _Box())
        identity = (envelope.sender, envelope.task_id, envelope.seq)
        if identity not in box.ids:
            message = _Stored(next(self._ids), frame)
            box.ids[identity] = message.message_id
            box.messages[message.message_id] = message
            self._index[message.message_id] = (envelope.recipient, message)
            for reader in list(self._sessions):
                if envelope.recipient in reader.mailboxes:
                    self._deliver(reader, message)
        if not self.lose_receipts:
            session.push(encode_control(Receipt(*ref)))


class InProcessTransport(Transport):
    """Connects to an :class:`InProcessRelay` with a credential from
    :meth:`InProcessRelay.add_user`."""

    def __init__(self, relay: InProcessRelay, credential: Credential) -> None:
        self._relay = relay
        self._credential = credential

    def connect(
        self, mailboxes: Sequence[str], *, options: ConnectionOptions | None = None
    ) -> Connection:
        async def dial() -> Link:
            credential = await current_credential(self._credential)
            await asyncio.sleep(0)  # a real dial yields; so does this one
            return self._relay.open_link(credential)

        renews = not isinstance(self._credential, str)
        return RelaySession(
            dial, mailboxes, options or ConnectionOptions(), renews_credential=renews
        )
