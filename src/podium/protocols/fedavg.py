"""``FederatedAveraging``: train one model across pods without moving their data.

Round by round (DESIGN.md section 8), over the task's sealed streams:

1. **Setup.** Each pod splits its data (the data structure's split, seeded) and sends the
   moments (count, mean, M2) of its training rows' numeric columns
   (``ALGORITHM_EXCHANGE``). The modeller builds the features from the pods' schemas as
   the hub holds them (categories: the union of every pod's value set) and the
   normalisation from the merged moments, so nothing is fitted on pooled data, and sends
   both back (``ALGORITHM_EXCHANGE``).
2. **Rounds.** The modeller sends the global weights (``MODEL_PARAMETERS``, safetensors);
   each pod trains locally for ``epochs_between_parameter_updates`` epochs (or
   ``steps_between_parameter_updates`` steps) with a fresh optimiser and returns its
   weights and sample count (``TRAINING_UPDATE``) and, with ``auto_eval``, its
   validation metrics (``TRAINING_METRICS``). The modeller averages the weights, weighted
   by samples (or by the explicit ``weights`` per pod), and records each pod's metrics and
   their count-weighted combination. ``early_stopping`` stops after ``patience`` rounds
   without improvement of a validation metric, keeping the best weights.
3. **End.** ``TRAINING_COMPLETE`` then the final weights; each pod evaluates them on its
   test rows and sends the metrics (``EVALUATION_RESULTS``).

Weights are only ever safetensors; a pod whose stream breaks or aborts is dropped from
later rounds and the others go on. The result (:class:`TrainingResult`) holds the final
weights, the features and normalisation, the per-round history and the test metrics;
:func:`podium.modeller.results.write_training_results` saves the model, a JSON card and a
plot of the metrics per round.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from podium.core.errors import PodiumError, ProtocolError, TaskDefinitionError
from podium.core.messages import (
    AbortReason,
    MessageType,
    Opaque,
    Payload,
    TrainingComplete,
    TrainingMetrics,
)
from podium.core.results import decode_result, encode_result
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    ModellerProtocol,
    ModellerTask,
    ProtocolFactory,
    WorkerProtocol,
    WorkerTask,
)

__all__ = ["FederatedAveraging", "RoundRecord", "TrainingResult"]

_log = logging.getLogger("podium.modeller")


class _EarlyStopping(Arguments):
    metric: str = "loss"
    patience: int = Field(default=3, ge=1, le=1000)
    min_delta: float = Field(default=0.0, ge=0.0)
    mode: Literal["min", "max"] | None = None


class _Arguments(Arguments):
    rounds: int = Field(default=10, ge=1, le=10_000)
    epochs_between_parameter_updates: int | None = Field(default=None, ge=1, le=10_000)
    steps_between_parameter_updates: int | None = Field(default=None, ge=1, le=10_000_000)
    auto_eval: bool = True
    early_stopping: _EarlyStopping | None = None
    weights: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_schedule(self) -> _Arguments:
        if (
            self.epochs_between_parameter_updates is not None
            and self.steps_between_parameter_updates is not None
        ):
            raise ValueError(
                "give epochs_between_parameter_updates or steps_between_parameter_updates, not both"
            )
        if self.weights is not None and any(
            not math.isfinite(w) or w < 0 for w in self.weights.values()
        ):
            raise ValueError("weights must be finite and >= 0")
        return self


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One round: each pod's samples, loss and validation metrics, and their combination."""

    round: int
    samples: Mapping[str, int]
    train_loss: Mapping[str, float]
    metrics: Mapping[str, Mapping[str, float]]
    combined: Mapping[str, float]
    seconds: float = 0.0
    train_seconds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """What federated training produced (see the module docstring)."""

    model: Mapping[str, Any]
    weights: bytes
    features: Mapping[str, Any]
    normalisation: Mapping[str, Any]
    history: tuple[RoundRecord, ...]
    test_metrics: Mapping[str, Mapping[str, float]]
    test_combined: Mapping[str, float]
    best_round: int
    stopped_early: bool
    pods: tuple[str, ...] = field(default=())
    first_round_started: float = 0.0
    """``time.monotonic()`` when the first round's weights went out."""

    @property
    def combined(self) -> tuple[TrainingResult]:
        """The result as the one answer of the task (for the results writers)."""
        return (self,)


