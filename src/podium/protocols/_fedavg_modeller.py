"""The modeller's side of federated averaging: the plan (features, normalisation, initial
weights) and the rounds. Imported only when a training task runs (torch is optional)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from podium.algorithms.model_training import FederatedModelTraining
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.core.messages import (
    MessageType,
    Opaque,
    TrainingComplete,
    TrainingMetrics,
)
from podium.core.results import decode_result
from podium.models.features import Normalisation, TabularEncoder, TabularFeatures
from podium.models.images import ImageFeatures
from podium.models.metrics import combine_metrics
from podium.models.registry import BuiltModel, build_model
from podium.models.weights import bytes_to_state, state_to_bytes, weighted_average
from podium.protocols.base import ModellerTask
from podium.protocols.fedavg import RoundRecord, TrainingResult

__all__ = ["TrainingPlan", "merge_moments", "train"]

_log = logging.getLogger("podium.modeller")
#: Metrics where higher is better (early stopping's default direction).
_HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "auc", "r2"})


def merge_moments(
    parts: Sequence[Mapping[str, Sequence[float]]],
) -> dict[str, tuple[int, float, float]]:
    """Chan's parallel merge of (count, mean, M2) per column over the pods."""
    merged: dict[str, tuple[int, float, float]] = {}
    for part in parts:
        for column, (count, mean, m2) in part.items():
            n_b, mean_b, m2_b = int(count), float(mean), float(m2)
            if column not in merged:
                merged[column] = (n_b, mean_b, m2_b)
                continue
            n_a, mean_a, m2_a = merged[column]
            n = n_a + n_b
            if n == 0:
                continue
            delta = mean_b - mean_a
            merged[column] = (
                n,
                mean_a + delta * n_b / n,
                m2_a + m2_b + delta * delta * n_a * n_b / n,
            )
    return merged


@dataclass
class TrainingPlan:
    """What the modeller decides before the first round."""

    training: FederatedModelTraining
    features: TabularFeatures | ImageFeatures
    normalisation: Normalisation | None  # None for images
    model: BuiltModel
    rows: Mapping[str, Mapping[str, int]]

    @classmethod
    def build(
        cls,
        training: FederatedModelTraining,
        schemas: Mapping[str, Mapping[str, Any]],
        announcements: Mapping[str, Mapping[str, Any]],
    ) -> TrainingPlan:
        """Features from the pods' schemas, normalisation from their moments, a model.

        Raises:
            TaskDefinitionError: A pod's schema lacks a column the task needs, or the model
                cannot be built.
        """
        missing = [pod for pod in announcements if pod not in schemas]
        if missing:
            raise TaskDefinitionError(f"no schema on the hub for {', '.join(missing)}")
        pods = sorted(announcements)
        rows = {p: dict(announcements[p].get("rows", {})) for p in pods}
        if training.kind == "image":
            return cls._for_images(training, [schemas[p] for p in pods], rows)
        features = TabularFeatures.from_schemas([schemas[p] for p in pods], training.structure)
        moments = merge_moments([announcements[p].get("moments", {}) for p in pods])
        lacking = [c for c in features.continuous if c not in moments]
        if lacking:
            raise ProtocolError(f"the pods sent no moments for {', '.join(lacking)}")
        normalisation = Normalisation.from_moments({c: moments[c] for c in features.continuous})
        n_outputs = len(features.classes) if features.task == "classification" else 1
        encoder = TabularEncoder(features, normalisation)
        model = build_model(
            training.model.name,
            training.model.hyperparameters,
            cardinalities=encoder.cardinalities,
            n_continuous=encoder.n_continuous,
            n_outputs=n_outputs,
            seed=training.seed,
        )
        return cls(training, features, normalisation, model, rows)

    @classmethod
    def _for_images(
        cls,
        training: FederatedModelTraining,
        schemas: list[Mapping[str, Any]],
        rows: Mapping[str, Mapping[str, int]],
    ) -> TrainingPlan:
        assert training.image_size is not None
        mode: Literal["L", "RGB"] = "RGB" if training.image_mode == "RGB" else "L"
        features = ImageFeatures.from_schemas(
            schemas, target=training.structure.target, size=training.image_size, mode=mode
        )
        model = build_model(
            training.model.name,
            training.model.hyperparameters,
            n_outputs=len(features.classes),
            in_channels=features.channels,
            image_size=features.size,
            seed=training.seed,
        )
        return cls(training, features, None, model, rows)

    def setup(self) -> dict[str, Any]:
        """What every pod gets before the first round."""
        return {
            "features": self.features.to_definition(),
            "normalisation": (
                self.normalisation.to_definition() if self.normalisation is not None else {}
            ),
        }


