"""The relay's durable mailboxes: one interface, an in-memory twin and (in
:mod:`podium.hub.relay.mailbox_sql`) a SQLAlchemy version on the hub's database.

A mailbox is named ``pod/<owner>/<pod>`` (job requests for a pod) or
``task/<task_id>/<party>`` (one participant of one task). It holds opaque frames: the hub
never reads them. The semantics every version keeps (one contract suite,
``tests/hub/relay/test_mailbox_contract.py``, runs against each):

- **Append is idempotent.** A message is identified by ``(mailbox, sender, task_id,
  seq)``. Appending the same identity again stores nothing and returns the message already
  stored, so a sender that retries after a lost acknowledgement never creates a duplicate.
  The store gives each new message a ``message_id``, strictly increasing within a mailbox
  (ids are global and never reused, so they also increase across mailboxes).
- **Ids are a safe cursor.** Appends to one mailbox are serialised, so a message with a
  lower id is never committed after one with a higher id: a reader that has seen every
  message up to id *n* can page on with ``pending(after_id=n)`` and miss nothing.
- **Pending, then acknowledged.** :meth:`MailboxStore.pending` lists unacknowledged
  messages in id order. :meth:`MailboxStore.ack` marks messages acknowledged; it only
  touches the given mailbox's messages, is idempotent and says how many it changed. An
  acknowledged message is never pending again. Its frame is dropped at once (replaced by
  ``b""``) to free the space, but its identity stays as a tombstone, so a late retry of
  the same append is still recognised (and returned with ``acked_at`` set, meaning
  "already delivered"). :meth:`MailboxStore.purge_acked` deletes tombstones acknowledged
  before a cutoff; the hub calls it periodically with its deduplication window.
- **Task mailboxes expire, pod mailboxes do not.** Each mailbox remembers its last
  activity: appending to it, acknowledging in it and :meth:`MailboxStore.touch` (the relay
  touches a mailbox while its reader is connected); reading with ``pending`` is not
  activity. Activity never moves backwards. :meth:`MailboxStore.expire` deletes every
  ``task/...`` mailbox idle for longer than the given time, with all its messages; pod
  mailboxes (any name not starting with ``task/``) are never expired.
- **Tasks.** :meth:`MailboxStore.register_task` records a task from its job request:
  the first requester owns it (with the pod it asked); a later registration by the same
  requester for the same pod succeeds and marks the task active, any other is refused.
  :meth:`MailboxStore.task_participants` gives the two parties. :meth:`MailboxStore.expire_tasks`
  forgets tasks idle too long that have no task mailbox left, so tasks expire with their
  mailboxes (call it after :meth:`MailboxStore.expire`).
- **Times** must be timezone-aware (``ValueError`` otherwise) and come back as aware UTC.
- Every method is one transaction and synchronous, like the hub store; the relay calls
  them from a worker thread.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

__all__ = [
    "TASK_MAILBOX_PREFIX",
    "InMemoryMailboxStore",
    "Mailbox",
    "MailboxStore",
    "StoredMessage",
    "check_limit",
    "is_task_mailbox",
    "require_aware",
]

#: Mailboxes whose names start with this expire when idle; all others never do.
TASK_MAILBOX_PREFIX = "task/"


def is_task_mailbox(name: str) -> bool:
    """Whether ``name`` is a task mailbox (``task/...``), which expires when idle."""
    return name.startswith(TASK_MAILBOX_PREFIX)


def require_aware(when: datetime) -> datetime:
    """``when`` in UTC; ``ValueError`` if it has no time zone."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: the relay stores timezone-aware times")
    return when.astimezone(UTC)


