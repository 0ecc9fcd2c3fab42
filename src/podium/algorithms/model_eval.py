"""``ModelEvaluation`` and ``ModelInference``: a trained model's metrics and predictions on
each pod's data.

Both carry the model's definition (``{name, hyperparameters}``), the features and the
normalisation it was trained with (:mod:`podium.models.features`) and the SHA-256 of its
weights. The weights themselves are too large for the signed task definition: the
modeller sends them to each pod before the batches (``initial_payload``, as
``MODEL_PARAMETERS``), and the pod loads them only if their hash is the one the task was
signed for, and only into the architecture the definition names (strictly: a tensor
missing, unexpected or of another shape ends the task, naming it).

**Evaluation.** Without a data structure every row is evaluated; with one, its test split
(``DataStructure.split(frame, seed=seed)``, as training splits). Rows are scored batch by
batch, but the metrics are computed once over all of a pod's rows after the last batch,
so every metric (AUC and F1 too) is exact for the pod: a pod keeps each batch's targets
and model outputs (with a data structure, each batch's rows, since the split needs them
all), which fits in memory for evaluation data. The modeller combines the pods' metrics
weighted by their row counts (:func:`podium.models.metrics.combine_metrics`: exact for
accuracy, loss, MSE and MAE; an approximation for F1, AUC and R²).

**Inference.** Each batch's predictions: a ``prediction`` column (the class label as text,
or the value for regression) and, with ``class_outputs``, one ``p_<class>`` probability
column per class. Predictions are row-level data derived from the pod's rows: with
``ResultsOnly`` they come back (with the pod's own columns) only to a modeller the pod
allows row-level data; :mod:`podium.protocols.inference_report` writes them into a report
on the pod, counts them against the pod owner's usage limits, and returns them to the
``infer`` role.

PyTorch is imported only where a model is built (``podium[ml]``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from podium.algorithms._tables import TableResult, stack
from podium.algorithms.model_training import ModelDefinition
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.core.messages import AbortReason
from podium.models.data_structure import DataStructure
from podium.models.features import Normalisation, TabularEncoder, TabularFeatures
from podium.models.metrics import classification_metrics, combine_metrics, regression_metrics
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    WorkerAlgorithm,
    WorkerContext,
)

if TYPE_CHECKING:
    from podium.models.registry import BuiltModel
    from podium.protocols.fedavg import TrainingResult

__all__ = ["InferenceWorker", "ModelEvaluation", "ModelInference"]

_SHA256 = r"^[0-9a-f]{64}$"
#: The column holding each row's prediction.
PREDICTION = "prediction"


# -- what both algorithms carry ------------------------------------------------------------


@dataclass(frozen=True)
class _SignedModel:
    """The model's definition, features, normalisation and the hash of its weights."""

    owner: str
    model: ModelDefinition
    features: TabularFeatures
    normalisation: Normalisation
    weights_sha256: str

    @classmethod
    def parse(
        cls,
        owner: str,
        model: ModelDefinition,
        features: Mapping[str, Any],
        normalisation: Mapping[str, Any],
        weights_sha256: str,
    ) -> _SignedModel:
        """Check that the pieces fit together.

        Raises:
            TaskDefinitionError: Bad features or normalisation, an unknown model or bad
                hyperparameters, or a classification with fewer than two classes.
        """
        parsed_features = TabularFeatures.from_definition(features)
        parsed_normalisation = Normalisation.from_definition(normalisation)
        TabularEncoder(parsed_features, parsed_normalisation)  # every column normalised
        if parsed_features.task == "classification" and len(parsed_features.classes) < 2:
            raise TaskDefinitionError(
                f"{owner}: features: a classification needs at least two classes, got "
                f"{list(parsed_features.classes)}"
            )
        _check_model(owner, model)
        return cls(owner, model, parsed_features, parsed_normalisation, weights_sha256)

    def arguments(self) -> dict[str, Any]:
        """The signed part of the definition (canonical JSON values)."""
        return {
            "model": {"name": self.model.name, "hyperparameters": dict(self.model.hyperparameters)},
            "features": self.features.to_definition(),
            "normalisation": self.normalisation.to_definition(),
            "weights_sha256": self.weights_sha256,
        }

    def encoder(self) -> TabularEncoder:
        """The encoder of the pod's rows."""
        return TabularEncoder(self.features, self.normalisation)

    @property
    def n_outputs(self) -> int:
        """The model's outputs: one per class, or one value."""
        features = self.features
        return len(features.classes) if features.task == "classification" else 1


