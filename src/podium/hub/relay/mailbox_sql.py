"""The relay's mailboxes on SQLite or PostgreSQL, in the hub's own database.

The tables (``hub_relay_mailboxes``, ``hub_relay_messages``) are part of the hub's
metadata and migrations, so the store runs on an engine from
:func:`podium.hub.store.engine.create_hub_engine` that :func:`upgrade_to_head` has migrated,
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
- With ``frame_dir`` set, frames of at least ``file_threshold`` bytes go to files there
  (:mod:`podium.hub.relay.frame_files`): the row keeps the file's name and an empty
  ``frame``. The file is written before the row; a duplicate append deletes its new file,
  an acknowledgement deletes the message's file after commit (the acknowledged row, a
  tombstone, still names it), and
  :meth:`SqlMailboxStore.sweep_files` deletes old files that no row names (left by a hub
  that died between file and row, or by expired mailboxes). A row whose file is gone
  (lost with the machine's power, or deleted by hand) is logged and acknowledged as lost
  instead of blocking its mailbox.
- With ``notify_channel`` set (PostgreSQL only), an append that stores a new message
  also runs ``pg_notify(channel, mailbox)`` in its transaction: PostgreSQL delivers it
  at commit to every listening hub replica (see :mod:`podium.hub.relay.notify_pg`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from podium.hub.relay.frame_files import FrameFiles
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
from podium.hub.store.engine import SUPPORTED_BACKENDS
from podium.hub.store.migrate import WRITE_OPTION

__all__ = ["DEFAULT_FILE_THRESHOLD", "SqlMailboxStore"]

_log = logging.getLogger("podium.hub.relay")

#: Frames of at least this many bytes go to files when the store has a frame folder.
DEFAULT_FILE_THRESHOLD = 64 * 1024

#: Ids per ``UPDATE ... IN (...)``, well under SQLite's limit on bound parameters.
_ACK_CHUNK = 500

_boxes = t.relay_mailboxes
_messages = t.relay_messages
_tasks = t.relay_tasks


def _message(row: sa.RowMapping, frame: bytes) -> StoredMessage:
    return StoredMessage(
        mailbox=row["mailbox"],
        message_id=int(row["message_id"]),
        sender=row["sender"],
        task_id=row["task_id"],
        seq=int(row["seq"]),
        frame=frame,
        created_at=row["created_at"],
        acked_at=row["acked_at"],
    )


def _later(column: sa.ColumnElement[datetime], now: Any) -> sa.ColumnElement[datetime]:
    """``max(column, now)``: activity never moves backwards."""
    return sa.case((now > column, now), else_=column)


class SqlMailboxStore(MailboxStore):
    """Mailboxes on a migrated hub engine. The constructor does no I/O; the engine
    belongs to the caller (it is usually shared with the hub store), which disposes it.
    With ``frame_dir``, frames of ``file_threshold`` bytes or more are kept in files there
    (every hub replica on the database must see the same folder)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        notify_channel: str | None = None,
        frame_dir: Path | None = None,
        file_threshold: int = DEFAULT_FILE_THRESHOLD,
    ) -> None:
        if file_threshold < 1:
            raise ValueError("file_threshold must be positive")
        if engine.dialect.name not in SUPPORTED_BACKENDS:
            raise StoreError(
                f"the relay's mailboxes live on SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = engine.dialect.name == "postgresql"
        if notify_channel is not None and not self._postgres:
            raise StoreError("only PostgreSQL can notify other hub replicas")
        self._notify_channel = notify_channel
        self._files = None if frame_dir is None else FrameFiles(frame_dir)
        self._file_threshold = file_threshold
        self._build_statements()

    def _build_statements(self) -> None:
        """The hot path's statements, built once with bound parameters (``p_*``), so
        SQLAlchemy's compiled cache serves them instead of building each call anew."""
        c, b = _messages.c, sa.bindparam
        now = b("p_now", type_=t.UtcDateTime())
        upsert = self._insert(
            _boxes, {"name": b("p_mailbox"), "created_at": now, "last_active_at": now}
        )
        later = _later(_boxes.c.last_active_at, upsert.excluded.last_active_at)
        self._upsert_box = upsert.on_conflict_do_update(
            index_elements=["name"], set_={"last_active_at": later}
        )
        self._touch_box = (
            sa.update(_boxes)
            .where(_boxes.c.name == b("p_mailbox"))
            .values(last_active_at=_later(_boxes.c.last_active_at, now))
        )
        identity = ("mailbox", "sender", "task_id", "seq")
        values: dict[str, Any] = {key: b(f"p_{key}") for key in identity}
        values |= {"frame": b("p_frame"), "frame_file": b("p_frame_file"), "created_at": now}
        self._insert_message = (
            self._insert(_messages, values)
            .on_conflict_do_nothing(index_elements=list(identity))
            .returning(c.message_id)
        )
        self._existing = sa.select(_messages).where(*(c[key] == b(f"p_{key}") for key in identity))
        unacked = sa.select(_messages).where(c.mailbox == b("p_mailbox"), c.acked_at.is_(None))
        self._pending_first = unacked.order_by(c.message_id).limit(b("p_limit"))
        self._pending_after = (
            unacked.where(c.message_id > b("p_after")).order_by(c.message_id).limit(b("p_limit"))
        )
        self._ack_messages = (
            sa.update(_messages)
            .where(
                c.mailbox == b("p_mailbox"),
                c.message_id.in_(b("p_ids", expanding=True)),
                c.acked_at.is_(None),
            )
            .values(acked_at=now, frame=b"")  # the file goes after commit
            .returning(c.frame_file)
        )

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
        conn.execute(self._upsert_box, {"p_mailbox": mailbox, "p_now": now})

    def _frame_of(self, row: sa.RowMapping) -> bytes | None:
        """The row's frame, from its file if it has one (None: the file is gone)."""
        name = row["frame_file"]
        if name is None:
            return bytes(row["frame"])
        if self._files is None:
            raise StoreError(
                f"relay message {row['message_id']} is kept in a file, but this hub has no "
                "frame folder: start it with the folder its frames were written to"
            )
        return self._files.read(name)

    def _drop_lost(self, lost: list[sa.RowMapping]) -> None:
        """Acknowledge messages whose frame files are gone, so they stop blocking."""
        for row in lost:
            _log.error(
                "relay message %s in %s (from %s, seq %s) lost its frame file %s; "
                "dropping it: the recipient will see a gap in that stream",
                row["message_id"],
                row["mailbox"],
                row["sender"],
                row["seq"],
                row["frame_file"],
            )
        c = _messages.c
        with self._write() as conn:
            conn.execute(
                sa.update(_messages)
                .where(c.message_id.in_([row["message_id"] for row in lost]))
                .values(acked_at=sa.func.coalesce(c.acked_at, c.created_at), frame_file=None)
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
        in_file = self._files is not None and len(frame) >= self._file_threshold
        file_name = self._files.write(frame) if self._files is not None and in_file else None
        params = {f"p_{key}": value for key, value in identity.items()}
        values = {
            **params,
            "p_frame": b"" if in_file else frame,
            "p_frame_file": file_name,
            "p_now": now,
        }
        try:
            with self._write() as conn:
                self._activity(conn, mailbox, now)
                message_id = conn.execute(self._insert_message, values).scalar_one_or_none()
                if message_id is not None:
                    if self._notify_channel is not None:
                        conn.execute(sa.select(sa.func.pg_notify(self._notify_channel, mailbox)))
                    file_name = None  # the row owns the file now
                    return StoredMessage(mailbox, int(message_id), sender, task_id, seq, frame, now)
                row = conn.execute(self._existing, params).mappings().one()
        finally:
            if file_name is not None and self._files is not None:  # a duplicate, or failed
                self._files.delete([file_name])
        stored = self._frame_of(row)
        return _message(row, b"" if stored is None else stored)

    def pending(
        self, mailbox: str, *, after_id: int | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        check_limit(limit)
        params: dict[str, Any] = {"p_mailbox": mailbox, "p_limit": limit}
        stmt = self._pending_first
        if after_id is not None:
            stmt, params["p_after"] = self._pending_after, after_id
        with self._read() as conn:
            rows = list(conn.execute(stmt, params).mappings())
        messages: list[StoredMessage] = []
        lost: list[sa.RowMapping] = []
        for row in rows:
            frame = self._frame_of(row)
            if frame is None:
                lost.append(row)
            else:
                messages.append(_message(row, frame))
        if lost:
            self._drop_lost(lost)
        return messages

    def ack(self, mailbox: str, message_ids: Collection[int], now: datetime) -> int:
        now = require_aware(now)
        ids = sorted(set(message_ids))
        changed = 0
        files: list[str] = []
        with self._write() as conn:
            conn.execute(self._touch_box, {"p_mailbox": mailbox, "p_now": now})
            for start in range(0, len(ids), _ACK_CHUNK):
                chunk = {
                    "p_mailbox": mailbox,
                    "p_ids": ids[start : start + _ACK_CHUNK],
                    "p_now": now,
                }
                rows = conn.execute(self._ack_messages, chunk).all()
                changed += len(rows)
                files.extend(row.frame_file for row in rows if row.frame_file is not None)
        if files and self._files is not None:
            self._files.delete(files)
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

    def sweep_files(self, older_than: timedelta) -> int:
        """Delete frame files older than ``older_than`` that no message names."""
        if self._files is None:
            return 0
        c = _messages.c
        with self._read() as conn:
            pending_files = sa.select(c.frame_file).where(
                c.frame_file.is_not(None), c.acked_at.is_(None)
            )
            named = set(conn.execute(pending_files).scalars())
        return self._files.sweep(named, older_than.total_seconds())

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
