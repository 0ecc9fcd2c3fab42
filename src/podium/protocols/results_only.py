"""``ResultsOnly``: each algorithm runs on the pod's data and only its results come back.

Worker side: each batch goes through every algorithm (in a worker thread) and what an
algorithm returns for the batch is sent as ``EVALUATION_RESULTS``; after the batches (the
final reduce step) each algorithm's :meth:`~podium.protocols.base.WorkerAlgorithm.finish`
is sent the same way. A result is ``{"algorithm": i, "batch": n | None, "result": ...}``
in :mod:`podium.core.results`' wire form.

Modeller side: each pod's results are collected per algorithm in the order they came,
then each algorithm's modeller side combines them (:class:`ResultsOnlyResult`). A pod
that aborts keeps what it sent before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.errors import ProtocolError
from podium.core.messages import MessageType, Opaque
from podium.core.results import decode_result
from podium.protocols.base import (
    Batch,
    FinalStepReduceProtocol,
    InitialSetupProtocol,
    ModellerAlgorithm,
    ModellerProtocol,
    ModellerTask,
    ProtocolFactory,
    WorkerProtocol,
    WorkerTask,
)

__all__ = ["ResultsOnly", "ResultsOnlyResult"]


@dataclass(frozen=True, slots=True)
class ResultsOnlyResult:
    """Each algorithm's combined answer (``combined[i]`` for algorithm ``i``), the raw
    results per pod (``per_pod[pod][i]``: what pod sent for algorithm ``i``, in order) and
    the pods whose results were dropped, with why (``failed``)."""

    combined: tuple[Any, ...]
    per_pod: Mapping[str, tuple[tuple[Any, ...], ...]]
    failed: Mapping[str, str] = field(default_factory=dict)


class _Worker(WorkerProtocol, InitialSetupProtocol, FinalStepReduceProtocol):
    async def run_initial_setup(self, task: WorkerTask) -> None:
        """Each algorithm that takes one gets the modeller's payload (weights), in order."""
        for algorithm in self.algorithms:
            if algorithm.takes_initial:
                record = await task.receive(MessageType.MODEL_PARAMETERS)
                if not isinstance(record, Opaque):
                    raise ProtocolError("the model's weights are not an opaque record")
                await task.run_sync(algorithm.receive_initial, record.data)

    async def run_batch(self, task: WorkerTask, batch: Batch) -> None:
        # every algorithm first, then the results: a batch that fails half-way (and is
        # retried later) sends nothing twice
        results = []
        for index, algorithm in enumerate(self.algorithms):
            result = await task.run_sync(algorithm.run, batch)
            if result is not None:
                results.append({"algorithm": index, "batch": batch.index, "result": result})
        for result in results:
            await task.send_result(result)

    async def run_final_step(self, task: WorkerTask) -> None:
        for index, algorithm in enumerate(self.algorithms):
            result = await task.run_sync(algorithm.finish)
            if result is not None:
                await task.send_result({"algorithm": index, "batch": None, "result": result})


class _Modeller(ModellerProtocol):
    def __init__(
        self, algorithms: Sequence[ModellerAlgorithm], payloads: Sequence[bytes | None]
    ) -> None:
        super().__init__(algorithms)
        self._payloads = [p for p in payloads if p is not None]

    async def run(self, task: ModellerTask) -> ResultsOnlyResult:
        for payload in self._payloads:  # read by the pods' initial setup step
            await asyncio.gather(
                *(
                    task.send(pod, MessageType.MODEL_PARAMETERS, Opaque(payload), early=True)
                    for pod in task.pods
                ),
                return_exceptions=True,  # a pod that already ended shows in its state
            )
        collected = await asyncio.gather(
            *(self._collect(task, pod) for pod in task.pods), return_exceptions=True
        )
        per_pod: dict[str, tuple[tuple[Any, ...], ...]] = {}
        failed: dict[str, str] = {}
        for pod, outcome in zip(task.pods, collected, strict=True):
            if isinstance(outcome, ProtocolError):
                # one pod's broken results do not spoil the others'
                failed[pod] = str(outcome)
                task.report(f"{pod}: its results were dropped: {outcome}")
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                per_pod[pod] = outcome
        combined = []
        for index, algorithm in enumerate(self.algorithms):
            results = {pod: items[index] for pod, items in per_pod.items()}
            try:
                combined.append(await asyncio.to_thread(algorithm.combine, results))
            except ProtocolError as error:
                raise ProtocolError(f"{algorithm.__class__.__name__}: {error}") from None
        return ResultsOnlyResult(tuple(combined), per_pod, failed)

    async def _collect(self, task: ModellerTask, pod: str) -> tuple[tuple[Any, ...], ...]:
        results: list[list[Any]] = [[] for _ in self.algorithms]
        async for _, kind, record in task.messages(pod):
            if kind is not MessageType.EVALUATION_RESULTS or not isinstance(record, Opaque):
                raise ProtocolError(f"{pod} sent a {kind.value} in a ResultsOnly task")
            value = await asyncio.to_thread(decode_result, record.data)
            index = value.get("algorithm") if isinstance(value, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(results):
                raise ProtocolError(f"{pod} sent a result for no algorithm of this task")
            results[index].append(value.get("result"))
        return tuple(tuple(items) for items in results)


class ResultsOnly(ProtocolFactory):
    """Run the algorithms on each pod and return only their results."""

    name = "ResultsOnly"

    def worker(self) -> WorkerProtocol:
        return _Worker([algorithm.worker() for algorithm in self.algorithms])

    def modeller(self) -> ModellerProtocol:
        return _Modeller(
            [algorithm.modeller() for algorithm in self.algorithms],
            [algorithm.initial_payload() for algorithm in self.algorithms],
        )
