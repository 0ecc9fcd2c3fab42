"""The pod DB: one interface, an in-memory twin and a SQLite version.

The pod keeps here what must outlive a task and a restart: task definitions by hash,
task runs and their results, which files each task has processed (what
``run_on_new_data_only`` reads) and which failed (what the resilience phase retries), the
privacy-budget ledger, the audit log and the nonces of accepted requests.

Every method is one transaction: it happens whole or not at all. Times are
timezone-aware datetimes passed in by the caller (naive ones are refused with
:class:`ValueError`) and come back in UTC. JSON values (task definitions, audit details)
are stored as canonical JSON and come back as plain JSON types (tuples become lists).

One contract suite (``tests/pod/test_pod_store_contract.py``) runs against every version.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from podium.core.errors import ExitCode, PodiumError

__all__ = [
    "AlreadyExistsError",
    "AuditEvent",
    "BudgetSpend",
    "FailedFile",
    "FileVersion",
    "NewAuditEvent",
    "PodStore",
    "PodStoreError",
    "ProcessedFile",
    "SchemaVersionError",
    "TaskDefinition",
    "TaskRun",
    "TaskRunStatus",
]


class PodStoreError(PodiumError):
    """The pod DB cannot be opened or used, or was asked for something impossible."""

    exit_code = ExitCode.CONFIG


class SchemaVersionError(PodStoreError):
    """The pod DB was written by a newer Podium than this one."""


class AlreadyExistsError(PodStoreError):
    """A record with the same identity exists and differs from the one given."""


class TaskRunStatus(StrEnum):
    """Where a task run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A task's canonical definition, stored once per hash."""

    task_hash: str
    definition: dict[str, Any]
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One run of a task on this pod. The result itself (opaque bytes) is read with
    :meth:`PodStore.get_task_result`; ``result_size`` says whether there is one."""

    task_id: str
    task_hash: str
    modeller: str
    status: TaskRunStatus
    started_at: datetime
    ended_at: datetime | None = None
    result_size: int | None = None


@dataclass(frozen=True, slots=True)
class FileVersion:
    """A file as the pod sees it now: its path, the hash of its content and its
    modification time (seconds since the epoch, as ``os.stat`` gives it)."""

    path: str
    content_hash: str
    mtime: float


@dataclass(frozen=True, slots=True)
class ProcessedFile:
    """A file version a task has processed."""

    path: str
    content_hash: str
    mtime: float
    processed_at: datetime


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file that failed for a task; ``attempts`` counts failures of this content."""

    path: str
    content_hash: str
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


@dataclass(frozen=True, slots=True)
class BudgetSpend:
    """One entry of the privacy-budget ledger."""

    spend_id: int
    modeller: str
    source: str
    epsilon: float
    delta: float
    task_id: str
    spent_at: datetime


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    """An audit event to append; the store assigns its id."""

    at: datetime
    actor: str
    action: str
    task_id: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An audit event as stored."""

    event_id: int
    at: datetime
    actor: str
    action: str
    task_id: str | None
    reason: str | None
    details: dict[str, Any]


# -- checks shared by every version ----------------------------------------------------


def utc(value: datetime, name: str = "now") -> datetime:
    """``value`` in UTC; :class:`ValueError` if it is naive."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r} is naive: the pod DB takes timezone-aware times")
    return value.astimezone(UTC)


def to_json(value: dict[str, Any], name: str) -> str:
    """``value`` as canonical JSON text; :class:`ValueError` if it is not JSON."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, not {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not JSON: {exc}") from exc


def from_json(text: str) -> dict[str, Any]:
    """The dict stored as ``text``."""
    value: dict[str, Any] = json.loads(text)
    return value


def check_amount(value: float, name: str) -> float:
    """A finite, non-negative privacy amount (epsilon, delta or a cap)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and not negative, got {value!r}")
    return float(value)


def check_files(files: Iterable[FileVersion]) -> list[FileVersion]:
    """The file versions, each checked: a non-empty path and hash, a finite mtime."""
    checked = list(files)
    for number, item in enumerate(checked):
        if not isinstance(item, FileVersion):
            raise ValueError(f"file #{number} is a {type(item).__name__}, not a FileVersion")
        if not isinstance(item.path, str) or not item.path:
            raise ValueError(f"file #{number} has no path")
        if not isinstance(item.content_hash, str) or not item.content_hash:
            raise ValueError(f"file #{number} ({item.path}) has no content hash")
        if isinstance(item.mtime, bool) or not isinstance(item.mtime, int | float):
            raise ValueError(f"file #{number} ({item.path}) has a non-numeric mtime")
        if not math.isfinite(item.mtime):
            raise ValueError(f"file #{number} ({item.path}) has a non-finite mtime")
    return checked


def end_status(status: TaskRunStatus | str) -> TaskRunStatus:
    """The status a run may end with: completed, failed or aborted."""
    try:
        ended = TaskRunStatus(status)
    except ValueError:
        ended = TaskRunStatus.RUNNING
    if ended is TaskRunStatus.RUNNING:
        raise ValueError(f"a run ends with status completed, failed or aborted, not {status!r}")
    return ended