def _check_model(owner: str, model: ModelDefinition) -> None:
    """Refuse a model Podium does not have, or bad hyperparameters, before sending."""
    try:
        from podium.models.registry import parse_hyperparameters  # noqa: PLC0415 - torch
    except ImportError:
        raise TaskDefinitionError(
            f"{owner} needs PyTorch here: install podium[ml] (pip install 'podium[ml]')"
        ) from None
    try:
        parse_hyperparameters(model.name, model.hyperparameters)
    except TaskDefinitionError as error:
        raise TaskDefinitionError(f"{owner}: {error}") from None


def _digest(weights: bytes) -> str:
    if not isinstance(weights, bytes | bytearray) or not weights:
        raise TaskDefinitionError(
            "the model's weights must be non-empty safetensors bytes "
            "(TrainingResult.weights, or podium.models.weights.state_to_bytes)"
        )
    return hashlib.sha256(weights).hexdigest()


def _definition(value: Mapping[str, Any] | TabularFeatures | Normalisation) -> dict[str, Any]:
    if isinstance(value, TabularFeatures | Normalisation):
        return value.to_definition()
    return dict(value)


# -- the worker sides ----------------------------------------------------------------------


class _ModelWorker(WorkerAlgorithm):
    """A worker that loads the signed weights into the defined model before the batches."""

    takes_initial: ClassVar[bool] = True

    def __init__(self, signed: _SignedModel) -> None:
        self._signed = signed
        self._encoder = signed.encoder()
        self._model: BuiltModel | None = None

    def receive_initial(self, data: bytes) -> None:
        """Load ``data`` (safetensors) into the model, if it is what the task was signed for.

        Raises:
            AbortTask: The hash differs from the signed one; the bytes are not
                safetensors; or their tensors do not fit the architecture (named).
        """
        owner = self._signed.owner
        if hashlib.sha256(data).hexdigest() != self._signed.weights_sha256:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"{owner}: the weights are not the ones the task was signed for (their "
                f"SHA-256 is not {self._signed.weights_sha256})",
            )
        from podium.models.registry import build_model  # noqa: PLC0415 - torch
        from podium.models.weights import bytes_to_state, load_into  # noqa: PLC0415 - torch

        try:
            model = build_model(
                self._signed.model.name,
                self._signed.model.hyperparameters,
                cardinalities=self._encoder.cardinalities,
                n_continuous=self._encoder.n_continuous,
                n_outputs=self._signed.n_outputs,
            )
            state, _ = bytes_to_state(data)
            load_into(model.module, state)
        except (ProtocolError, TaskDefinitionError) as error:
            raise AbortTask(AbortReason.WORKER_ERROR, f"{owner}: {error}") from None
        model.module.eval()
        self._model = model

    def _outputs(self, frame: pd.DataFrame) -> tuple[NDArray[Any] | None, NDArray[np.float64]]:
        """The encoded targets (None without a target column) and the model's outputs:
        probabilities ``[n, classes]`` or values ``[n]``.

        Rows whose target is missing or an unknown class are left out when there is a
        target column.

        Raises:
            AbortTask: The weights never came, or a feature column is not on the pod.
        """
        if self._model is None:
            raise AbortTask(
                AbortReason.WORKER_ERROR, f"{self._signed.owner}: the model's weights never came"
            )
        from podium.models.training import TabularTensors, predict  # noqa: PLC0415 - torch

        try:
            encoded = self._encoder.encode(frame)
        except TaskDefinitionError as error:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"{self._signed.owner} on {self.context.pod_id}: {error}",
            ) from None
        tensors = TabularTensors.from_encoded(encoded)
        outputs = predict(self._model, tensors, task=self._signed.features.task)
        return encoded.target, outputs


