"""The pod's side of federated averaging: its data split, encoded, and its local training.

Blocking code (pandas, torch), run by the engine in a worker thread. Imported only when a
pod runs a training task, so the core installs without torch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from podium.algorithms.model_training import FederatedModelTraining
from podium.core.messages import AbortReason
from podium.data.sources.image_source import IMAGE_COLUMN
from podium.models.data_structure import Split
from podium.models.features import Normalisation, TabularEncoder, TabularFeatures, moments_of
from podium.models.images import ImageFeatures
from podium.models.registry import BuiltModel, build_model
from podium.models.training import TabularTensors, evaluate, train
from podium.models.weights import bytes_to_state, load_into, state_to_bytes
from podium.protocols.base import AbortTask

__all__ = ["LocalData", "Trainer"]


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that are finite numbers (an AUC on a pod with one class is NaN)."""
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)
    }


@dataclass
class LocalData:
    """A pod's rows, split for training, and what it announces to the modeller."""

    training: FederatedModelTraining
    split: Split
    moments: dict[str, tuple[int, float, float]]
    abort_reason = AbortReason.WORKER_ERROR

    @classmethod
    def prepare(cls, training: FederatedModelTraining, frame: pd.DataFrame) -> LocalData:
        """Split ``frame`` and take the moments of its numeric training columns.

        Raises:
            AbortTask: The target or a selected column is not on this pod.
        """
        structure = training.structure
        if training.kind == "image":
            missing = [c for c in (structure.target, IMAGE_COLUMN) if c not in frame.columns]
            if missing:
                raise AbortTask(
                    AbortReason.WORKER_ERROR,
                    f"no column {', '.join(map(repr, missing))} on this pod; its columns: "
                    f"{', '.join(map(str, frame.columns))}",
                )
            return cls(training, structure.split(frame, seed=training.seed), {})
        try:
            columns = structure.feature_columns(list(frame.columns))
        except Exception as error:  # noqa: BLE001 - the structure's own error, for the modeller
            raise AbortTask(AbortReason.WORKER_ERROR, str(error)) from None
        split = structure.split(frame, seed=training.seed)
        # every column a schema may call continuous (numbers, booleans, dates, durations)
        numeric = [c for c in columns if frame[c].dtype.kind in "biufmM"]
        return cls(training, split, moments_of(split.train, numeric))

    def announcement(self) -> dict[str, Any]:
        """What the modeller needs for the setup: moments and the split's sizes."""
        return {
            "moments": {c: list(m) for c, m in self.moments.items()},
            "rows": {
                "train": len(self.split.train),
                "validation": len(self.split.validation),
                "test": len(self.split.test),
            },
        }

    def trainer(self, setup: dict[str, Any]) -> Trainer:
        """The local trainer for the modeller's features and normalisation."""
        if setup["features"].get("kind") == "image":
            return self._image_trainer(ImageFeatures.from_definition(setup["features"]))
        features = TabularFeatures.from_definition(setup["features"])
        normalisation = Normalisation.from_definition(setup["normalisation"])
        encoder = TabularEncoder(features, normalisation)
        model = build_model(
            self.training.model.name,
            self.training.model.hyperparameters,
            cardinalities=encoder.cardinalities,
            n_continuous=encoder.n_continuous,
            n_outputs=len(features.classes) if features.task == "classification" else 1,
            seed=self.training.seed,
        )
        tensors = {
            name: TabularTensors.from_encoded(encoder.encode(part))
            for name, part in (
                ("train", self.split.train),
                ("validation", self.split.validation),
                ("test", self.split.test),
            )
        }
        return Trainer(model, tensors, features.task, self.training.seed)

    def _image_trainer(self, features: ImageFeatures) -> Trainer:
        """Images are decoded a minibatch at a time from their files."""
        model = build_model(
            self.training.model.name,
            self.training.model.hyperparameters,
            n_outputs=len(features.classes),
            in_channels=features.channels,
            image_size=features.size,
            seed=self.training.seed,
        )
        files = {
            "train": features.files(self.split.train),
            "validation": features.files(self.split.validation),
            "test": features.files(self.split.test),
        }
        return Trainer(model, files, "classification", self.training.seed)


@dataclass
class Trainer:
    """A pod's model and encoded data between rounds."""

    model: BuiltModel
    tensors: dict[str, Any]  # TabularTensors, or ImageFiles read by minibatch
    task: Any
    seed: int

    @property
    def train_samples(self) -> int:
        """Rows this pod trains on (the default weight of its update)."""
        return len(self.tensors["train"])

    @property
    def test_samples(self) -> int:
        """Rows this pod tests on."""
        return len(self.tensors["test"])

    def round(
        self,
        weights: bytes,
        number: int,
        epochs: int | None,
        steps: int | None,
        auto_eval: bool,
    ) -> tuple[bytes, dict[str, float] | None]:
        """Train from ``weights``; the new weights (safetensors) and validation metrics."""
        started = time.perf_counter()
        state, _ = bytes_to_state(weights)
        load_into(self.model.module, state)
        result = train(
            self.model,
            self.tensors["train"],
            epochs=(epochs or 1) if steps is None else None,
            steps=steps,
            seed=self.seed * 100_003 + number,
            task=self.task,
        )
        update = state_to_bytes(
            self.model.module,
            metadata={
                "samples": str(self.train_samples),
                "loss": repr(float(result.loss)),
                "round": str(number),
                "seconds": repr(time.perf_counter() - started),
            },
        )
        metrics = None
        if auto_eval and len(self.tensors["validation"]) > 0:
            metrics = finite(evaluate(self.model, self.tensors["validation"], task=self.task))
        return update, metrics

    def test(self, weights: bytes) -> dict[str, float]:
        """The final weights' metrics on this pod's test rows."""
        state, _ = bytes_to_state(weights)
        load_into(self.model.module, state)
        if len(self.tensors["test"]) == 0:
            return {"count": 0.0}
        return finite(evaluate(self.model, self.tensors["test"], task=self.task))
