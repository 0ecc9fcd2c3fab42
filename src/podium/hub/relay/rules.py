"""Who may read and write which mailbox.

A connection is authenticated as a hub user (a pod runs with its owner's credentials), so
its *parties* are the user itself and every ``<user>.<pod>``:

- **Read** ``pod/<owner>/<pod>`` only as ``owner``; ``task/<task_id>/<party>`` only if
  ``party`` is one of the connection's parties. Administrators get nothing more: the
  relay never hands anyone another party's mail.
- **Send** only as one of the connection's parties (the envelope's ``sender``).
  Anyone may send to a pod mailbox (the pod decides, with the access manager, whether to
  take a job). A ``JOB_REQUEST`` to ``pod/<o>/<p>`` for task *T* from *S* makes *S* and
  ``<o>.<p>`` participants of *T*; the first requester of *T* owns it, and a request
  for *T* from anyone else is refused. A task mailbox takes messages only from a
  participant of its task, addressed to a participant.

:class:`TaskParticipants` keeps the participants in memory, per hub process: after a hub
restart (or on another replica) a task's messages are refused until its modeller sends
a job request again. Moving it into the mailbox store is a later step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from podium.core.messages import PodMailbox, TaskMailbox, parse_mailbox

__all__ = ["TaskParticipants", "may_read", "owns_party"]


def owns_party(user: str, party: str) -> bool:
    """Whether a connection authenticated as ``user`` may act as ``party``."""
    owner, dot, _ = party.partition(".")
    return party == user or (dot == "." and owner == user)


def may_read(user: str, mailbox: str) -> bool:
    """Whether ``user`` may read ``mailbox`` (False for a malformed name)."""
    try:
        parsed = parse_mailbox(mailbox)
    except ValueError:
        return False
    if isinstance(parsed, PodMailbox):
        return parsed.owner == user
    return owns_party(user, parsed.party)


@dataclass(slots=True)
class _Task:
    requester: str
    parties: set[str] = field(default_factory=set)
    last_active_at: datetime | None = None


class TaskParticipants:
    """The parties of each task, learned from job requests; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}

    def register_request(
        self, task_id: str, requester: str, pod: PodMailbox, now: datetime
    ) -> bool:
        """Record a job request for ``task_id`` from ``requester`` to ``pod``; False (and
        nothing recorded) if another requester owns the task."""
        with self._lock:
            task = self._tasks.setdefault(task_id, _Task(requester))
            if task.requester != requester:
                return False
            task.parties.update((requester, f"{pod.owner}.{pod.name}"))
            task.last_active_at = now
            return True

    def may_send(self, sender: str, mailbox: TaskMailbox, now: datetime) -> bool:
        """Whether ``sender`` may write to ``mailbox``: both are participants of its task.
        Marks the task active when so."""
        with self._lock:
            task = self._tasks.get(mailbox.task_id)
            if task is None or not {sender, mailbox.party} <= task.parties:
                return False
            task.last_active_at = now
            return True

    def parties(self, task_id: str) -> frozenset[str]:
        """The participants of ``task_id`` (empty if unknown)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return frozenset() if task is None else frozenset(task.parties)

    def expire(self, idle_before: datetime) -> int:
        """Forget tasks last active before ``idle_before``; how many went."""
        with self._lock:
            idle = [
                task_id
                for task_id, task in self._tasks.items()
                if task.last_active_at is not None and task.last_active_at < idle_before
            ]
            for task_id in idle:
                del self._tasks[task_id]
            return len(idle)