def _exchange(value: object) -> Opaque:
    return Opaque(encode_result(value))


def _opened(record: Payload, what: str) -> Any:
    if not isinstance(record, Opaque):
        raise ProtocolError(f"{what} is not an opaque record")
    return decode_result(record.data)


# -- the pod's side ------------------------------------------------------------------------


class _Worker(WorkerProtocol):
    def __init__(self, training: Any, options: _Arguments) -> None:
        super().__init__([])
        self._training = training
        self._options = options

    async def run_batch(self, task: WorkerTask, batch: Batch) -> None:
        """Training is one exchange over the whole data: a failure ends the task (a retry
        in the resilience phase would start the exchange over, which the modeller left)."""
        try:
            await self._train(task, batch)
        except (AbortTask, ProtocolError):
            raise
        except PodiumError as error:
            raise AbortTask(AbortReason.WORKER_ERROR, str(error)) from None
        except Exception as error:  # noqa: BLE001 - the pod's log has it; the modeller its kind
            _log.exception("training failed on this pod")
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"training failed: {type(error).__name__} (details in the pod's log)",
            ) from None

    async def _train(self, task: WorkerTask, batch: Batch) -> None:
        from podium.protocols import _fedavg_pod as pod  # noqa: PLC0415 - needs torch

        local = await task.run_sync(pod.LocalData.prepare, self._training, batch.frame())
        await task.send(MessageType.ALGORITHM_EXCHANGE, _exchange(local.announcement()))
        setup = _opened(await task.receive(MessageType.ALGORITHM_EXCHANGE), "the setup")
        try:
            trainer = await task.run_sync(local.trainer, setup)
        except TaskDefinitionError as error:
            raise AbortTask(local.abort_reason, str(error)) from None
        round_number = 0
        while True:
            record = await task.receive(MessageType.MODEL_PARAMETERS, MessageType.TRAINING_COMPLETE)
            if isinstance(record, TrainingComplete):
                final = await task.receive(MessageType.MODEL_PARAMETERS)
                assert isinstance(final, Opaque)
                tested = await task.run_sync(trainer.test, final.data)
                await task.send_result({"test": tested, "samples": trainer.test_samples})
                return
            assert isinstance(record, Opaque)
            update, metrics = await task.run_sync(
                trainer.round,
                record.data,
                round_number,
                self._options.epochs_between_parameter_updates,
                self._options.steps_between_parameter_updates,
                self._options.auto_eval,
            )
            await task.send(MessageType.TRAINING_UPDATE, Opaque(update))
            if metrics is not None:
                await task.send(MessageType.TRAINING_METRICS, TrainingMetrics(metrics))
            round_number += 1


# -- the modeller's side -------------------------------------------------------------------


