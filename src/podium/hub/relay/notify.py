"""Waking the connections that read a mailbox when a message lands in it.

The relay's connections wait on an :class:`asyncio.Event` each; a connection registers its
event for every mailbox it reads, and whoever stores a message calls
:meth:`MailboxNotifier.notify` with the mailbox's name. :class:`InProcessNotifier` wakes
the connections of this hub process only.

For N hub replicas on one PostgreSQL, :class:`podium.hub.relay.notify_pg.PostgresNotifier`
runs a ``LISTEN`` loop that calls :meth:`InProcessNotifier.wake` for each notification
(sent by the store in the append's transaction), so the replica holding the reader's
connection wakes it, whichever replica stored the message. A notifier with background
work does it between :meth:`MailboxNotifier.start` and :meth:`MailboxNotifier.stop`, which
the app's lifespan calls.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

__all__ = ["InProcessNotifier", "MailboxNotifier"]


class MailboxNotifier(ABC):
    """Who to wake when a mailbox gets a message. Called from the event loop only."""

    @abstractmethod
    def register(self, mailbox: str, wake: asyncio.Event) -> None:
        """Set ``wake`` whenever ``mailbox`` gets a message, until :meth:`unregister`."""

    @abstractmethod
    def unregister(self, mailbox: str, wake: asyncio.Event) -> None:
        """Stop setting ``wake`` for ``mailbox`` (no error if it was not registered)."""

    @abstractmethod
    async def notify(self, mailbox: str) -> None:
        """``mailbox`` has a new message: wake its readers (wherever they are connected)."""

    async def start(self) -> None:  # noqa: B027 - a hook: most notifiers need nothing
        """Start any background work (the app's lifespan calls it once)."""

    async def stop(self) -> None:  # noqa: B027 - a hook: most notifiers need nothing
        """Stop what :meth:`start` started."""


class InProcessNotifier(MailboxNotifier):
    """Wakes the readers connected to this process."""

    def __init__(self) -> None:
        self._readers: dict[str, set[asyncio.Event]] = {}

    def register(self, mailbox: str, wake: asyncio.Event) -> None:
        self._readers.setdefault(mailbox, set()).add(wake)

    def unregister(self, mailbox: str, wake: asyncio.Event) -> None:
        readers = self._readers.get(mailbox)
        if readers is None:
            return
        readers.discard(wake)
        if not readers:
            del self._readers[mailbox]

    def wake(self, mailbox: str) -> None:
        """Set the event of every local reader of ``mailbox``."""
        for event in self._readers.get(mailbox, ()):
            event.set()

    def wake_all(self) -> None:
        """Set the event of every local reader (they re-read their pending messages)."""
        for readers in self._readers.values():
            for event in readers:
                event.set()

    def readers(self, mailbox: str) -> int:
        """How many local connections read ``mailbox`` (for tests and metrics)."""
        return len(self._readers.get(mailbox, ()))

    async def notify(self, mailbox: str) -> None:
        self.wake(mailbox)
