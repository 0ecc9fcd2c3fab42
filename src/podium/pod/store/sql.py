"""The pod DB on SQLite, through SQLAlchemy Core.

Every method runs in one transaction; writers begin with ``BEGIN IMMEDIATE``, so
concurrent writers (threads, or a second process on the same file) queue on the busy
timeout instead of failing half-way, and a check-then-write (the budget check, a nonce,
a failure count) cannot interleave with another. The database runs in WAL mode with
``synchronous=NORMAL``: a crash of the process loses no committed transaction and never
leaves a half-written one.

The file is created with mode 0600 (WAL and shared-memory files inherit it) and a folder
the store creates gets 0700: the pod DB holds results and the privacy ledger. The schema
version lives in ``PRAGMA user_version``; a database from a newer Podium is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from podium.pod.store import _tables as t
from podium.pod.store._sqlite import WRITE_OPTION, connect
from podium.pod.store.base import (
    AlreadyExistsError,
    AuditEvent,
    BudgetSpend,
    FailedFile,
    FileVersion,
    NewAuditEvent,
    PodStore,
    PodStoreError,
    ProcessedFile,
    SpendRequest,
    TaskDefinition,
    TaskRun,
    TaskRunStatus,
    check_files,
    check_page,
    end_status,
    from_json,
    to_json,
    utc,
)

__all__ = ["SqlitePodStore", "open_pod_store"]

#: Content hashes looked up per query (SQLite caps bound parameters per statement).
_LOOKUP_CHUNK = 500

_RUN_COLUMNS = [c for c in t.task_runs.c if c.name != "result"]


def open_pod_store(path: str | os.PathLike[str]) -> SqlitePodStore:
    """Open (creating it if needed) the pod DB at ``path``; the caller closes it."""
    return SqlitePodStore(path).open()


class SqlitePodStore(PodStore):
    """The pod DB in one SQLite file. The constructor does no I/O: :meth:`open` (or
    :func:`open_pod_store`, or ``with``) creates the file and its schema."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path).expanduser()
        self._engine: sa.Engine | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def open(self) -> SqlitePodStore:
        """Create the folder and file if needed, check the schema version and create the
        tables; a no-op if open already. Returns the store."""
        if self._engine is not None:
            return self
        self._engine = connect(self._path)
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> SqlitePodStore:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """The engine of an open store."""
        if self._engine is None:
            raise PodStoreError(
                f"the pod DB at {self._path} is not open: call open() or use open_pod_store()"
            )
        return self._engine

    def _read(self) -> AbstractContextManager[sa.Connection]:
        return self.engine.begin()

    def _write(self) -> AbstractContextManager[sa.Connection]:
        return self.engine.execution_options(**{WRITE_OPTION: True}).begin()

    # -- task definitions --------------------------------------------------------------

    def save_task_definition(
        self, task_hash: str, definition: dict[str, Any], now: datetime
    ) -> bool:
        text, at = to_json(definition, "definition"), utc(now)
        table = t.task_definitions
        with self._write() as conn:
            stored = conn.execute(
                sa.select(table.c.definition).where(table.c.task_hash == task_hash)
            ).scalar_one_or_none()
            if stored is None:
                conn.execute(
                    sa.insert(table).values(task_hash=task_hash, definition=text, saved_at=at)
                )
                return True
        if stored != text:
            raise AlreadyExistsError(f"task hash {task_hash!r} holds a different definition")
        return False

    def get_task_definition(self, task_hash: str) -> TaskDefinition | None:
        table = t.task_definitions
        with self._read() as conn:
            row = conn.execute(sa.select(table).where(table.c.task_hash == task_hash)).first()
        if row is None:
            return None
        return TaskDefinition(task_hash, from_json(row.definition), row.saved_at)

    # -- task runs ---------------------------------------------------------------------

    def record_task_start(
        self, task_id: str, task_hash: str, modeller: str, now: datetime
    ) -> TaskRun:
        run = TaskRun(task_id, task_hash, modeller, TaskRunStatus.RUNNING, utc(now))
        values = {
            "task_id": task_id,
            "task_hash": task_hash,
            "modeller": modeller,
            "status": run.status.value,
            "started_at": run.started_at,
        }
        try:
            with self._write() as conn:
                conn.execute(sa.insert(t.task_runs).values(values))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(f"task run {task_id!r} was started already") from exc
        return run

    def record_task_end(
        self, task_id: str, status: TaskRunStatus | str, result: bytes | None, now: datetime
    ) -> bool:
        ended, at = end_status(status), utc(now)
        if result is not None and not isinstance(result, bytes):
            raise ValueError(f"result must be bytes or None, not {type(result).__name__}")
        stmt = (
            sa.update(t.task_runs)
            .where(
                t.task_runs.c.task_id == task_id,
                t.task_runs.c.status == TaskRunStatus.RUNNING.value,
            )
            .values(
                status=ended.value,
                ended_at=at,
                result=result,
                result_size=None if result is None else len(result),
            )
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def get_task_run(self, task_id: str) -> TaskRun | None:
        stmt = sa.select(*_RUN_COLUMNS).where(t.task_runs.c.task_id == task_id)
        with self._read() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _run(row)

    def get_task_result(self, task_id: str) -> bytes | None:
        stmt = sa.select(t.task_runs.c.result).where(t.task_runs.c.task_id == task_id)
        with self._read() as conn:
            result: bytes | None = conn.execute(stmt).scalar_one_or_none()
        return result

    def list_task_runs(
        self, task_hash: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[TaskRun]:
        check_page(limit, offset)
        c = t.task_runs.c
        stmt = sa.select(*_RUN_COLUMNS).order_by(c.started_at.desc(), c.task_id.desc())
        if task_hash is not None:
            stmt = stmt.where(c.task_hash == task_hash)
        with self._read() as conn:
            rows = conn.execute(stmt.limit(limit).offset(offset)).mappings().all()
        return [_run(row) for row in rows]

    # -- processed files ---------------------------------------------------------------

    def mark_files_processed(
        self, task_hash: str, source: str, files: Iterable[FileVersion], now: datetime
    ) -> None:
        checked, at = check_files(files), utc(now)
        if not checked:
            return
        rows = [
            {
                "task_hash": task_hash,
                "source": source,
                "path": f.path,
                "content_hash": f.content_hash,
                "mtime": float(f.mtime),
                "processed_at": at,
            }
            for f in checked
        ]
        stmt = sqlite.insert(t.processed_files)
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.name for c in t.processed_files.primary_key.columns],
            set_={"mtime": stmt.excluded.mtime, "processed_at": stmt.excluded.processed_at},
        )
        with self._write() as conn:
            conn.execute(stmt, rows)

    def processed_files(self, task_hash: str, source: str) -> list[ProcessedFile]:
        c = t.processed_files.c
        stmt = (
            sa.select(c.path, c.content_hash, c.mtime, c.processed_at)
            .where(c.task_hash == task_hash, c.source == source)
            .order_by(c.path, c.content_hash)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [ProcessedFile(r.path, r.content_hash, r.mtime, r.processed_at) for r in rows]

    def new_files(
        self, task_hash: str, source: str, candidates: Iterable[FileVersion]
    ) -> list[FileVersion]:
        checked = check_files(candidates)
        wanted = sorted({f.content_hash for f in checked})
        c = t.processed_files.c
        seen: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                stmt = sa.select(c.content_hash).distinct()
                stmt = stmt.where(
                    c.task_hash == task_hash, c.source == source, c.content_hash.in_(chunk)
                )
                seen.update(conn.execute(stmt).scalars())
        return [f for f in checked if f.content_hash not in seen]

    # -- failed files ------------------------------------------------------------------

    def record_failed_file(
        self,
        task_hash: str,
        source: str,
        path: str,
        content_hash: str,
        *,
        error: str,
        now: datetime,
    ) -> FailedFile:
        check_files([FileVersion(path, content_hash, 0.0)])
        at = utc(now)
        table = t.failed_files
        key = (table.c.task_hash == task_hash, table.c.source == source, table.c.path == path)
        with self._write() as conn:
            old = conn.execute(sa.select(table).where(*key)).first()
            if old is not None and old.content_hash == content_hash:
                failed = FailedFile(
                    path, content_hash, error, old.attempts + 1, old.first_failed_at, at
                )
            else:
                failed = FailedFile(path, content_hash, error, 1, at, at)
            values = {
                "content_hash": content_hash,
                "error": error,
                "attempts": failed.attempts,
                "first_failed_at": failed.first_failed_at,
                "last_failed_at": at,
            }
            if old is None:
                conn.execute(
                    sa.insert(table).values(task_hash=task_hash, source=source, path=path, **values)
                )
            else:
                conn.execute(sa.update(table).where(*key).values(values))
        return failed

    def failed_files(self, task_hash: str, source: str) -> list[FailedFile]:
        table = t.failed_files
        stmt = (
            sa.select(table)
            .where(table.c.task_hash == task_hash, table.c.source == source)
            .order_by(table.c.path)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [
            FailedFile(
                r.path, r.content_hash, r.error, r.attempts, r.first_failed_at, r.last_failed_at
            )
            for r in rows
        ]

    def clear_failed_file(self, task_hash: str, source: str, path: str) -> bool:
        c = t.failed_files.c
        stmt = sa.delete(t.failed_files).where(
            c.task_hash == task_hash, c.source == source, c.path == path
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    # -- privacy ledger ----------------------------------------------------------------

    def spend_budget(
        self,
        modeller: str,
        source: str,
        epsilon: float,
        delta: float,
        *,
        task_id: str,
        now: datetime,
        cap_epsilon: float | None,
        cap_delta: float | None,
    ) -> bool:
        spend = SpendRequest.checked(epsilon, delta, now, cap_epsilon, cap_delta)
        with self._write() as conn:
            spent = conn.execute(_amounts(modeller, source)).all()
            if not spend.fits((r.epsilon, r.delta) for r in spent):
                return False
            values = {
                "epsilon": spend.epsilon,
                "delta": spend.delta,
                "task_id": task_id,
                "spent_at": spend.at,
            }
            conn.execute(
                sa.insert(t.budget_spends).values(modeller=modeller, source=source, **values)
            )
            return True

    def budget_spent(self, modeller: str, source: str) -> tuple[float, float]:
        with self._read() as conn:
            spent = conn.execute(_amounts(modeller, source)).all()
        return math.fsum(r.epsilon for r in spent), math.fsum(r.delta for r in spent)

    def budget_spends(self, modeller: str, source: str) -> list[BudgetSpend]:
        c = t.budget_spends.c
        stmt = (
            sa.select(t.budget_spends)
            .where(c.modeller == modeller, c.source == source)
            .order_by(c.spend_id)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [BudgetSpend(**row) for row in rows]

    # -- audit log ---------------------------------------------------------------------

    def audit(self, event: NewAuditEvent) -> AuditEvent:
        at, text = utc(event.at, "event.at"), to_json(event.details, "details")
        values: dict[str, Any] = {
            "at": at,
            "actor": event.actor,
            "action": event.action,
            "task_id": event.task_id,
            "reason": event.reason,
        }
        with self._write() as conn:
            key = conn.execute(sa.insert(t.audit_events).values(details=text, **values))
        event_id = key.inserted_primary_key
        if event_id is None or event_id[0] is None:  # pragma: no cover - SQLite returns it
            raise PodStoreError("the pod DB did not return the new audit event's id")
        return AuditEvent(event_id=int(event_id[0]), details=from_json(text), **values)

    def audit_events(self, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        check_page(limit)
        c = t.audit_events.c
        stmt = sa.select(t.audit_events).order_by(c.event_id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(c.event_id < before_id)
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [AuditEvent(**{**row, "details": from_json(row["details"])}) for row in rows]

    # -- nonces ------------------------------------------------------------------------

    def remember_nonce(self, nonce: bytes, now: datetime, expires_at: datetime) -> bool:
        at, until = utc(now), utc(expires_at, "expires_at")
        if not isinstance(nonce, bytes):
            raise ValueError(f"nonce must be bytes, not {type(nonce).__name__}")
        table = t.nonces
        insert = sqlite.insert(table).values(nonce=nonce, expires_at=until)
        with self._write() as conn:
            conn.execute(sa.delete(table).where(table.c.expires_at <= at))
            stmt = insert.on_conflict_do_nothing().execution_options(preserve_rowcount=True)
            return conn.execute(stmt).rowcount == 0


# -- rows ------------------------------------------------------------------------------


def _run(row: sa.RowMapping) -> TaskRun:
    return TaskRun(
        task_id=row["task_id"],
        task_hash=row["task_hash"],
        modeller=row["modeller"],
        status=TaskRunStatus(row["status"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        result_size=row["result_size"],
    )


def _amounts(modeller: str, source: str) -> sa.Select[tuple[float, float]]:
    c = t.budget_spends.c
    return sa.select(c.epsilon, c.delta).where(c.modeller == modeller, c.source == source)
