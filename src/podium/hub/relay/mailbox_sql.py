"""The relay's mailboxes on SQLite or PostgreSQL, in the hub's own database.

The tables (``hub_relay_mailboxes``, ``hub_relay_messages``) are part of the hub's
metadata and migrations, so the store runs on an engine from
:func:`podium.hub.store.sql.create_hub_engine` that :func:`upgrade_to_head` has migrated,
usually the very engine of the hub store.

How the guarantees of :mod:`podium.hub.relay.mailbox` are kept:

- An append first upserts the mailbox row (its activity time), which locks that row
  until commit (on SQLite, ``BEGIN IMMEDIATE`` serialises every writer). Appends to one
  mailbox therefore take their ids and commit one after the other, which makes the id a
  safe cursor for ``pending(after_id=...)``.
- The message is then inserted with ``ON CONFLICT DO NOTHING`` on the unique
  ``(mailbox, sender, task_id, seq)``; when nothing was inserted the existing row is read
  back in the same transaction. Ids come from an identity column on PostgreSQL and an
  ``AUTOINCREMENT`` rowid on SQLite, so they are never reused.
- ``ack`` is one conditional ``UPDATE`` (``acked_at IS NULL``) whose row count is the
  answer; it empties the frame at the same time.
- ``expire`` deletes idle task mailboxes; their messages go by ``ON DELETE CASCADE``.
- ``register_task`` inserts with ``ON CONFLICT DO NOTHING`` and reads the row back in the
  same transaction: whichever registration committed first owns the task.
- With ``notify_channel`` set (PostgreSQL only), an append that stores a new message
  also runs ``pg_notify(channel, mailbox)`` in its transaction: PostgreSQL delivers it
  at commit to every listening hub replica (see :mod:`podium.hub.relay.notify_pg`).
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from podium.hub.relay.mailbox import (
    TASK_MAILBOX_PREFIX,
    Mailbox,
    MailboxStore,
    StoredMessage,
    check_limit,
    require_aware,
)
from podium.hub.store import _tables as t
from podium.hub.store.base import StoreError
from podium.hub.store.migrate import WRITE_OPTION

__all__ = ["SqlMailboxStore"]

_SUPPORTED = ("sqlite", "postgresql")

#: Ids per ``UPDATE ... IN (...)``, well under SQLite's limit on bound parameters.
_ACK_CHUNK = 500

_boxes = t.relay_mailboxes
_messages = t.relay_messages
_tasks = t.relay_tasks


def _message(row: sa.RowMapping) -> StoredMessage:
    return StoredMessage(
        mailbox=row["mailbox"],
        message_id=int(row["message_id"]),
        sender=row["sender"],
        task_id=row["task_id"],
        seq=int(row["seq"]),
        frame=bytes(row["frame"]),
        created_at=row["created_at"],
        acked_at=row["acked_at"],
    )


def _later(column: sa.ColumnElement[datetime], now: Any) -> sa.ColumnElement[datetime]:
    """``max(column, now)``: activity never moves backwards."""
    return sa.case((now > column, now), else_=column)


class SqlMailboxStore(MailboxStore):
    """Mailboxes on a migrated hub engine. The constructor does no I/O; the engine
    belongs to the caller (it is usually shared with the hub store), which disposes it."""

    def __init__(self, engine: sa.Engine, *, notify_channel: str | None = None) -> None:
        if engine.dialect.name not in _SUPPORTED:
            raise StoreError(
                f"the relay's mailboxes live on SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = engine.dialect.name == "postgresql"
        if notify_channel is not None and not self._postgres:
            raise StoreError("only PostgreSQL can notify other hub replicas")
        self._notify_channel = notify_channel

    @property
    def engine(self) -> sa.Engine:
        """The engine the store runs on."""
        return self._engine

    # -- helpers -----------------------------------------------------------------------

    def _read(self) -> AbstractContextManager[sa.Connection]:
        return self._engine.begin()

    def _write(self) -> AbstractContextManager[sa.Connection]:
        return self._writer.begin()

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> postgresql.Insert | sqlite.Insert:
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        return dialect_insert(table).values(values)

    def _activity(self, conn: sa.Connection, mailbox: str, now: datetime) -> None:
        """Create the mailbox or move its activity time on (locking its row)."""
        stmt = self._insert(_boxes, {"name": mailbox, "created_at": now, "last_active_at": now})
        later = _later(_boxes.c.last_active_at, stmt.excluded.last_active_at)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["name"], set_={"last_active_at": later})
        )

    # -- the store ---------------------------------------------------------------------

    def append(
        self, mailbox: str, *, sender: str, task_id: str, seq: int, frame: bytes, now: datetime
    ) -> StoredMessage:
        now = require_aware(now)
        identity: dict[str, Any] = {
            "mailbox": mailbox,
            "sender": sender,
            "task_id": task_id,
            "seq": seq,
        }
        frame = bytes(frame)
        values = {**identity, "frame": frame, "created_at": now, "acked_at": None}
        with self._write() as conn:
            self._activity(conn, mailbox, now)
            stmt = (
                self._insert(_messages, values)
                .on_conflict_do_nothing(index_elements=list(identity))
                .returning(_messages.c.message_id)
            )
            message_id = conn.execute(stmt).scalar_one_or_none()
            if message_id is not None:
                if self._notify_channel is not None:
                    conn.execute(sa.select(sa.func.pg_notify(self._notify_channel, mailbox)))
                return StoredMessage(mailbox, int(message_id), sender, task_id, seq, frame, now)
            c = _messages.c
            existing = sa.select(_messages).where(*(c[k] == v for k, v in identity.items()))
            return _message(conn.execute(existing).mappings().one())

    def pending(
        self, mailbox: str, *, after_id: int | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        check_limit(limit)
        c = _messages.c
        stmt = sa.select(_messages).where(c.mailbox == mailbox, c.acked_at.is_(None))
        if after_id is not None:
            stmt = stmt.where(c.message_id > after_id)
        stmt = stmt.order_by(c.message_id).limit(limit)
        with self._read() as conn:
            return [_message(row) for row in conn.execute(stmt).mappings()]

    def ack(self, mailbox: str, message_ids: Collection[int], now: datetime) -> int:
        now = require_aware(now)
        ids = sorted(set(message_ids))
        c = _messages.c
        changed = 0
        with self._write() as conn:
            activity = (
                sa.update(_boxes)
                .where(_boxes.c.name == mailbox)
                .values(
                    last_active_at=_later(_boxes.c.last_active_at, sa.literal(now, t.UtcDateTime()))
                )
            )
            conn.execute(activity)
            for start in range(0, len(ids), _ACK_CHUNK):
                stmt = (
                    sa.update(_messages)
                    .where(
                        c.mailbox == mailbox,
                        c.message_id.in_(ids[start : start + _ACK_CHUNK]),
                        c.acked_at.is_(None),
                    )
                    .values(acked_at=now, frame=b"")
                )
                changed += conn.execute(stmt).rowcount
        return changed

    def touch(self, mailbox: str, now: datetime) -> None:
        now = require_aware(now)
        with self._write() as conn:
            self._activity(conn, mailbox, now)

    def get_mailbox(self, mailbox: str) -> Mailbox | None:
        with self._read() as conn:
            row = conn.execute(sa.select(_boxes).where(_boxes.c.name == mailbox)).mappings().first()
        if row is None:
            return None
        return Mailbox(row["name"], row["created_at"], row["last_active_at"])

    def count(self, mailbox: str) -> int:
        c = _messages.c
        stmt = (
            sa.select(sa.func.count())
            .select_from(_messages)
            .where(c.mailbox == mailbox, c.acked_at.is_(None))
        )
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def expire(self, now: datetime, idle_for: timedelta) -> int:
        cutoff = require_aware(now) - idle_for
        c = _boxes.c
        # substr, not LIKE: SQLite's LIKE ignores ASCII case.
        prefix = sa.func.substr(c.name, 1, len(TASK_MAILBOX_PREFIX))
        stmt = sa.delete(_boxes).where(prefix == TASK_MAILBOX_PREFIX, c.last_active_at < cutoff)
        with self._write() as conn:
            return int(conn.execute(stmt).rowcount)

    def purge_acked(self, acked_before: datetime) -> int:
        cutoff = require_aware(acked_before)
        stmt = sa.delete(_messages).where(_messages.c.acked_at < cutoff)
        with self._write() as conn:
            return int(conn.execute(stmt).rowcount)

    def register_task(self, task_id: str, requester: str, pod_party: str, now: datetime) -> bool:
        now = require_aware(now)
        values = {
            "task_id": task_id,
            "owner_party": requester,
            "pod_party": pod_party,
            "created_at": now,
            "last_active_at": now,
        }
        c = _tasks.c
        with self._write() as conn:
            conn.execute(self._insert(_tasks, values).on_conflict_do_nothing())
            activity = (
                sa.update(_tasks)
                .where(c.task_id == task_id, c.owner_party == requester, c.pod_party == pod_party)
                .values(last_active_at=_later(c.last_active_at, sa.literal(now, t.UtcDateTime())))
            )
            return int(conn.execute(activity).rowcount) == 1

    def task_participants(self, task_id: str) -> frozenset[str] | None:
        stmt = sa.select(_tasks.c.owner_party, _tasks.c.pod_party).where(
            _tasks.c.task_id == task_id
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else frozenset((row.owner_party, row.pod_party))

    def expire_tasks(self, now: datetime, idle_for: timedelta) -> int:
        cutoff = require_aware(now) - idle_for
        c = _tasks.c
        prefix = sa.literal(TASK_MAILBOX_PREFIX) + c.task_id + sa.literal("/")
        box_prefix = sa.func.substr(_boxes.c.name, 1, sa.func.length(prefix))
        has_mailbox = sa.exists().where(box_prefix == prefix)
        stmt = sa.delete(_tasks).where(c.last_active_at < cutoff, ~has_mailbox)
        with self._write() as conn:
            return int(conn.execute(stmt).rowcount)