class _Modeller(ModellerProtocol):
    def __init__(self, training: Any, options: _Arguments) -> None:
        super().__init__([])
        self._training = training
        self._options = options

    async def run(self, task: ModellerTask) -> TrainingResult:
        from podium.protocols import _fedavg_modeller as side  # noqa: PLC0415 - needs torch

        pods = list(task.pods)
        announcements: dict[str, Mapping[str, Any]] = {}
        reasons: dict[str, str] = {}
        answers = await asyncio.gather(*(self._announcement(task, pod) for pod in pods))
        for pod, value in zip(pods, answers, strict=True):
            if isinstance(value, str):
                reasons[pod] = value
            else:
                announcements[pod] = value
        pods = [p for p in pods if p in announcements]
        if not pods:
            why = "; ".join(f"{pod}: {reason}" for pod, reason in reasons.items())
            raise ProtocolError(f"no pod could take part in training: {why}")
        plan = await asyncio.to_thread(
            side.TrainingPlan.build, self._training, task.schemas, announcements
        )
        for pod in pods:
            await task.send(pod, MessageType.ALGORITHM_EXCHANGE, _exchange(plan.setup()))
        return await side.train(task, pods, plan, self._options)

    async def _announcement(self, task: ModellerTask, pod: str) -> Mapping[str, Any] | str:
        """The pod's setup message, or why it does not take part."""
        try:
            value = _opened(await task.receive(pod, MessageType.ALGORITHM_EXCHANGE), pod)
        except ProtocolError as error:
            _log.warning("%s does not take part in training: %s", pod, error)
            return str(error)
        if not isinstance(value, dict):
            raise ProtocolError(f"{pod} sent a setup message that is not a mapping")
        return value


class FederatedAveraging(ProtocolFactory):
    """Federated averaging of a model's weights over rounds (see the module docstring).

    Args:
        algorithm: One :class:`~podium.algorithms.model_training.FederatedModelTraining`.
        rounds: Rounds of local training and averaging.
        epochs_between_parameter_updates: Local epochs per round (default 1).
        steps_between_parameter_updates: Instead, local optimiser steps per round.
        auto_eval: Each pod reports validation metrics after each round.
        early_stopping: ``{"metric": "loss", "patience": 3, "min_delta": 0.0}``: stop
            when the combined validation metric has not improved for ``patience`` rounds
            (``mode`` min or max; by default max for accuracy, f1, auc and r2).
        weights: Explicit weight per pod id instead of the sample counts.
    """

    name = "FederatedAveraging"

    def __init__(
        self,
        *,
        algorithm: AlgorithmFactory | Sequence[AlgorithmFactory],
        rounds: int = 10,
        epochs_between_parameter_updates: int | None = None,
        steps_between_parameter_updates: int | None = None,
        auto_eval: bool = True,
        early_stopping: Mapping[str, Any] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(algorithm=algorithm)
        from podium.algorithms.model_training import FederatedModelTraining  # noqa: PLC0415

        if len(self.algorithms) != 1 or not isinstance(self.algorithms[0], FederatedModelTraining):
            raise TaskDefinitionError(
                "FederatedAveraging takes exactly one algorithm: FederatedModelTraining"
            )
        self.training = self.algorithms[0]
        given = {
            "rounds": rounds,
            "epochs_between_parameter_updates": epochs_between_parameter_updates,
            "steps_between_parameter_updates": steps_between_parameter_updates,
            "auto_eval": auto_eval,
            "early_stopping": dict(early_stopping) if early_stopping is not None else None,
            "weights": dict(weights) if weights is not None else None,
        }
        self.options = parse_arguments(self.name, _Arguments, given)

    @classmethod
    def from_arguments(
        cls, arguments: Mapping[str, Any], algorithms: Sequence[AlgorithmFactory]
    ) -> FederatedAveraging:
        parsed = parse_arguments(cls.name, _Arguments, arguments)
        return cls(
            algorithm=algorithms,
            rounds=parsed.rounds,
            epochs_between_parameter_updates=parsed.epochs_between_parameter_updates,
            steps_between_parameter_updates=parsed.steps_between_parameter_updates,
            auto_eval=parsed.auto_eval,
            early_stopping=(
                parsed.early_stopping.model_dump() if parsed.early_stopping is not None else None
            ),
            weights=parsed.weights,
        )

    def arguments(self) -> dict[str, Any]:
        return self.options.model_dump(exclude_none=True)

    def worker(self) -> WorkerProtocol:
        return _Worker(self.training, self.options)

    def modeller(self) -> ModellerProtocol:
        return _Modeller(self.training, self.options)