class _EvaluationWorker(_ModelWorker):
    """Keeps each batch's targets and outputs (or, with a data structure, its rows: the
    split needs them all); the metrics come once over every row, in :meth:`finish`."""

    def __init__(self, signed: _SignedModel, structure: DataStructure | None, seed: int) -> None:
        super().__init__(signed)
        self._structure = structure
        self._seed = seed
        self._rows: dict[int, pd.DataFrame] = {}  # per batch: a retried batch replaces its own
        self._scored: dict[int, tuple[NDArray[Any], NDArray[np.float64]]] = {}

    def run(self, batch: Batch) -> None:
        frame = batch.frame()
        if self._structure is not None:
            wanted = {*self._signed.features.columns, self._signed.features.target}
            if self._structure.split_column is not None:
                wanted.add(self._structure.split_column)
            self._rows[batch.index] = frame[[c for c in frame.columns if c in wanted]].copy()
            return None
        self._scored[batch.index] = self._scored_rows(frame)
        return None

    def _scored_rows(self, frame: pd.DataFrame) -> tuple[NDArray[Any], NDArray[np.float64]]:
        target = self._signed.features.target
        if target not in frame.columns:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"ModelEvaluation: the target column {target!r} is not on "
                f"{self.context.pod_id}; evaluation needs the true values",
            )
        labels, outputs = self._outputs(frame)
        assert labels is not None  # the target column is there
        return labels, outputs

    def finish(self) -> dict[str, Any]:
        """``{"metrics": {...}, "count": n}`` over every evaluated row (finite metrics)."""
        if self._structure is not None:
            test = self._test_rows()
            scored = [self._scored_rows(test)] if len(test) else []
        else:
            scored = [self._scored[index] for index in sorted(self._scored)]
        if not scored:
            return {"metrics": {}, "count": 0}
        labels = np.concatenate([labels for labels, _ in scored])
        outputs = np.concatenate([outputs for _, outputs in scored])
        count = int(labels.shape[0])
        if count == 0:
            return {"metrics": {}, "count": 0}
        minimum = self.context.min_group_size
        if count < minimum:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"ModelEvaluation: {self.context.pod_id} has {count} rows to evaluate, "
                f"fewer than its smallest group of {minimum}; metrics of so few rows are "
                "not shared",
            )
        if self._signed.features.task == "classification":
            metrics = classification_metrics(labels, outputs)
        else:
            metrics = regression_metrics(labels, outputs)
        finite = {
            name: float(value)
            for name, value in metrics.items()
            if name != "count" and math.isfinite(value)
        }
        return {"metrics": finite, "count": count}

    def _test_rows(self) -> pd.DataFrame:
        """The data structure's test split of every batch's rows together."""
        assert self._structure is not None
        frames = [self._rows[index] for index in sorted(self._rows)]
        whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        try:
            return self._structure.split(whole, seed=self._seed).test
        except TaskDefinitionError as error:
            raise AbortTask(
                AbortReason.WORKER_ERROR, f"ModelEvaluation on {self.context.pod_id}: {error}"
            ) from None


