"""A task's results on the modeller's disk: tables per pod and combined, and a manifest.

:func:`write_results` writes, under ``out``::

    <n>-<algorithm>/<owner>__<pod>.csv    each pod's table (or .parquet)
    <n>-<algorithm>/combined.csv          the federated answer, or the pods' tables stacked
    manifest.json                         task id and hash, each pod's outcome, timings,
                                          the files and what pods said about their tables

Each file is written whole or not at all, the manifest last, so a manifest always names
complete files. :func:`results_json` gives the same as one JSON document for scripts.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from podium.algorithms._tables import TableResult
from podium.core.files import atomic_write
from podium.protocols.base import ProtocolFactory
from podium.protocols.coordinator import TaskOutcome

__all__ = ["results_json", "write_results"]

Format = Literal["csv", "parquet"]


def _tables(outcome: TaskOutcome) -> list[TableResult | None]:
    combined = getattr(outcome.result, "combined", None)
    if not isinstance(combined, tuple):
        return []
    return [item if isinstance(item, TableResult) else None for item in combined]


def _write_frame(frame: pd.DataFrame, path: Path, fmt: Format) -> None:
    if fmt == "csv":
        atomic_write(path, lambda handle: frame.to_csv(handle, index=False))
        return
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        "wb", dir=path.parent, prefix=f".{path.name}.", delete=False
    )
    try:
        with handle:
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _summary(outcome: TaskOutcome) -> dict[str, Any]:
    return {
        "task_id": outcome.task_id,
        "task_hash": outcome.task_hash,
        "seconds": round(outcome.seconds, 3),
        "pods": {
            pod: {
                "outcome": state.outcome,
                "reason": state.reason,
                "batches": state.batches,
                "seconds": round(state.ended - state.started, 3) if state.ended else None,
                "logs": list(state.logs),
            }
            for pod, state in outcome.pods.items()
        },
    }


def write_results(
    outcome: TaskOutcome, factory: ProtocolFactory, out: Path, *, fmt: Format = "csv"
) -> Path:
    """Write ``outcome``'s tables and manifest under ``out`` (created); return the
    manifest's path.

    Raises:
        OSError: ``out`` cannot be created or written.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest = _summary(outcome)
    algorithms = []
    for index, (algorithm, table) in enumerate(
        zip(factory.algorithms, _tables(outcome), strict=False)
    ):
        entry: dict[str, Any] = {"name": algorithm.name, "arguments": algorithm.arguments()}
        if table is not None:
            folder = out / f"{index}-{algorithm.name}"
            folder.mkdir(exist_ok=True)
            files = {}
            for pod, frame in table.per_pod.items():
                path = folder / f"{pod.replace('/', '__')}.{fmt}"
                _write_frame(frame, path, fmt)
                files[pod] = str(path.relative_to(out))
            combined = folder / f"combined.{fmt}"
            _write_frame(table.combined, combined, fmt)
            entry.update(
                files=files,
                combined=str(combined.relative_to(out)),
                notes={pod: dict(note) for pod, note in table.notes.items()},
            )
        algorithms.append(entry)
    manifest["algorithms"] = algorithms
    path = out / "manifest.json"
    atomic_write(path, lambda handle: json.dump(manifest, handle, indent=2, default=str))
    return path


def results_json(outcome: TaskOutcome, factory: ProtocolFactory) -> dict[str, Any]:
    """The outcome as one JSON-ready document: the manifest's facts and every table as a
    list of records."""
    document = _summary(outcome)
    algorithms = []
    for algorithm, table in zip(factory.algorithms, _tables(outcome), strict=False):
        entry: dict[str, Any] = {"name": algorithm.name}
        if table is not None:
            entry["per_pod"] = {
                pod: json.loads(frame.to_json(orient="records"))
                for pod, frame in table.per_pod.items()
            }
            entry["combined"] = json.loads(table.combined.to_json(orient="records"))
            entry["notes"] = {pod: dict(note) for pod, note in table.notes.items()}
        algorithms.append(entry)
    document["algorithms"] = algorithms
    return document