def check_limit(limit: int) -> None:
    """``ValueError`` unless ``limit`` is a usable page size."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in a mailbox. ``frame`` is opaque (sealed by the sender); it is ``b""``
    once the message is acknowledged (``acked_at`` set)."""

    mailbox: str
    message_id: int
    sender: str
    task_id: str
    seq: int
    frame: bytes = field(repr=False)
    created_at: datetime
    acked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox and when it was last active (for expiry)."""

    name: str
    created_at: datetime
    last_active_at: datetime


class MailboxStore(ABC):
    """Durable mailboxes of the relay (semantics in the module docstring)."""

    @abstractmethod
    def append(
        self, mailbox: str, *, sender: str, task_id: str, seq: int, frame: bytes, now: datetime
    ) -> StoredMessage:
        """Store a message (creating the mailbox if needed) and mark the mailbox active;
        if ``(mailbox, sender, task_id, seq)`` is stored already, return that message and
        store nothing."""

    @abstractmethod
    def pending(
        self, mailbox: str, *, after_id: int | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        """Up to ``limit`` unacknowledged messages with ids above ``after_id``, by id."""

    @abstractmethod
    def ack(self, mailbox: str, message_ids: Collection[int], now: datetime) -> int:
        """Acknowledge those of ``message_ids`` that are pending in ``mailbox``; how many
        were. Ids of other mailboxes and acknowledged ids are ignored."""

    @abstractmethod
    def touch(self, mailbox: str, now: datetime) -> None:
        """Record activity on a mailbox (creating it if needed), so it does not expire."""

    @abstractmethod
    def get_mailbox(self, mailbox: str) -> Mailbox | None:
        """The mailbox called ``mailbox``, or None if it does not exist (any more)."""

    @abstractmethod
    def count(self, mailbox: str) -> int:
        """How many messages are pending in ``mailbox``."""

    @abstractmethod
    def expire(self, now: datetime, idle_for: timedelta) -> int:
        """Delete task mailboxes last active before ``now - idle_for``, with their
        messages; how many mailboxes went. Pod mailboxes stay."""

    @abstractmethod
    def register_task(self, task_id: str, requester: str, pod_party: str, now: datetime) -> bool:
        """Record ``requester``'s job request for ``task_id`` to ``pod_party`` and mark the
        task active; False (and nothing changed) if the task exists with another requester
        or pod. Atomic: of racing first registrations exactly one wins."""

    @abstractmethod
    def task_participants(self, task_id: str) -> frozenset[str] | None:
        """The requester and pod of ``task_id``, or None for an unknown task."""

    @abstractmethod
    def expire_tasks(self, now: datetime, idle_for: timedelta) -> int:
        """Forget tasks last active before ``now - idle_for`` that have no task mailbox
        (``task/<task_id>/...``) left; how many went."""

    @abstractmethod
    def purge_acked(self, acked_before: datetime) -> int:
        """Delete acknowledged messages acknowledged before ``acked_before``; how many
        went. After this a retried append of one of them is stored as new."""

    def sweep_files(self, older_than: timedelta) -> int:
        """Delete files of frames kept outside the store's tables that are older than
        ``older_than`` and belong to no pending message; how many. Stores that keep every
        frame in their tables have none (0)."""
        del older_than
        return 0


@dataclass(slots=True)
class _Box:
    created_at: datetime
    last_active_at: datetime
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    ids: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def activity(self, now: datetime) -> None:
        self.last_active_at = max(self.last_active_at, now)


@dataclass(slots=True)
class _Task:
    requester: str
    pod_party: str
    last_active_at: datetime


class InMemoryMailboxStore(MailboxStore):
    """Mailboxes in dictionaries, guarded by one lock; for tests and throw-away hubs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boxes: dict[str, _Box] = {}
        self._ids = itertools.count(1)
        self._tasks: dict[str, _Task] = {}

    def _box(self, mailbox: str, now: datetime) -> _Box:
        box = self._boxes.get(mailbox)
        if box is None:
            box = self._boxes[mailbox] = _Box(created_at=now, last_active_at=now)
        box.activity(now)
        return box

    def append(
        self, mailbox: str, *, sender: str, task_id: str, seq: int, frame: bytes, now: datetime
    ) -> StoredMessage:
        now = require_aware(now)
        with self._lock:
            box = self._box(mailbox, now)
            existing = box.ids.get((sender, task_id, seq))
            if existing is not None:
                return box.messages[existing]
            message = StoredMessage(
                mailbox, next(self._ids), sender, task_id, seq, bytes(frame), now
            )
            box.messages[message.message_id] = message
            box.ids[(sender, task_id, seq)] = message.message_id
            return message

    def pending(
        self, mailbox: str, *, after_id: int | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        check_limit(limit)
        floor = 0 if after_id is None else after_id
        with self._lock:
            box = self._boxes.get(mailbox)
            if box is None:
                return []
            waiting = (
                m for m in box.messages.values() if m.message_id > floor and m.acked_at is None
            )
            return list(itertools.islice(waiting, limit))

    def ack(self, mailbox: str, message_ids: Collection[int], now: datetime) -> int:
        now = require_aware(now)
        with self._lock:
            box = self._boxes.get(mailbox)
            if box is None:
                return 0
            box.activity(now)
            changed = 0
            for message_id in set(message_ids):
                message = box.messages.get(message_id)
                if message is not None and message.acked_at is None:
                    box.messages[message_id] = replace(message, frame=b"", acked_at=now)
                    changed += 1
            return changed

    def touch(self, mailbox: str, now: datetime) -> None:
        now = require_aware(now)
        with self._lock:
            self._box(mailbox, now)

    def get_mailbox(self, mailbox: str) -> Mailbox | None:
        with self._lock:
            box = self._boxes.get(mailbox)
            return None if box is None else Mailbox(mailbox, box.created_at, box.last_active_at)

    def count(self, mailbox: str) -> int:
        with self._lock:
            box = self._boxes.get(mailbox)
            if box is None:
                return 0
            return sum(1 for m in box.messages.values() if m.acked_at is None)

    def expire(self, now: datetime, idle_for: timedelta) -> int:
        cutoff = require_aware(now) - idle_for
        with self._lock:
            idle = [
                name
                for name, box in self._boxes.items()
                if is_task_mailbox(name) and box.last_active_at < cutoff
            ]
            for name in idle:
                del self._boxes[name]
            return len(idle)

    def purge_acked(self, acked_before: datetime) -> int:
        cutoff = require_aware(acked_before)
        removed = 0
        with self._lock:
            for box in self._boxes.values():
                gone = [
                    m
                    for m in box.messages.values()
                    if m.acked_at is not None and m.acked_at < cutoff
                ]
                for message in gone:
                    del box.messages[message.message_id]
                    del box.ids[(message.sender, message.task_id, message.seq)]
                removed += len(gone)
        return removed

    def register_task(self, task_id: str, requester: str, pod_party: str, now: datetime) -> bool:
        now = require_aware(now)
        with self._lock:
            task = self._tasks.setdefault(task_id, _Task(requester, pod_party, now))
            if (task.requester, task.pod_party) != (requester, pod_party):
                return False
            task.last_active_at = max(task.last_active_at, now)
            return True

    def task_participants(self, task_id: str) -> frozenset[str] | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else frozenset((task.requester, task.pod_party))

    def expire_tasks(self, now: datetime, idle_for: timedelta) -> int:
        cutoff = require_aware(now) - idle_for
        with self._lock:
            live = {name.split("/")[1] for name in self._boxes if is_task_mailbox(name)}
            idle = [
                task_id
                for task_id, task in self._tasks.items()
                if task.last_active_at < cutoff and task_id not in live
            ]
            for task_id in idle:
                del self._tasks[task_id]
            return len(idle)
