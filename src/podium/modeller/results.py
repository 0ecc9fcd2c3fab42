"""A task's results on the modeller's disk: tables per pod and combined, and a manifest.

:func:`write_results` writes, under ``out``::

    <n>-<algorithm>/<owner>__<pod>.csv    each pod's table (or .parquet)
    <n>-<algorithm>/combined.csv          the federated answer, or the pods' tables stacked
    manifest.json                         task id and hash, each pod's outcome, timings,
                                          the files and what pods said about their tables

Each file is written whole or not at all, the manifest last, so a manifest always names
complete files. :func:`results_json` gives the same as one JSON document for scripts.

A training task (``FederatedAveraging``) writes instead::

    model.safetensors    the final weights (safetensors, never a pickle)
    model-card.json      architecture, hyperparameters, features, normalisation, pods,
                         rounds, per-round and test metrics
    history.csv          one row per round and pod, plus the combined metrics
    metrics.png          the validation metrics per round, combined and per pod
    manifest.json        as above
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


def _training(outcome: TaskOutcome) -> Any:
    from podium.protocols.fedavg import TrainingResult  # noqa: PLC0415 - a sibling layer

    return outcome.result if isinstance(outcome.result, TrainingResult) else None


def _history_frame(result: Any) -> pd.DataFrame:
    rows = []
    for record in result.history:
        for pod, metrics in record.metrics.items():
            rows.append({"round": record.round + 1, "pod": pod, **metrics})
        if record.combined:
            rows.append({"round": record.round + 1, "pod": "combined", **record.combined})
    return pd.DataFrame(rows)


def _plot(history: pd.DataFrame, path: Path) -> None:
    """One panel per validation metric: the combined line bold, each pod's thin."""
    import matplotlib  # noqa: PLC0415 - an optional extra

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    metrics = [c for c in history.columns if c not in ("round", "pod", "count")]
    if not metrics:
        return
    figure, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for pod, rows in history.groupby("pod"):
            combined = pod == "combined"
            axis.plot(
                rows["round"], rows[metric], label=str(pod),
                linewidth=2.5 if combined else 1.0, alpha=1.0 if combined else 0.6,
            )  # fmt: skip
        axis.set_title(f"validation {metric}")
        axis.set_xlabel("round")
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    os.replace(partial, path)


def write_training_results(outcome: TaskOutcome, out: Path) -> dict[str, str]:
    """Write a training task's model, card, history and plot under ``out``; the files."""
    result = _training(outcome)
    weights = out / "model.safetensors"
    partial = out / ".model.safetensors.partial"
    partial.write_bytes(result.weights)
    os.replace(partial, weights)
    card = {
        "task_id": outcome.task_id,
        "task_hash": outcome.task_hash,
        "model": result.model,
        "features": result.features,
        "normalisation": result.normalisation,
        "pods": list(result.pods),
        "rounds": len(result.history),
        "best_round": result.best_round + 1,
        "stopped_early": result.stopped_early,
        "history": [
            {
                "round": r.round + 1,
                "samples": dict(r.samples),
                "train_loss": dict(r.train_loss),
                "validation": {pod: dict(m) for pod, m in r.metrics.items()},
                "combined": dict(r.combined),
            }
            for r in result.history
        ],
        "test": {pod: dict(m) for pod, m in result.test_metrics.items()},
        "test_combined": dict(result.test_combined),
    }
    atomic_write(out / "model-card.json", lambda h: json.dump(card, h, indent=2, default=str))
    history = _history_frame(result)
    _write_frame(history, out / "history.csv", "csv")
    files = {
        "weights": weights.name,
        "card": "model-card.json",
        "history": "history.csv",
    }
    if not history.empty:
        _plot(history, out / "metrics.png")
        files["plot"] = "metrics.png"
    return files


def write_results(
    outcome: TaskOutcome, factory: ProtocolFactory, out: Path, *, fmt: Format = "csv"
) -> Path:
    """Write ``outcome``'s tables (or, for a training task, its model, card, history and
    plot) and manifest under ``out`` (created); return the manifest's path.

    Raises:
        OSError: ``out`` cannot be created or written.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest = _summary(outcome)
    if _training(outcome) is not None:
        manifest["training"] = write_training_results(outcome, out)
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
    training = _training(outcome)
    if training is not None:
        document["training"] = {
            "model": training.model,
            "rounds": [
                {"round": r.round + 1, "combined": dict(r.combined)} for r in training.history
            ],
            "test": {pod: dict(m) for pod, m in training.test_metrics.items()},
            "test_combined": dict(training.test_combined),
        }
    return document
