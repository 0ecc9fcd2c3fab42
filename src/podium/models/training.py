"""Training, prediction and evaluation of a built model on CPU tensors.

Everything is deterministic with a seed: minibatch order and dropout masks come from a
:class:`torch.Generator` seeded with it, never from torch's global generator, so the
caller's random state is left as it was and concurrent trainings in threads do not
disturb each other. Each :func:`train` call makes a fresh optimizer: federated averaging
restarts local optimisation every round. The number of torch threads is never changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor, nn

from podium.models.architectures import Dropout
from podium.models.metrics import classification_metrics, regression_metrics
from podium.models.registry import BuiltModel

__all__ = [
    "EncodedTable",
    "ImageTensors",
    "TabularTensors",
    "Task",
    "TrainResult",
    "evaluate",
    "predict",
    "train",
]

Task = Literal["classification", "regression"]


class EncodedTable(Protocol):
    """What :meth:`TabularTensors.from_encoded` reads: an encoder's arrays."""

    @property
    def categorical(self) -> NDArray[np.int64]:
        """Category codes ``[n, n_categorical]`` (0 = unknown)."""

    @property
    def continuous(self) -> NDArray[np.float32]:
        """Normalised continuous values ``[n, n_continuous]``."""

    @property
    def target(self) -> NDArray[np.generic] | None:
        """Targets ``[n]``: class indices or values; None when there are none."""


def _target(target: ArrayLike | None, rows: int) -> Tensor | None:
    """``target`` as a 1-D tensor of ``rows`` values (int64 if integral, else float32)."""
    if target is None:
        return None
    array = np.asarray(target)
    if array.ndim != 1 or array.shape[0] != rows:
        raise ValueError(f"targets must have shape [{rows}], got {list(array.shape)}")
    integral = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)
    dtype = np.int64 if integral else np.float32
    return torch.from_numpy(np.array(array, dtype=dtype, copy=True))


@dataclass(frozen=True)
class TabularTensors:
    """A tabular model's inputs (and targets): codes, continuous values, targets."""

    categorical: Tensor
    continuous: Tensor
    target: Tensor | None = None

    def __post_init__(self) -> None:
        rows = self.categorical.shape[0]
        if self.categorical.dim() != 2 or self.categorical.dtype != torch.int64:
            raise ValueError("categorical must be an int64 tensor [n, n_categorical]")
        if self.continuous.dim() != 2 or self.continuous.dtype != torch.float32:
            raise ValueError("continuous must be a float32 tensor [n, n_continuous]")
        if self.continuous.shape[0] != rows:
            raise ValueError(
                f"categorical has {rows} rows but continuous has {self.continuous.shape[0]}"
            )
        if self.target is not None and tuple(self.target.shape) != (rows,):
            raise ValueError(f"target must have shape [{rows}], got {list(self.target.shape)}")

    @classmethod
    def from_numpy(
        cls, categorical: ArrayLike, continuous: ArrayLike, target: ArrayLike | None = None
    ) -> TabularTensors:
        """Tensors copied from numpy arrays (codes as int64, values as float32)."""
        codes = np.array(categorical, dtype=np.int64, copy=True)
        values = np.array(continuous, dtype=np.float32, copy=True)
        if codes.ndim == 1 and codes.size == 0:
            codes = codes.reshape(values.shape[0] if values.ndim == 2 else 0, 0)
        if values.ndim == 1 and values.size == 0:
            values = values.reshape(codes.shape[0] if codes.ndim == 2 else 0, 0)
        return cls(torch.from_numpy(codes), torch.from_numpy(values), _target(target, len(codes)))

    @classmethod
    def from_encoded(cls, encoded: EncodedTable) -> TabularTensors:
        """Tensors of an encoder's output (its ``categorical``, ``continuous``, ``target``)."""
        return cls.from_numpy(encoded.categorical, encoded.continuous, encoded.target)

    def __len__(self) -> int:
        return int(self.categorical.shape[0])

    def rows(self, index: Tensor) -> TabularTensors:
        """The rows at ``index``."""
        target = None if self.target is None else self.target[index]
        return TabularTensors(self.categorical[index], self.continuous[index], target)


@dataclass(frozen=True)
class ImageTensors:
    """An image model's inputs (and targets): float32 images ``[n, C, H, W]``, targets."""

    images: Tensor
    target: Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.dtype != torch.float32:
            raise ValueError("images must be a float32 tensor [n, channels, height, width]")
        rows = self.images.shape[0]
        if self.target is not None and tuple(self.target.shape) != (rows,):
            raise ValueError(f"target must have shape [{rows}], got {list(self.target.shape)}")

    @classmethod
    def from_numpy(cls, images: ArrayLike, target: ArrayLike | None = None) -> ImageTensors:
        """Tensors copied from numpy arrays (images as float32)."""
        array = np.array(images, dtype=np.float32, copy=True)
        return cls(torch.from_numpy(array), _target(target, array.shape[0]))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def rows(self, index: Tensor) -> ImageTensors:
        """The rows at ``index``."""
        return ImageTensors(self.images[index], None if self.target is None else self.target[index])


Data = TabularTensors | ImageTensors


@dataclass(frozen=True)
class TrainResult:
    """What a :func:`train` call did: rows seen, optimizer steps, mean training loss."""

    samples: int
    steps: int
    loss: float


def _forward(model: BuiltModel, batch: Data) -> Tensor:
    """The model's outputs for ``batch``, checking the data matches the model's kind."""
    if isinstance(batch, TabularTensors):
        if model.kind != "tabular":
            raise TypeError(f"{model.name} takes images, not tabular tensors")
        out: Tensor = model.module(batch.categorical, batch.continuous)
        return out
    if model.kind != "image":
        raise TypeError(f"{model.name} takes tabular tensors, not images")
    out = model.module(batch.images)
    return out