async def _one_round(
    task: ModellerTask, pod: str, auto_eval: bool
) -> tuple[bytes, int, float, dict[str, float], float]:
    update = await task.receive(pod, MessageType.TRAINING_UPDATE)
    if not isinstance(update, Opaque):
        raise ProtocolError(f"{pod} sent a TRAINING_UPDATE that is not weights")
    _, metadata = await asyncio.to_thread(bytes_to_state, update.data)
    try:
        samples = int(metadata["samples"])
        loss = float(metadata.get("loss", "nan"))
        seconds = float(metadata.get("seconds", "0"))
    except (KeyError, ValueError):
        raise ProtocolError(f"{pod}'s update does not say how many samples it saw") from None
    metrics: dict[str, float] = {}
    if auto_eval:
        record = await task.receive(pod, MessageType.TRAINING_METRICS)
        if isinstance(record, TrainingMetrics):
            metrics = dict(record.metrics)
    return update.data, samples, loss, metrics, seconds


def _better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


@dataclass
class _EarlyStopping:
    """Tracks the best round of a validation metric (or just the last round)."""

    metric: str | None
    mode: str
    patience: int
    min_delta: float
    best_value: float | None = None
    best_weights: bytes = b""
    best_round: int = 0
    stale: int = 0

    @classmethod
    def of(cls, options: Any, weights: bytes) -> _EarlyStopping:
        stopping = options.early_stopping
        if stopping is None:
            return cls(None, "min", 0, 0.0, best_weights=weights)
        mode = stopping.mode or ("max" if stopping.metric in _HIGHER_IS_BETTER else "min")
        return cls(
            stopping.metric, mode, stopping.patience, stopping.min_delta, best_weights=weights
        )

    def stop_after(self, number: int, weights: bytes, combined: Mapping[str, float]) -> bool:
        """Record round ``number``; whether training should stop now."""
        if self.metric is None or self.metric not in combined:
            self.best_weights, self.best_round = weights, number
            return False
        value = combined[self.metric]
        if _better(value, self.best_value, self.mode, self.min_delta):
            self.best_value, self.best_weights, self.best_round, self.stale = (
                value, weights, number, 0,
            )  # fmt: skip
            return False
        self.stale += 1
        return self.stale >= self.patience


