"""Waking readers across hub replicas that share one PostgreSQL: ``LISTEN``/``NOTIFY``.

The SQL mailbox store, given ``notify_channel=CHANNEL``, runs ``pg_notify(CHANNEL,
mailbox)`` in the transaction that stores a message; PostgreSQL delivers it at commit to
every session listening on the channel. :class:`PostgresNotifier` keeps one such session
per hub process (psycopg's async connection, in autocommit) in a background task and
wakes the local readers of each notified mailbox. ``notify`` itself wakes the local
readers at once (the notification then wakes them a second time, which costs one empty
read).

If the listening connection drops, it is opened again with bounded exponential backoff;
after every (re)connection all local readers are woken once, so a message stored while
nobody listened is still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from podium.hub.relay.notify import InProcessNotifier

__all__ = ["CHANNEL", "PostgresNotifier", "conninfo_from_url"]

_log = logging.getLogger("podium.hub.relay.notify")

#: The channel every replica listens on; payloads are mailbox names.
CHANNEL = "podium_relay"


def conninfo_from_url(url: str) -> str:
    """A libpq connection URI from a SQLAlchemy URL (``postgresql+psycopg://...``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresNotifier(InProcessNotifier):
    """Wakes the readers of this process when any replica stores a message for them."""

    def __init__(
        self,
        conninfo: str,
        *,
        channel: str = CHANNEL,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        ready_timeout_s: float = 5.0,
    ) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._channel = channel
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._ready_timeout_s = ready_timeout_s
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._was_up = False
        self.connections = 0  # how many times the listener has (re)connected

    @property
    def listening(self) -> bool:
        """Whether the listening connection is up."""
        return self._listening.is_set()

    async def start(self) -> None:
        """Start listening; wait (bounded) for the first connection, so messages stored
        from then on wake this process's readers without delay."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._listen_forever(), name="relay-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ready_timeout_s):
                await self._listening.wait()
        if not self.listening:
            _log.warning("relay listener not connected yet; it keeps trying")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _listen_forever(self) -> None:
        backoff = self._min_backoff_s
        while True:
            self._was_up = False
            try:
                await self._listen_once()
            except (psycopg.Error, OSError) as error:
                _log.warning("relay listener lost its connection (%s); retrying", error)
            finally:
                self._listening.clear()
            if self._was_up:
                backoff = self._min_backoff_s
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        async with conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.connections += 1
            self._was_up = True
            self._listening.set()
            _log.info("relay listener on channel %s", self._channel)
            self.wake_all()  # anything stored while nobody listened is read now
            async for notification in conn.notifies():
                self.wake(notification.payload)
