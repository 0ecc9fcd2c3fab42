"""The relay's state in one hub process: mailbox store (with the tasks' participants),
notifier, settings and clock, shared by every connection (built by :class:`HubServices`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from podium.hub.config import RelaySettings
from podium.hub.relay.mailbox import MailboxStore
from podium.hub.relay.notify import InProcessNotifier, MailboxNotifier

__all__ = ["Housekept", "RelayState", "run_housekeeping"]

_log = logging.getLogger("podium.hub.relay")


@dataclass(frozen=True, slots=True)
class Housekept:
    """What one housekeeping pass removed."""

    mailboxes: int
    messages: int
    tasks: int


@dataclass(slots=True)
class RelayState:
    """Everything the relay's connections share."""

    store: MailboxStore
    settings: RelaySettings
    clock: Callable[[], datetime]
    notifier: MailboxNotifier = field(default_factory=InProcessNotifier)

    def housekeep(self, now: datetime) -> Housekept:
        """Delete idle task mailboxes (and forget their tasks) and old acknowledgements."""
        idle = timedelta(seconds=self.settings.task_mailbox_idle_s)
        done = Housekept(
            mailboxes=self.store.expire(now, idle),
            messages=self.store.purge_acked(now - timedelta(seconds=self.settings.ack_retention_s)),
            tasks=self.store.expire_tasks(now, idle),
        )
        if done != Housekept(0, 0, 0):
            _log.info(
                "relay housekeeping: %d idle task mailboxes, %d acknowledged messages, "
                "%d tasks removed",
                done.mailboxes,
                done.messages,
                done.tasks,
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
