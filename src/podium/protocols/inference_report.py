"""``InferenceAndCSVReport`` and ``InferenceAndReturnCSVReport``: a model's predictions
written into a CSV report on each pod, counted against the pod owner's usage limits.

The task is ``algorithm=[ModelInference(...), CSVReportAlgorithm(...)]``. Worker side:

1. **Initial setup.** The modeller's weights (``MODEL_PARAMETERS``) are checked against
   the signed hash and loaded (:class:`~podium.algorithms.model_eval.ModelInference`).
2. **Each batch.** The batch's predictions are counted against the modeller's inference
   limits on the pod (the limit for the model's id and the limit for every model, ``*``;
   a retried batch is not counted twice). Only the predictions still allowed are kept
   (:func:`~podium.protocols.limits.truncate_to_allowed`); the batch's rows with the kept
   prediction columns appended go to the CSV report's part file
   (:class:`~podium.algorithms.csv_report.CSVReportAlgorithm`'s worker: a report is never
   half-written). ``InferenceAndReturnCSVReport`` also sends the kept predictions (the
   prediction columns; with the pod's own columns only for a modeller the pod allows
   row-level data).
3. **Final step.** The report is put in place and its summary (rows, columns, file,
   SHA-256) and the number of predictions go to the modeller.

When a limit is used up, the report is finished with the rows allowed, its summary sent,
and the task ends with ``TASK_ABORT(LIMITS_EXCEEDED)``; the modeller keeps what came.

Modeller side: the weights go to every pod first; the result
(:class:`InferenceReportResult`) holds each pod's report summary and, for
``InferenceAndReturnCSVReport``, its predictions.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd

from podium.algorithms._tables import TableResult, stack
from podium.algorithms.csv_report import CSVReportAlgorithm
from podium.algorithms.model_eval import InferenceWorker, ModelInference
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.core.messages import AbortReason, MessageType, Opaque
from podium.core.results import decode_result
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    FinalStepProtocol,
    InitialSetupProtocol,
    ModellerProtocol,
    ModellerTask,
    ProtocolFactory,
    WorkerAlgorithm,
    WorkerProtocol,
    WorkerTask,
)
from podium.protocols.limits import LimitsExceededInfo, truncate_to_allowed

__all__ = ["InferenceAndCSVReport", "InferenceAndReturnCSVReport", "InferenceReportResult"]

#: The limit that covers every model.
_EVERY_MODEL = "*"


@runtime_checkable
class _LimitedTask(Protocol):
    """A worker task that counts inference usage (the engine's task handle does)."""

    def check_usage(self, model_id: str, used: int) -> LimitsExceededInfo | None:
        """Count ``used`` predictions of ``model_id``; how far over, if over."""

    async def abort_limits_exceeded(self, info: LimitsExceededInfo, model_id: str) -> None:
        """End the task with ``LIMITS_EXCEEDED``."""


@dataclass(frozen=True, slots=True)
class InferenceReportResult:
    """Each pod's report (``reports``: one row per pod: file, rows, columns, sha256,
    predictions) and, for ``InferenceAndReturnCSVReport``, its predictions
    (``predictions``: per pod, and stacked with a ``pod`` column; empty otherwise);
    ``failed`` holds the pods whose results were dropped, with why."""

    predictions: TableResult
    reports: TableResult
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def combined(self) -> tuple[TableResult, TableResult]:
        """The answer per algorithm (``ModelInference``, ``CSVReportAlgorithm``), for the
        results writers."""
        return (self.predictions, self.reports)


# -- the pod's side ------------------------------------------------------------------------


class _Worker(WorkerProtocol, InitialSetupProtocol, FinalStepProtocol):
    def __init__(
        self, inference: InferenceWorker, report: WorkerAlgorithm, *, returns: bool
    ) -> None:
        super().__init__([inference, report])
        self._inference = inference
        self._report = report
        self._returns = returns
        self._decisions: dict[int, LimitsExceededInfo | None] = {}
        self._kept: dict[int, int] = {}  # per batch: a retried batch replaces its count

    async def run_initial_setup(self, task: WorkerTask) -> None:
        record = await task.receive(MessageType.MODEL_PARAMETERS)
        if not isinstance(record, Opaque):
            raise ProtocolError("the model's weights are not an opaque record")
        await task.run_sync(self._inference.receive_initial, record.data)

    async def run_batch(self, task: WorkerTask, batch: Batch) -> None:
        frame = await task.run_sync(batch.frame)
        predictions = await task.run_sync(self._inference.predictions, frame)
        info = self._usage(task, batch.index, len(predictions))
        kept = len(truncate_to_allowed(range(len(predictions)), info))
        predictions = predictions.iloc[:kept]
        rows = await task.run_sync(self._inference.joined, frame, predictions)
        report_batch = Batch(
            batch.index, functools.partial(_same, rows), batch.sources, whole=batch.whole
        )
        await task.run_sync(self._report.run, report_batch)
        self._kept[batch.index] = kept
        if self._returns:
            table = rows if task.context.row_level else predictions.reset_index(drop=True)
            await task.send_result({"batch": batch.index, "predictions": table})
        if info is not None:
            await self._send_summary(task)
            await self._abort(task, info)

    async def run_final_step(self, task: WorkerTask) -> None:
        await self._send_summary(task)

    async def _send_summary(self, task: WorkerTask) -> None:
        summary = await task.run_sync(self._report.finish)
        await task.send_result({"report": summary, "predictions": sum(self._kept.values())})

    def _usage(self, task: WorkerTask, index: int, used: int) -> LimitsExceededInfo | None:
        """Count a batch's predictions against the model's limit and the every-model
        limit; the tighter verdict. A retried batch gets its first verdict again."""
        if index in self._decisions:
            return self._decisions[index]
        verdict: LimitsExceededInfo | None = None
        if isinstance(task, _LimitedTask):
            for key in dict.fromkeys((self._inference.model_id, _EVERY_MODEL)):
                info = task.check_usage(key, used)
                if info is not None and (verdict is None or info.allowed < verdict.allowed):
                    verdict = info
        self._decisions[index] = verdict
        return verdict

    async def _abort(self, task: WorkerTask, info: LimitsExceededInfo) -> None:
        model_id = self._inference.model_id
        if isinstance(task, _LimitedTask):
            await task.abort_limits_exceeded(info, model_id)
        raise AbortTask(  # the engine's handle raises above; any other ends the same way
            AbortReason.LIMITS_EXCEEDED,
            f"the inference limit of model {model_id!r} is used up: {info.allowed} "
            f"predictions of the last batch were allowed, {info.overrun} over",
        )


def _same(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


# -- the modeller's side -------------------------------------------------------------------


@dataclass
class _PodResults:
    tables: dict[int, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] | None = None


class _Modeller(ModellerProtocol):
    def __init__(self, payload: bytes | None) -> None:
        super().__init__([])
        self._payload = payload

    async def run(self, task: ModellerTask) -> InferenceReportResult:
        if self._payload is None:
            raise TaskDefinitionError("ModelInference has no weights to send (a pod's copy?)")
        await asyncio.gather(
            *(
                task.send(pod, MessageType.MODEL_PARAMETERS, Opaque(self._payload), early=True)
                for pod in task.pods
            ),
            return_exceptions=True,  # a pod that already ended shows in its state
        )
        collected = await asyncio.gather(
            *(self._collect(task, pod) for pod in task.pods), return_exceptions=True
        )
        predictions: dict[str, pd.DataFrame] = {}
        reports: dict[str, pd.DataFrame] = {}
        failed: dict[str, str] = {}
        for pod, outcome in zip(task.pods, collected, strict=True):
            if isinstance(outcome, ProtocolError):
                failed[pod] = str(outcome)
                task.report(f"{pod}: its results were dropped: {outcome}")
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome.tables:
                ordered = [outcome.tables[index] for index in sorted(outcome.tables)]
                predictions[pod] = pd.concat(ordered, ignore_index=True)
            if outcome.summary is not None:
                reports[pod] = pd.DataFrame([outcome.summary])
        return InferenceReportResult(
            TableResult(predictions, stack(predictions)),
            TableResult(reports, stack(reports)),
            failed,
        )

    async def _collect(self, task: ModellerTask, pod: str) -> _PodResults:
        results = _PodResults()
        async for _, kind, record in task.messages(pod):
            if kind is not MessageType.EVALUATION_RESULTS or not isinstance(record, Opaque):
                raise ProtocolError(f"{pod} sent a {kind.value} in an inference report task")
            value = await asyncio.to_thread(decode_result, record.data)
            if not isinstance(value, dict):
                raise ProtocolError(f"{pod} sent an inference result that is not a mapping")
            if "report" in value:
                results.summary = _summary(pod, value)
            elif isinstance(value.get("predictions"), pd.DataFrame) and isinstance(
                value.get("batch"), int
            ):
                results.tables[value["batch"]] = value["predictions"]
            else:
                raise ProtocolError(f"{pod} sent an inference result of no known kind")
        return results


def _summary(pod: str, value: Mapping[str, Any]) -> dict[str, Any]:
    report, count = value.get("report"), value.get("predictions")
    if not isinstance(report, dict) or not isinstance(count, int):
        raise ProtocolError(f"{pod} sent a report summary without its rows or predictions")
    columns = report.get("columns")
    return {
        "file": report.get("file"),
        "rows": report.get("rows"),
        "columns": len(columns) if isinstance(columns, list) else None,
        "sha256": report.get("sha256"),
        "predictions": count,
    }


# -- the factories -------------------------------------------------------------------------


class InferenceAndCSVReport(ProtocolFactory):
    """Predict on each pod and write the rows with their predictions into a CSV report
    there; only the report's summary comes back (see the module docstring).

    Args:
        algorithm: ``[ModelInference(...), CSVReportAlgorithm(...)]``. The report's
            ``columns`` (if given) get the prediction columns appended.
    """

    name = "InferenceAndCSVReport"
    #: Whether the predictions come back to the modeller.
    returns_predictions: ClassVar[bool] = False

    def __init__(self, *, algorithm: AlgorithmFactory | Sequence[AlgorithmFactory]) -> None:
        super().__init__(algorithm=algorithm)
        if (
            len(self.algorithms) != 2
            or not isinstance(self.algorithms[0], ModelInference)
            or not isinstance(self.algorithms[1], CSVReportAlgorithm)
        ):
            got = [a.name for a in self.algorithms]
            raise TaskDefinitionError(
                f"{self.name} takes two algorithms: [ModelInference, CSVReportAlgorithm]; got {got}"
            )
        self.inference: ModelInference = self.algorithms[0]
        self.report: CSVReportAlgorithm = self.algorithms[1]

    def worker(self) -> WorkerProtocol:
        columns = self.report.columns
        if columns is not None:
            columns = list(dict.fromkeys([*columns, *self.inference.prediction_columns]))
        report = CSVReportAlgorithm(columns=columns, filename=self.report.filename)
        return _Worker(
            self.inference.worker(require_row_level=False),
            report.worker(),
            returns=self.returns_predictions,
        )

    def modeller(self) -> ModellerProtocol:
        return _Modeller(self.inference.initial_payload())


class InferenceAndReturnCSVReport(InferenceAndCSVReport):
    """As :class:`InferenceAndCSVReport`, and the predictions come back to the modeller
    too (the prediction columns; the pod's own columns only where the modeller may see
    rows). The ``infer`` role grants it."""

    name = "InferenceAndReturnCSVReport"
    returns_predictions: ClassVar[bool] = True