def check_page(limit: int, offset: int = 0) -> None:
    """Refuse a negative page."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must not be negative, got {limit} and {offset}")


def fits(spent: Sequence[float], amount: float, cap: float | None) -> bool:
    """Whether ``amount`` on top of ``spent`` stays within ``cap`` (exact sums)."""
    return cap is None or math.fsum([*spent, amount]) <= cap


@dataclass(frozen=True, slots=True)
class SpendRequest:
    """A checked request to spend from a privacy budget (what both stores share)."""

    epsilon: float
    delta: float
    at: datetime
    cap_epsilon: float | None
    cap_delta: float | None

    @classmethod
    def checked(
        cls,
        epsilon: float,
        delta: float,
        now: datetime,
        cap_epsilon: float | None,
        cap_delta: float | None,
    ) -> SpendRequest:
        """The request with every amount checked (:func:`check_amount`) and ``now`` in UTC."""
        return cls(
            check_amount(epsilon, "epsilon"),
            check_amount(delta, "delta"),
            utc(now),
            None if cap_epsilon is None else check_amount(cap_epsilon, "cap_epsilon"),
            None if cap_delta is None else check_amount(cap_delta, "cap_delta"),
        )

    def fits(self, spent: Iterable[tuple[float, float]]) -> bool:
        """Whether this spend, on top of the ``(epsilon, delta)`` pairs already spent,
        stays within both caps."""
        pairs = list(spent)
        return fits([e for e, _ in pairs], self.epsilon, self.cap_epsilon) and fits(
            [d for _, d in pairs], self.delta, self.cap_delta
        )


# -- the interface ---------------------------------------------------------------------


class PodStore(ABC):
    """Task definitions, runs and results, processed and failed files, the privacy
    ledger, the audit log and request nonces."""

    def close(self) -> None:  # noqa: B027 - optional hook: the in-memory store holds nothing
        """Release the database."""

    # -- task definitions --------------------------------------------------------------

    @abstractmethod
    def save_task_definition(
        self, task_hash: str, definition: dict[str, Any], now: datetime
    ) -> bool:
        """Store a definition under its hash; True if new, False if stored already.
        :class:`AlreadyExistsError` if the hash holds a different definition."""

    @abstractmethod
    def get_task_definition(self, task_hash: str) -> TaskDefinition | None:
        """The definition stored under ``task_hash``, or None."""

    # -- task runs ---------------------------------------------------------------------

    @abstractmethod
    def record_task_start(
        self, task_id: str, task_hash: str, modeller: str, now: datetime
    ) -> TaskRun:
        """Record that a run started; :class:`AlreadyExistsError` if ``task_id`` is known."""

    @abstractmethod
    def record_task_end(
        self, task_id: str, status: TaskRunStatus | str, result: bytes | None, now: datetime
    ) -> bool:
        """End a running run with ``status`` and its result; False (and nothing changed) if
        the run is unknown or has ended already."""

    @abstractmethod
    def get_task_run(self, task_id: str) -> TaskRun | None:
        """The run ``task_id``, or None."""

    @abstractmethod
    def get_task_result(self, task_id: str) -> bytes | None:
        """The result bytes of run ``task_id``, or None if it has none (or is unknown)."""

    @abstractmethod
    def list_task_runs(
        self, task_hash: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[TaskRun]:
        """Runs (of one task hash, or all), newest start first; ties by task id, descending."""

    # -- processed files ---------------------------------------------------------------

    @abstractmethod
    def mark_files_processed(
        self, task_hash: str, source: str, files: Iterable[FileVersion], now: datetime
    ) -> None:
        """Record that the task processed these file versions, all or none."""

    @abstractmethod
    def processed_files(self, task_hash: str, source: str) -> list[ProcessedFile]:
        """The file versions the task processed from ``source``, by path then hash."""

    @abstractmethod
    def new_files(
        self, task_hash: str, source: str, candidates: Iterable[FileVersion]
    ) -> list[FileVersion]:
        """The candidates whose content the task has not processed from ``source``, in
        the order given."""

    # -- failed files ------------------------------------------------------------------

    @abstractmethod
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
        """Record that a file failed. The same content failing again counts one more
        attempt; new content at the path starts again at one."""

    @abstractmethod
    def failed_files(self, task_hash: str, source: str) -> list[FailedFile]:
        """The files that failed for the task from ``source``, by path."""

    @abstractmethod
    def clear_failed_file(self, task_hash: str, source: str, path: str) -> bool:
        """Forget a failure once the file succeeded; whether there was one."""

    # -- privacy ledger ----------------------------------------------------------------

    @abstractmethod
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
        """Spend from the budget of (``modeller``, ``source``) if the totals stay within the
        caps (None: no cap); False, recording nothing, if they would not. Atomic."""

    @abstractmethod
    def budget_spent(self, modeller: str, source: str) -> tuple[float, float]:
        """Total (epsilon, delta) spent by ``modeller`` on ``source``."""

    @abstractmethod
    def budget_spends(self, modeller: str, source: str) -> list[BudgetSpend]:
        """The ledger entries of (``modeller``, ``source``), oldest first."""

    # -- audit log ---------------------------------------------------------------------

    @abstractmethod
    def audit(self, event: NewAuditEvent) -> AuditEvent:
        """Append an event to the audit log."""

    @abstractmethod
    def audit_events(self, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        """Events newest first, only those with an id below ``before_id`` if given."""

    # -- nonces ------------------------------------------------------------------------

    @abstractmethod
    def remember_nonce(self, nonce: bytes, now: datetime, expires_at: datetime) -> bool:
        """Whether ``nonce`` is remembered (True: a replay); records it until
        ``expires_at`` if not. Forgets nonces that expired at or before ``now``. Atomic."""
