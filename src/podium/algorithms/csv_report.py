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
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, field_validator

from podium.algorithms._tables import TableResult, stack
from podium.core.errors import ProtocolError, TaskDefinitionError
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

#: A report's file name: one plain name in the output folder, never a path.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")


def _check_file_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name) or name.endswith("."):
        raise ValueError(
            f"{name!r} is not a report file name: letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit (no folders)"
        )
    return name


class _Arguments(Arguments):
    columns: list[str] | None = Field(default=None, min_length=1)
    filename: str | None = None

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_file_name(value)


class _Worker(WorkerAlgorithm):
    """Each batch goes to its own part file (a retried batch replaces its part); the
    parts are joined into the report, renamed into place, after the last batch."""

    def __init__(self, columns: Sequence[str] | None, filename: str | None) -> None:
        self._columns = list(columns) if columns is not None else None
        self._filename = filename
        self._parts: Path | None = None
        self._target: Path | None = None
        self._rows: dict[int, int] = {}  # per batch: a retried batch replaces its count

    def initialise(self, context: WorkerContext) -> None:
        super().initialise(context)
        name = _check_file_name(self._filename or f"report-{context.task_id}.csv")
        if not name.endswith(".csv"):
            name += ".csv"
        folder = context.output_dir.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / name).resolve()
        if target.parent != folder:
            raise AbortTask(
                AbortReason.WORKER_ERROR, f"{name!r} is not a file in the output folder"
            )
        self._target = target
        self._parts = folder / f".{context.task_id}.parts"
        shutil.rmtree(self._parts, ignore_errors=True)
        self._parts.mkdir()

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
        assert self._parts is not None
        part = self._parts / f"{batch.index:09d}.csv"
        partial = part.with_suffix(".partial")
        frame.to_csv(partial, index=False)
        os.replace(partial, part)
        self._rows[batch.index] = len(frame)

    def finish(self) -> object:
        assert self._parts is not None
        assert self._target is not None
        parts = sorted(self._parts.glob("*.csv"))
        joined = self._parts / "report.partial"
        digest = hashlib.sha256()
        rows = sum(self._rows.values())
        header: list[str] = list(self._columns or [])
        with joined.open("wb") as out:
            for index, part in enumerate(parts):
                data = part.read_bytes()
                if index > 0:  # drop the header line of every part but the first
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                out.write(data)
                digest.update(data)
            if not parts:
                empty = (",".join(header) + "\n").encode()
                out.write(empty)
                digest.update(empty)
        if parts:
            header = list(pd.read_csv(parts[0], nrows=0).columns)
        os.replace(joined, self._target)
        shutil.rmtree(self._parts, ignore_errors=True)
        return {
            "rows": rows,
            "columns": header,
            "file": self._target.name,
            "sha256": digest.hexdigest(),
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
        if filename is not None:
            try:
                _check_file_name(filename)
            except ValueError as error:
                raise TaskDefinitionError(f"CSVReportAlgorithm: {error}") from None
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