class InferenceWorker(_ModelWorker):
    """``ModelInference``'s worker side. Protocols that handle predictions themselves
    (:mod:`podium.protocols.inference_report`) call :meth:`predictions` and
    :meth:`joined`; :meth:`run` (``ResultsOnly``) needs a row-level modeller."""

    def __init__(
        self,
        signed: _SignedModel,
        *,
        class_outputs: bool,
        model_id: str,
        require_row_level: bool,
    ) -> None:
        super().__init__(signed)
        self.class_outputs = class_outputs
        self.model_id = model_id
        self._require_row_level = require_row_level

    def initialise(self, context: WorkerContext) -> None:
        """Refuse, before any weights or data, a modeller who may not see rows (when
        the predictions would come back as they are)."""
        super().initialise(context)
        if self._require_row_level and not context.row_level:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"ModelInference returns a prediction for each row of {context.pod_id}, "
                f"which is row-level data, and {context.modeller} may not receive row-level "
                "data there. Run it with InferenceAndCSVReport (the predictions stay on "
                "the pod) or InferenceAndReturnCSVReport (for the infer role), or ask the "
                "pod's owner for a row-level role",
            )

    @property
    def prediction_columns(self) -> list[str]:
        """``prediction`` and, with class outputs, ``p_<class>`` per class."""
        return _prediction_columns(self._signed.features, self.class_outputs)

    def predictions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row of predictions per row of ``frame`` (index from 0).

        Raises:
            AbortTask: The weights never came, or a feature column is not on the pod.
        """
        features = self._signed.features
        _, outputs = self._outputs(frame.drop(columns=[features.target], errors="ignore"))
        if features.task == "regression":
            return pd.DataFrame({PREDICTION: outputs.astype(np.float64)})
        classes = np.asarray(features.classes, dtype=object)
        if len(outputs) == 0:
            labels = pd.Series([], dtype=object)
        else:
            labels = pd.Series(classes[outputs.argmax(axis=1)], dtype=object)
        columns: dict[str, Any] = {PREDICTION: labels}
        if self.class_outputs:
            for index, name in enumerate(features.classes):
                columns[f"p_{name}"] = outputs[:, index]
        return pd.DataFrame(columns)

    def joined(self, frame: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
        """The first ``len(predictions)`` rows of ``frame`` with the predictions appended.

        Raises:
            AbortTask: The pod's data already has a column of a prediction's name.
        """
        clash = [c for c in predictions.columns if c in frame.columns]
        if clash:
            raise AbortTask(
                AbortReason.WORKER_ERROR,
                f"ModelInference: the data on {self.context.pod_id} already has column(s) "
                f"{clash}, which the predictions are written to; rename them in the pod's "
                "data or leave them out of the report's columns",
            )
        rows = frame.iloc[: len(predictions)].reset_index(drop=True)
        return pd.concat([rows, predictions.reset_index(drop=True)], axis=1)

    def run(self, batch: Batch) -> pd.DataFrame:
        frame = batch.frame()
        return self.joined(frame, self.predictions(frame))


def _prediction_columns(features: TabularFeatures, class_outputs: bool) -> list[str]:
    columns = [PREDICTION]
    if class_outputs and features.task == "classification":
        columns += [f"p_{name}" for name in features.classes]
    return columns


# -- the modeller sides --------------------------------------------------------------------


class _EvaluationModeller(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> TableResult:
        """Each pod's metrics as a one-row table; combined: count-weighted over pods."""
        per_pod: dict[str, dict[str, float]] = {}
        for pod, items in results.items():
            finals = [item for item in items if isinstance(item, dict) and "metrics" in item]
            if finals:
                per_pod[pod] = _metrics_of(pod, finals[-1])
        combined = combine_metrics(per_pod)
        return TableResult(
            {pod: pd.DataFrame([metrics]) for pod, metrics in per_pod.items()},
            pd.DataFrame([combined]),
        )


def _metrics_of(pod: str, item: Mapping[str, Any]) -> dict[str, float]:
    metrics, count = item.get("metrics"), item.get("count")
    if (
        not isinstance(metrics, dict)
        or not isinstance(count, int)
        or count < 0
        or not all(isinstance(v, int | float) for v in metrics.values())
    ):
        raise ProtocolError(f"{pod} sent evaluation metrics that are not numbers and a count")
    return {**{str(k): float(v) for k, v in metrics.items()}, "count": float(count)}


