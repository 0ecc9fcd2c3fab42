"""``CSVReportAlgorithm``: write the pod's records to a CSV file on the pod; only a summary
(rows, columns, file name, SHA-256) goes back to the modeller.

Batch by batch, the chosen ``columns`` (default: all) are appended to a temporary file in
the pod's output folder; after the last batch it is renamed into place, so a report is
never half-written. The rows stay on the pod: the pod's owner hands the report over, or
not.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from podium.algorithms._tables import TableResult, stack
from podium.core.errors import ProtocolError
from podium.core.messages import AbortReason
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    WorkerAlgorithm,
    WorkerContext,
)

__all__ = ["CSVReportAlgorithm"]

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")


class _Arguments(Arguments):
    columns: list[str] | None = Field(default=None, min_length=1)
    filename: str | None = Field(default=None, pattern=_FILE_NAME.pattern)


class _Worker(WorkerAlgorithm):
    def __init__(self, columns: Sequence[str] | None, filename: str | None) -> None:
        self._columns = list(columns) if columns is not None else None
        self._filename = filename
        self._rows = 0
        self._partial: Path | None = None
        self._target: Path | None = None

    def initialise(self, context: WorkerContext) -> None:
        super().initialise(context)
        name = self._filename or f"report-{context.task_id}.csv"
        if not name.endswith(".csv"):
            name += ".csv"
        folder = context.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        self._target = folder / name
        self._partial = folder / f".{name}.partial"
        self._partial.unlink(missing_ok=True)

    def run(self, batch: Batch) -> None:
        frame = batch.frame()
        if self._columns is not None:
            missing = [c for c in self._columns if c not in frame.columns]
            if missing:
                raise AbortTask(
                    AbortReason.WORKER_ERROR,
                    f"CSVReportAlgorithm: no column {', '.join(map(repr, missing))} on "
                    f"{self.context.pod_id}; its columns: {', '.join(frame.columns)}",
                )
            frame = frame[self._columns]
        assert self._partial is not None
        first = not self._partial.exists()
        frame.to_csv(self._partial, mode="w" if first else "a", header=first, index=False)
        self._rows += len(frame)

    def finish(self) -> object:
        assert self._partial is not None
        assert self._target is not None
        if not self._partial.exists():
            pd.DataFrame(columns=self._columns or []).to_csv(self._partial, index=False)
        digest = hashlib.sha256(self._partial.read_bytes()).hexdigest()
        os.replace(self._partial, self._target)
        columns = self._columns or list(pd.read_csv(self._target, nrows=0).columns)
        return {
            "rows": self._rows,
            "columns": columns,
            "file": self._target.name,
            "sha256": digest,
        }


class _Modeller(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> TableResult:
        per_pod: dict[str, pd.DataFrame] = {}
        for pod, items in results.items():
            for item in items:
                if not isinstance(item, dict) or "rows" not in item:
                    raise ProtocolError(f"{pod} sent a CSV report summary without its rows")
                per_pod[pod] = pd.DataFrame(
                    [
                        {
                            "file": item.get("file"),
                            "rows": item.get("rows"),
                            "columns": len(item.get("columns") or []),
                            "sha256": item.get("sha256"),
                        }
                    ]
                )
        return TableResult(per_pod, stack(per_pod))


class CSVReportAlgorithm(AlgorithmFactory):
    """Write a CSV report of the records on each pod; return only its summary.

    Args:
        columns: The columns to write (default: every column the pod shows).
        filename: The report's file name in the pod's output folder (default:
            ``report-<task id>.csv``).
    """

    name = "CSVReportAlgorithm"
    batchable = True

    def __init__(
        self, *, columns: Sequence[str] | None = None, filename: str | None = None
    ) -> None:
        self.columns = list(columns) if columns is not None else None
        self.filename = filename

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> CSVReportAlgorithm:
        parsed = parse_arguments(cls.name, _Arguments, arguments)
        return cls(columns=parsed.columns, filename=parsed.filename)

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.columns is not None:
            arguments["columns"] = list(self.columns)
        if self.filename is not None:
            arguments["filename"] = self.filename
        return arguments

    def worker(self) -> WorkerAlgorithm:
        return _Worker(self.columns, self.filename)

    def modeller(self) -> ModellerAlgorithm:
        return _Modeller()
