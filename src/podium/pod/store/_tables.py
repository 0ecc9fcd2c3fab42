"""The pod DB's tables (SQLAlchemy Core) and its schema version.

Times are stored as UTC text by :class:`UtcDateTime` (UTC text sorts in time order) and
come back as aware UTC datetimes. JSON values are canonical JSON text, written and read by
the store itself so both versions of the store agree on what a value becomes.

Layout:

- ``pod_task_definitions``: one row per task hash.
- ``pod_task_runs``: one row per task id; the result as an opaque blob.
- ``pod_processed_files``: one row per (task hash, source, path, content hash), so every
  processed version of a file is kept; looked up by content hash for new-data-only runs.
- ``pod_failed_files``: one row per (task hash, source, path): the latest failure.
- ``pod_budget_spends``: the privacy ledger, one row per spend.
- ``pod_audit_events``: the audit log, ids never reused.
- ``pod_nonces``: nonces of accepted requests until they expire.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from podium.core.sqlite import UtcDateTime

__all__ = [
    "SCHEMA_VERSION",
    "UtcDateTime",
    "audit_events",
    "budget_spends",
    "failed_files",
    "metadata",
    "nonces",
    "processed_files",
    "task_definitions",
    "task_runs",
]

#: The schema this code writes, kept in ``PRAGMA user_version``. Bump it with a migration
#: step in :mod:`podium.pod.store.sql` whenever a table changes.
SCHEMA_VERSION = 1


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def _text(name: str, *, primary_key: bool = False, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), primary_key=primary_key, nullable=nullable)


metadata = sa.MetaData()

task_definitions = sa.Table(
    "pod_task_definitions",
    metadata,
    _text("task_hash", primary_key=True),
    sa.Column("definition", sa.Text(), nullable=False),
    _when("saved_at"),
)

task_runs = sa.Table(
    "pod_task_runs",
    metadata,
    _text("task_id", primary_key=True),
    _text("task_hash"),
    _text("modeller"),
    _text("status"),
    _when("started_at"),
    _when("ended_at", nullable=True),
    sa.Column("result", sa.LargeBinary(), nullable=True),
    sa.Column("result_size", sa.Integer(), nullable=True),
    sa.Index("ix_pod_task_runs_started", "started_at", "task_id"),
    sa.Index("ix_pod_task_runs_hash", "task_hash", "started_at", "task_id"),
)

processed_files = sa.Table(
    "pod_processed_files",
    metadata,
    _text("task_hash", primary_key=True),
    _text("source", primary_key=True),
    _text("path", primary_key=True),
    _text("content_hash", primary_key=True),
    sa.Column("mtime", sa.Float(), nullable=False),
    _when("processed_at"),
    sa.Index("ix_pod_processed_files_content", "task_hash", "source", "content_hash"),
)

failed_files = sa.Table(
    "pod_failed_files",
    metadata,
    _text("task_hash", primary_key=True),
    _text("source", primary_key=True),
    _text("path", primary_key=True),
    _text("content_hash"),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    _when("first_failed_at"),
    _when("last_failed_at"),
)

budget_spends = sa.Table(
    "pod_budget_spends",
    metadata,
    sa.Column("spend_id", sa.Integer(), primary_key=True, autoincrement=True),
    _text("modeller"),
    _text("source"),
    sa.Column("epsilon", sa.Float(), nullable=False),
    sa.Column("delta", sa.Float(), nullable=False),
    _text("task_id"),
    _when("spent_at"),
    sa.Index("ix_pod_budget_spends_who", "modeller", "source", "spend_id"),
    sqlite_autoincrement=True,
)

audit_events = sa.Table(
    "pod_audit_events",
    metadata,
    sa.Column("event_id", sa.Integer(), primary_key=True, autoincrement=True),
    _when("at"),
    _text("actor"),
    _text("action"),
    _text("task_id", nullable=True),
    _text("reason", nullable=True),
    sa.Column("details", sa.Text(), nullable=False),
    sqlite_autoincrement=True,
)

nonces = sa.Table(
    "pod_nonces",
    metadata,
    sa.Column("nonce", sa.LargeBinary(), primary_key=True),
    _when("expires_at"),
    sa.Index("ix_pod_nonces_expires", "expires_at"),
)