class _InferenceModeller(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> TableResult:
        """Each pod's predictions (its batches in order); combined: stacked."""
        per_pod: dict[str, pd.DataFrame] = {}
        for pod, items in results.items():
            tables = [item for item in items if isinstance(item, pd.DataFrame)]
            if len(tables) != len(items):
                raise ProtocolError(f"{pod} sent predictions that are not tables")
            if tables:
                per_pod[pod] = pd.concat(tables, ignore_index=True)
        return TableResult(per_pod, stack(per_pod))


# -- the factories -------------------------------------------------------------------------


class _TrainedModelFactory(AlgorithmFactory):
    """What evaluation and inference share: a signed model definition, and the weights it
    names by their hash (sent as the initial payload, never in the definition)."""

    _signed: _SignedModel
    _weights: bytes | None

    @property
    def weights_sha256(self) -> str:
        """The SHA-256 of the weights, as signed."""
        return self._signed.weights_sha256

    def initial_payload(self) -> bytes | None:
        return self._weights

    def attach_weights(self, weights: bytes) -> None:
        """Give a factory built from a definition (a task file naming a saved model) the
        weights its definition's ``weights_sha256`` names.

        Raises:
            TaskDefinitionError: The weights are not the ones the definition names.
        """
        if _digest(weights) != self._signed.weights_sha256:
            raise TaskDefinitionError(
                f"{self.name}: the weights file is not the one the task names (its SHA-256 "
                f"is not {self._signed.weights_sha256})"
            )
        self._weights = bytes(weights)


class _EvaluationArguments(Arguments):
    model: ModelDefinition
    features: dict[str, Any]
    normalisation: dict[str, Any]
    weights_sha256: str = Field(pattern=_SHA256)
    data_structure: dict[str, Any] | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class ModelEvaluation(_TrainedModelFactory):
    """Evaluate a trained model on each pod's data; return the metrics per pod and over all.

    Args:
        model: ``{"name": "TabularMLP", "hyperparameters": {...}}``, as trained.
        features: The features the model was trained with
            (``TrainingResult.features``, or :class:`~podium.models.features.TabularFeatures`).
        normalisation: Their normalisation (``TrainingResult.normalisation``).
        weights: The trained weights (safetensors bytes); the signed definition holds
            their SHA-256, and they go to the pods before the batches.
        data_structure: Evaluate only its test split (the data structure the model was
            trained with); without one, every row.
        seed: The split's seed (the training's seed gives the training's split).
    """

    name = "ModelEvaluation"
    batchable = True
    task_level: ClassVar[tuple[str, ...]] = ("model", "data_structure")

    _signed: _SignedModel
    _weights: bytes | None
    structure: DataStructure | None
    seed: int

    def __init__(
        self,
        *,
        model: Mapping[str, Any],
        features: Mapping[str, Any] | TabularFeatures,
        normalisation: Mapping[str, Any] | Normalisation,
        weights: bytes,
        data_structure: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        arguments: dict[str, Any] = {
            "model": dict(model),
            "features": _definition(features),
            "normalisation": _definition(normalisation),
            "weights_sha256": _digest(weights),
            "seed": seed,
        }
        if data_structure is not None:
            arguments["data_structure"] = dict(data_structure)
        self._setup(parse_arguments(self.name, _EvaluationArguments, arguments))
        self._weights = bytes(weights)

    @classmethod
    def from_training(
        cls,
        result: TrainingResult,
        *,
        data_structure: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> ModelEvaluation:
        """The evaluation of federated training's result (its model, features,
        normalisation and final weights)."""
        return cls(
            model=result.model,
            features=result.features,
            normalisation=result.normalisation,
            weights=result.weights,
            data_structure=data_structure,
            seed=seed,
        )

    def _setup(self, parsed: _EvaluationArguments) -> None:
        self._signed = _SignedModel.parse(
            self.name, parsed.model, parsed.features, parsed.normalisation, parsed.weights_sha256
        )
        self.structure = None
        if parsed.data_structure is not None:
            self.structure = DataStructure.from_definition(parsed.data_structure)
            target = self._signed.features.target
            if self.structure.target != target:
                raise TaskDefinitionError(
                    f"ModelEvaluation: the data structure's target {self.structure.target!r} "
                    f"is not the model's target {target!r}"
                )
        self.seed = parsed.seed

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ModelEvaluation:
        """The pod's factory: the signed definition, without the weights."""
        factory = cls.__new__(cls)
        factory._setup(parse_arguments(cls.name, _EvaluationArguments, arguments))
        factory._weights = None
        return factory

    def arguments(self) -> dict[str, Any]:
        arguments = self._signed.arguments()
        if self.structure is not None:
            arguments["data_structure"] = self.structure.to_definition()
            arguments["seed"] = self.seed
        return arguments

    def worker(self) -> WorkerAlgorithm:
        return _EvaluationWorker(self._signed, self.structure, self.seed)

    def modeller(self) -> ModellerAlgorithm:
        return _EvaluationModeller()


class _InferenceArguments(Arguments):
    model: ModelDefinition
    features: dict[str, Any]
    normalisation: dict[str, Any]
    weights_sha256: str = Field(pattern=_SHA256)
    class_outputs: bool = False
    model_id: str | None = Field(default=None, min_length=1, max_length=200)


class ModelInference(_TrainedModelFactory):
    """Predict with a trained model on each pod's rows.

    Args:
        model: ``{"name": "TabularMLP", "hyperparameters": {...}}``, as trained.
        features: The features the model was trained with.
        normalisation: Their normalisation.
        weights: The trained weights (safetensors bytes); the signed definition holds
            their SHA-256.
        class_outputs: Add a ``p_<class>`` probability column per class.
        model_id: The model's name for the pod owner's usage limits (default: the first
            16 hex digits of the weights' SHA-256).
    """

    name = "ModelInference"
    batchable = True
    task_level: ClassVar[tuple[str, ...]] = ("model",)

    _signed: _SignedModel
    _weights: bytes | None
    class_outputs: bool
    _model_id: str | None

    def __init__(
        self,
        *,
        model: Mapping[str, Any],
        features: Mapping[str, Any] | TabularFeatures,
        normalisation: Mapping[str, Any] | Normalisation,
        weights: bytes,
        class_outputs: bool = False,
        model_id: str | None = None,
    ) -> None:
        arguments: dict[str, Any] = {
            "model": dict(model),
            "features": _definition(features),
            "normalisation": _definition(normalisation),
            "weights_sha256": _digest(weights),
            "class_outputs": class_outputs,
            "model_id": model_id,
        }
        self._setup(parse_arguments(self.name, _InferenceArguments, arguments))
        self._weights = bytes(weights)

    @classmethod
    def from_training(
        cls, result: TrainingResult, *, class_outputs: bool = False, model_id: str | None = None
    ) -> ModelInference:
        """Inference with federated training's result."""
        return cls(
            model=result.model,
            features=result.features,
            normalisation=result.normalisation,
            weights=result.weights,
            class_outputs=class_outputs,
            model_id=model_id,
        )

    def _setup(self, parsed: _InferenceArguments) -> None:
        self._signed = _SignedModel.parse(
            self.name, parsed.model, parsed.features, parsed.normalisation, parsed.weights_sha256
        )
        self.class_outputs = parsed.class_outputs
        self._model_id = parsed.model_id

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ModelInference:
        """The pod's factory: the signed definition, without the weights."""
        factory = cls.__new__(cls)
        factory._setup(parse_arguments(cls.name, _InferenceArguments, arguments))
        factory._weights = None
        return factory

    @property
    def model_id(self) -> str:
        """The model's name for usage limits."""
        return self._model_id or self._signed.weights_sha256[:16]

    @property
    def features(self) -> TabularFeatures:
        """The model's features (its classes, for a classification)."""
        return self._signed.features

    @property
    def prediction_columns(self) -> list[str]:
        """The columns each prediction has."""
        return _prediction_columns(self._signed.features, self.class_outputs)

    def arguments(self) -> dict[str, Any]:
        arguments = self._signed.arguments()
        arguments["class_outputs"] = self.class_outputs
        if self._model_id is not None:
            arguments["model_id"] = self._model_id
        return arguments

    def worker(self, *, require_row_level: bool = True) -> InferenceWorker:
        """A new worker side; ``require_row_level=False`` for protocols that keep the
        predictions on the pod or return them under their own rules."""
        return InferenceWorker(
            self._signed,
            class_outputs=self.class_outputs,
            model_id=self.model_id,
            require_row_level=require_row_level,
        )

    def modeller(self) -> ModellerAlgorithm:
        return _InferenceModeller()