def _targets(model: BuiltModel, data: Data, task: Task) -> Tensor:
    """The targets of ``data``, typed and checked for ``task``."""
    if data.target is None:
        raise ValueError("the data has no targets to train or evaluate on")
    if task == "regression":
        if model.n_outputs != 1:
            raise ValueError(f"regression needs a model with 1 output, not {model.n_outputs}")
        return data.target.to(torch.float32)
    if data.target.is_floating_point():
        raise ValueError("classification targets must be integer class indices")
    target = data.target.to(torch.int64)
    if len(target) and (int(target.min()) < 0 or int(target.max()) >= model.n_outputs):
        raise ValueError(
            f"classification targets must be class indices from 0 to {model.n_outputs - 1}"
        )
    return target


def _optimizer(model: BuiltModel) -> torch.optim.Optimizer:
    hp = model.hyperparameters
    parameters = model.module.parameters()
    if hp.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    return torch.optim.Adam(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)


def _loss(task: Task, outputs: Tensor, target: Tensor) -> Tensor:
    if task == "regression":
        return nn.functional.mse_loss(outputs.squeeze(-1), target)
    return nn.functional.cross_entropy(outputs, target)


def _batches(
    rows: int, size: int, generator: torch.Generator, steps: int, *, skip_single: bool
) -> Iterator[Tensor]:
    """``steps`` minibatch indices, reshuffling at the start of each pass.

    With ``skip_single``, a pass's last batch of one row is left out (batch norm cannot
    train on a single row); that row is in the next pass's shuffle.
    """
    made = 0
    while made < steps:
        for batch in torch.split(torch.randperm(rows, generator=generator), size):
            if made == steps:
                return
            if skip_single and len(batch) == 1:
                continue
            made += 1
            yield batch


def _has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@contextmanager
def _dropout_from(module: nn.Module, generator: torch.Generator) -> Iterator[None]:
    """Let every :class:`Dropout` of ``module`` draw from ``generator`` meanwhile."""
    layers = [m for m in module.modules() if isinstance(m, Dropout)]
    for layer in layers:
        layer.generator = generator
    try:
        yield
    finally:
        for layer in layers:
            layer.generator = None


def train(
    model: BuiltModel,
    data: Data,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    seed: int,
    task: Task,
) -> TrainResult:
    """Train ``model`` in place on ``data`` for ``epochs`` passes or ``steps`` minibatches.

    Minibatches of ``batch_size`` rows (the last of a pass may be smaller; with batch
    norm, never a single row) are shuffled with ``seed``; the same model, data and seed
    give bitwise the same weights. The module is left in eval mode.

    Raises:
        ValueError: Not exactly one of epochs and steps, a negative count, targets that
            do not fit the task or the model, or one row for a model with batch norm.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    count = epochs if epochs is not None else steps
    if count is None or isinstance(count, bool) or count < 0:
        raise ValueError(f"epochs and steps must be integers from 0 up, got {count}")
    target = _targets(model, data, task)
    rows = len(data)
    skip_single = _has_batch_norm(model.module)
    if skip_single and rows == 1:
        raise ValueError("a model with batch norm cannot train on a single row")
    size = min(model.hyperparameters.batch_size, max(rows, 1))
    per_epoch = rows // size if skip_single and rows % size == 1 else math.ceil(rows / size)
    total = per_epoch * count if epochs is not None else count
    if rows == 0 or total == 0:
        return TrainResult(samples=0, steps=0, loss=float("nan"))
    generator = torch.Generator().manual_seed(seed)
    optimizer = _optimizer(model)
    module = model.module
    module.train()
    samples, loss_sum = 0, 0.0
    with _dropout_from(module, generator):
        for index in _batches(rows, size, generator, total, skip_single=skip_single):
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(task, _forward(model, data.rows(index)), target[index])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            samples += len(index)
            loss_sum += float(loss.detach()) * len(index)
    module.eval()
    return TrainResult(samples=samples, steps=total, loss=loss_sum / samples)


def predict(
    model: BuiltModel, data: Data, *, task: Task | None = None, batch_size: int = 4096
) -> NDArray[np.float64]:
    """Class probabilities ``[n, classes]`` (classification) or values ``[n]`` (regression).

    ``task`` defaults to regression for a model with one output, else classification.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    task = task or ("regression" if model.n_outputs == 1 else "classification")
    module = model.module
    was_training = module.training
    module.eval()
    parts: list[Tensor] = []
    try:
        with torch.inference_mode():
            for index in torch.split(torch.arange(len(data)), batch_size):
                outputs = _forward(model, data.rows(index)).to(torch.float64)
                if task == "classification":
                    parts.append(torch.softmax(outputs, dim=1))
                else:
                    parts.append(outputs.squeeze(-1))
    finally:
        module.train(was_training)
    if not parts:
        shape = (0, model.n_outputs) if task == "classification" else (0,)
        return np.zeros(shape, dtype=np.float64)
    return torch.cat(parts).numpy().astype(np.float64)


def evaluate(model: BuiltModel, data: Data, *, task: Task) -> dict[str, float]:
    """The model's metrics on ``data`` (see :mod:`podium.models.metrics`)."""
    target = _targets(model, data, task).numpy()
    predictions = predict(model, data, task=task)
    if task == "classification":
        return classification_metrics(target, predictions)
    return regression_metrics(target, predictions)
