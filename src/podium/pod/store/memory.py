"""The in-memory twin of the pod DB: for tests and pods run without ``pod_db``.

It keeps the SQLite version's guarantees (each method all or nothing, the budget check
and the nonce check atomic) by checking every argument before changing anything and
holding one lock around each method.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from podium.pod.store.base import (
    AlreadyExistsError,
    AuditEvent,
    BudgetSpend,
    FailedFile,
    FileVersion,
    NewAuditEvent,
    PodStore,
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

__all__ = ["InMemoryPodStore"]

_FileKey = tuple[str, str, str]  # task hash, source, path


class InMemoryPodStore(PodStore):
    """Every record in dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._definitions: dict[str, tuple[str, datetime]] = {}
        self._runs: dict[str, TaskRun] = {}
        self._results: dict[str, bytes] = {}
        self._processed: dict[tuple[str, str], dict[tuple[str, str], ProcessedFile]] = {}
        self._failed: dict[_FileKey, FailedFile] = {}
        self._spends: list[BudgetSpend] = []
        self._audit: list[AuditEvent] = []
        self._nonces: dict[bytes, datetime] = {}
        self._nonce_queue: list[tuple[datetime, bytes]] = []

    # -- task definitions --------------------------------------------------------------

    def save_task_definition(
        self, task_hash: str, definition: dict[str, Any], now: datetime
    ) -> bool:
        text, at = to_json(definition, "definition"), utc(now)
        with self._lock:
            stored = self._definitions.get(task_hash)
            if stored is None:
                self._definitions[task_hash] = (text, at)
                return True
        if stored[0] != text:
            raise AlreadyExistsError(f"task hash {task_hash!r} holds a different definition")
        return False

    def get_task_definition(self, task_hash: str) -> TaskDefinition | None:
        with self._lock:
            stored = self._definitions.get(task_hash)
        if stored is None:
            return None
        return TaskDefinition(
            task_hash=task_hash, definition=from_json(stored[0]), saved_at=stored[1]
        )

    # -- task runs ---------------------------------------------------------------------

    def record_task_start(
        self, task_id: str, task_hash: str, modeller: str, now: datetime
    ) -> TaskRun:
        run = TaskRun(
            task_id=task_id,
            task_hash=task_hash,
            modeller=modeller,
            status=TaskRunStatus.RUNNING,
            started_at=utc(now),
        )
        with self._lock:
            if task_id in self._runs:
                raise AlreadyExistsError(f"task run {task_id!r} was started already")
            self._runs[task_id] = run
        return run

    def record_task_end(
        self, task_id: str, status: TaskRunStatus | str, result: bytes | None, now: datetime
    ) -> bool:
        ended, at = end_status(status), utc(now)
        if result is not None and not isinstance(result, bytes):
            raise ValueError(f"result must be bytes or None, not {type(result).__name__}")
        with self._lock:
            run = self._runs.get(task_id)
            if run is None or run.status is not TaskRunStatus.RUNNING:
                return False
            size = None if result is None else len(result)
            self._runs[task_id] = replace(run, status=ended, ended_at=at, result_size=size)
            if result is not None:
                self._results[task_id] = result
            return True

    def get_task_run(self, task_id: str) -> TaskRun | None:
        with self._lock:
            return self._runs.get(task_id)

    def get_task_result(self, task_id: str) -> bytes | None:
        with self._lock:
            return self._results.get(task_id)

    def list_task_runs(
        self, task_hash: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[TaskRun]:
        check_page(limit, offset)
        with self._lock:
            runs = [r for r in self._runs.values() if task_hash in (None, r.task_hash)]
        runs.sort(key=lambda r: (r.started_at, r.task_id), reverse=True)
        return runs[offset : offset + limit]

    # -- processed files ---------------------------------------------------------------

    def mark_files_processed(
        self, task_hash: str, source: str, files: Iterable[FileVersion], now: datetime
    ) -> None:
        checked, at = check_files(files), utc(now)
        with self._lock:
            done = self._processed.setdefault((task_hash, source), {})
            for item in checked:
                done[(item.path, item.content_hash)] = ProcessedFile(
                    path=item.path,
                    content_hash=item.content_hash,
                    mtime=float(item.mtime),
                    processed_at=at,
                )

    def processed_files(self, task_hash: str, source: str) -> list[ProcessedFile]:
        with self._lock:
            done = dict(self._processed.get((task_hash, source), {}))
        return [done[key] for key in sorted(done)]

    def new_files(
        self, task_hash: str, source: str, candidates: Iterable[FileVersion]
    ) -> list[FileVersion]:
        checked = check_files(candidates)
        with self._lock:
            seen = {h for _, h in self._processed.get((task_hash, source), {})}
        return [item for item in checked if item.content_hash not in seen]

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
        with self._lock:
            old = self._failed.get((task_hash, source, path))
            if old is not None and old.content_hash == content_hash:
                new = replace(old, error=error, attempts=old.attempts + 1, last_failed_at=at)
            else:
                new = FailedFile(path, content_hash, error, 1, at, at)
            self._failed[(task_hash, source, path)] = new
            return new

    def failed_files(self, task_hash: str, source: str) -> list[FailedFile]:
        with self._lock:
            found = [f for (h, s, _), f in self._failed.items() if (h, s) == (task_hash, source)]
        return sorted(found, key=lambda f: f.path)

    def clear_failed_file(self, task_hash: str, source: str, path: str) -> bool:
        with self._lock:
            return self._failed.pop((task_hash, source, path), None) is not None

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
        with self._lock:
            spends = [s for s in self._spends if (s.modeller, s.source) == (modeller, source)]
            if not spend.fits((s.epsilon, s.delta) for s in spends):
                return False
            self._spends.append(
                BudgetSpend(
                    len(self._spends) + 1,
                    modeller,
                    source,
                    spend.epsilon,
                    spend.delta,
                    task_id,
                    spend.at,
                )
            )
            return True

    def budget_spent(self, modeller: str, source: str) -> tuple[float, float]:
        spends = self.budget_spends(modeller, source)
        return math.fsum(s.epsilon for s in spends), math.fsum(s.delta for s in spends)

    def budget_spends(self, modeller: str, source: str) -> list[BudgetSpend]:
        with self._lock:
            return [s for s in self._spends if (s.modeller, s.source) == (modeller, source)]

    # -- audit log ---------------------------------------------------------------------

    def audit(self, event: NewAuditEvent) -> AuditEvent:
        at, details = utc(event.at, "event.at"), from_json(to_json(event.details, "details"))
        with self._lock:
            stored = AuditEvent(
                event_id=len(self._audit) + 1,
                at=at,
                actor=event.actor,
                action=event.action,
                task_id=event.task_id,
                reason=event.reason,
                details=details,
            )
            self._audit.append(stored)
        return stored

    def audit_events(self, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        check_page(limit)
        with self._lock:
            events = list(self._audit)
        if before_id is not None:
            events = [e for e in events if e.event_id < before_id]
        return events[::-1][:limit]

    # -- nonces ------------------------------------------------------------------------

    def remember_nonce(self, nonce: bytes, now: datetime, expires_at: datetime) -> bool:
        at, until = utc(now), utc(expires_at, "expires_at")
        if not isinstance(nonce, bytes):
            raise ValueError(f"nonce must be bytes, not {type(nonce).__name__}")
        with self._lock:
            while self._nonce_queue and self._nonce_queue[0][0] <= at:
                expiry, old = heapq.heappop(self._nonce_queue)
                if self._nonces.get(old) == expiry:
                    del self._nonces[old]
            if nonce in self._nonces:
                return True
            self._nonces[nonce] = until
            heapq.heappush(self._nonce_queue, (until, nonce))
            return False