class _Rounds:
    """The rounds of one training task, on the modeller."""

    def __init__(self, task: ModellerTask, pods: list[str], options: Any) -> None:
        self.task = task
        self.active = list(pods)
        self.options = options

    async def collect(self, number: int, weights: bytes) -> dict[str, tuple[Any, ...]]:
        """Send the weights, gather each pod's update; a pod that broke is dropped."""
        await asyncio.gather(
            *(
                self.task.send(pod, MessageType.MODEL_PARAMETERS, Opaque(weights))
                for pod in self.active
            )
        )
        outcomes = await asyncio.gather(
            *(_one_round(self.task, pod, self.options.auto_eval) for pod in self.active),
            return_exceptions=True,
        )
        updates = {}
        for pod, outcome in zip(list(self.active), outcomes, strict=True):
            if isinstance(outcome, ProtocolError):
                _log.warning("round %d: %s is dropped: %s", number, pod, outcome)
                self.task.report(f"round {number + 1}: {pod} is dropped: {outcome}")
                self.active.remove(pod)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                updates[pod] = outcome
        if not updates:
            raise ProtocolError(f"round {number + 1}: no pod sent an update")
        return updates

    async def average(self, number: int, updates: Mapping[str, tuple[Any, ...]]) -> bytes:
        """The weighted average of the pods' weights (samples, or the explicit weights)."""
        states = []
        for pod, (data, samples, *_) in updates.items():
            state, _ = await asyncio.to_thread(bytes_to_state, data)
            given = self.options.weights
            states.append((state, given.get(pod, 0.0) if given else float(samples)))
        if sum(w for _, w in states) <= 0:
            raise ProtocolError(f"round {number + 1}: every pod's weight is 0")
        averaged = await asyncio.to_thread(weighted_average, states)
        return await asyncio.to_thread(state_to_bytes, averaged)

    async def finish(self, final: bytes) -> dict[str, dict[str, float]]:
        """The final weights to every pod; their test metrics."""
        for pod in self.active:
            await self.task.send(pod, MessageType.TRAINING_COMPLETE, TrainingComplete(True))
            await self.task.send(pod, MessageType.MODEL_PARAMETERS, Opaque(final))
        test: dict[str, dict[str, float]] = {}
        for pod in self.active:
            record = await self.task.receive(pod, MessageType.EVALUATION_RESULTS)
            value = decode_result(record.data) if isinstance(record, Opaque) else None
            if isinstance(value, dict) and isinstance(value.get("test"), dict):
                test[pod] = {k: float(v) for k, v in value["test"].items()}
        return test


def _record(number: int, updates: Mapping[str, tuple[Any, ...]], began: float) -> RoundRecord:
    per_pod = {pod: u[3] for pod, u in updates.items() if u[3]}
    return RoundRecord(
        round=number,
        samples={pod: u[1] for pod, u in updates.items()},
        train_loss={pod: u[2] for pod, u in updates.items() if math.isfinite(u[2])},
        metrics=per_pod,
        combined=combine_metrics(per_pod) if per_pod else {},
        seconds=time.monotonic() - began,
        train_seconds={pod: u[4] for pod, u in updates.items()},
    )


async def train(
    task: ModellerTask, pods: list[str], plan: TrainingPlan, options: Any
) -> TrainingResult:
    """Run the rounds, then the final evaluation (see :mod:`podium.protocols.fedavg`)."""
    weights = await asyncio.to_thread(state_to_bytes, plan.model.module)
    rounds = _Rounds(task, pods, options)
    stopping = _EarlyStopping.of(options, weights)
    history: list[RoundRecord] = []
    stopped = False
    first_round = time.monotonic()
    for number in range(options.rounds):
        began = time.monotonic()
        updates = await rounds.collect(number, weights)
        weights = await rounds.average(number, updates)
        record = _record(number, updates, began)
        history.append(record)
        task.report(_round_line(number, options.rounds, record.combined))
        if stopping.stop_after(number, weights, record.combined):
            stopped = True
            break
    test = await rounds.finish(stopping.best_weights)
    return TrainingResult(
        model={
            "name": plan.training.model.name,
            "hyperparameters": plan.model.hyperparameters.to_definition(),
        },
        weights=stopping.best_weights,
        features=plan.features.to_definition(),
        normalisation=plan.normalisation.to_definition() if plan.normalisation else {},
        history=tuple(history),
        test_metrics=test,
        test_combined=combine_metrics(test) if test else {},
        best_round=stopping.best_round,
        stopped_early=stopped,
        pods=tuple(pods),
        first_round_started=first_round,
    )


def _round_line(number: int, rounds: int, combined: Mapping[str, float]) -> str:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in combined.items() if k != "count")
    return f"round {number + 1}/{rounds}" + (f": {shown}" if shown else "")
