"""The relay's state in one hub process: mailbox store (with the tasks' participants),
notifier, settings and clock, shared by every connection (built by :class:`HubServices`)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from podium.hub.config import RelaySettings
from podium.hub.relay.mailbox import MailboxStore
from podium.hub.relay.notify import InProcessNotifier, MailboxNotifier

__all__ = ["Housekept", "RelayState", "run_housekeeping"]

_log = logging.getLogger("podium.hub.relay")

#: Tasks whose participants one hub process remembers.
_PARTICIPANTS_CACHED = 4096


@dataclass(frozen=True, slots=True)
class Housekept:
    """What one housekeeping pass removed."""

    mailboxes: int
    messages: int
    tasks: int
    files: int = 0


@dataclass(slots=True)
class RelayState:
    """Everything the relay's connections share."""

    store: MailboxStore
    settings: RelaySettings
    clock: Callable[[], datetime]
    notifier: MailboxNotifier = field(default_factory=InProcessNotifier)
    _participants: OrderedDict[str, tuple[datetime, frozenset[str]]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    async def participants(self, task_id: str) -> frozenset[str] | None:
        """The task's two parties (None for an unknown task), from a small cache: a task's
        participants never change once registered, and an entry lives at most
        ``participants_ttl_s`` so an expired task is not remembered for long. Saves a
        database round trip per relayed message."""
        now = self.clock()
        cached = self._participants.get(task_id)
        if cached is not None and cached[0] > now:
            self._participants.move_to_end(task_id)
            return cached[1]
        found = await run_in_threadpool(self.store.task_participants, task_id)
        if found is not None:
            expires = now + timedelta(seconds=self.settings.participants_ttl_s)
            self._participants[task_id] = (expires, found)
            self._participants.move_to_end(task_id)
            while len(self._participants) > _PARTICIPANTS_CACHED:
                self._participants.popitem(last=False)
        else:
            self._participants.pop(task_id, None)
        return found

    def housekeep(self, now: datetime) -> Housekept:
        """Delete idle task mailboxes (and forget their tasks), old acknowledgements and
        orphaned frame files."""
        idle = timedelta(seconds=self.settings.task_mailbox_idle_s)
        done = Housekept(
            mailboxes=self.store.expire(now, idle),
            messages=self.store.purge_acked(now - timedelta(seconds=self.settings.ack_retention_s)),
            tasks=self.store.expire_tasks(now, idle),
            files=self.store.sweep_files(timedelta(seconds=self.settings.orphan_file_age_s)),
        )
        if done != Housekept(0, 0, 0):
            _log.info(
                "relay housekeeping: %d idle task mailboxes, %d acknowledged messages, "
                "%d tasks, %d orphaned frame files removed",
                done.mailboxes,
                done.messages,
                done.tasks,
                done.files,
            )
        return done


async def run_housekeeping(relay: RelayState) -> None:
    """Call :meth:`RelayState.housekeep` every ``housekeeping_interval_s`` until cancelled;
    a failing pass is logged and the next one runs on time."""
    while True:
        await asyncio.sleep(relay.settings.housekeeping_interval_s)
        try:
            await run_in_threadpool(relay.housekeep, relay.clock())
        except Exception:  # noqa: BLE001 - a background task's boundary: log, keep serving
            _log.exception("relay housekeeping failed")
