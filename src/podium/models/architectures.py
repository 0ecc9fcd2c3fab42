"""Podium's built-in PyTorch architectures.

Tabular models take the :class:`~podium.models.features.TabularEncoder`'s output: integer
category codes ``[n, n_categorical]`` (code 0 is "unknown", so a column of ``c`` known
categories has cardinality ``c + 1``) and normalised continuous values
``[n, n_continuous]``. Image models take ``[n, channels, height, width]`` floats. Every
model returns logits ``[n, n_outputs]``: one per class for classification, a single value
for regression.

No model uses batch-norm statistics by default: federated averaging of running means and
variances across pods is not well defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Dropout", "LogisticRegression", "SmallCNN", "TabularMLP", "default_embedding_dim"]

_MAX_EMBEDDING_DIM = 16


def default_embedding_dim(cardinality: int) -> int:
    """The embedding width TabularMLP gives a column of ``cardinality`` codes."""
    return min(_MAX_EMBEDDING_DIM, (cardinality + 1) // 2)


class Dropout(nn.Module):
    """Dropout whose masks can come from a given :class:`torch.Generator`.

    With ``generator`` None it is :func:`torch.nn.functional.dropout` (torch's global
    generator). Training sets a seeded generator for its duration, so that training is
    deterministic without touching the global generator, which threads share.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be from 0 up to (not including) 1, got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs`` with each value zeroed with probability ``p`` (training only)."""
        if not self.training or self.p == 0:
            return inputs
        if self.generator is None:
            return nn.functional.dropout(inputs, self.p, training=True)
        keep = torch.empty_like(inputs).bernoulli_(1 - self.p, generator=self.generator)
        return inputs * keep / (1 - self.p)

    def extra_repr(self) -> str:
        """The drop probability, for ``repr``."""
        return f"p={self.p}"


def _check_shapes(cardinalities: Sequence[int], n_continuous: int, n_outputs: int) -> None:
    """Refuse shapes no tabular model can be built for."""
    bad = [c for c in cardinalities if c < 1]
    if bad:
        raise ValueError(f"every categorical cardinality must be at least 1, got {bad}")
    if n_continuous < 0:
        raise ValueError(f"n_continuous must be at least 0, got {n_continuous}")
    if not cardinalities and n_continuous == 0:
        raise ValueError("a tabular model needs at least one categorical or continuous input")
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be at least 1, got {n_outputs}")


def _check_inputs(categorical: Tensor, continuous: Tensor, n_cat: int, n_cont: int) -> None:
    """Refuse inputs whose width does not match the model's."""
    if categorical.dim() != 2 or categorical.shape[1] != n_cat:
        raise ValueError(
            f"expected categorical codes of shape [n, {n_cat}], got {list(categorical.shape)}"
        )
    if continuous.dim() != 2 or continuous.shape[1] != n_cont:
        raise ValueError(
            f"expected continuous values of shape [n, {n_cont}], got {list(continuous.shape)}"
        )
    if categorical.shape[0] != continuous.shape[0]:
        raise ValueError(
            f"categorical has {categorical.shape[0]} rows but continuous has {continuous.shape[0]}"
        )


class LogisticRegression(nn.Module):
    """A linear model over one-hot categoricals and continuous values.

    Each categorical column has an ``Embedding(cardinality, n_outputs)``: looking a code up
    is the product of its one-hot vector with a weight matrix, so the sum of the lookups
    plus a linear map of the continuous values is exactly a linear model over the one-hot
    features. Softmax (or sigmoid) of the logits gives (multinomial) logistic regression;
    with one output it is linear regression.
    """

    def __init__(
        self, n_categorical_cardinalities: Sequence[int], n_continuous: int, n_outputs: int
    ) -> None:
        super().__init__()
        cardinalities = [int(c) for c in n_categorical_cardinalities]
        _check_shapes(cardinalities, n_continuous, n_outputs)
        self.n_categorical = len(cardinalities)
        self.n_continuous = n_continuous
        embeddings = [nn.Embedding(c, n_outputs) for c in cardinalities]
        for embedding in embeddings:
            nn.init.normal_(embedding.weight, std=0.01)
        self.embeddings = nn.ModuleList(embeddings)
        self.linear = nn.Linear(n_continuous, n_outputs, bias=False) if n_continuous else None
        self.bias = nn.Parameter(torch.zeros(n_outputs))

    def forward(self, categorical: Tensor, continuous: Tensor) -> Tensor:
        """Logits ``[n, n_outputs]`` for codes ``[n, n_cat]`` and values ``[n, n_cont]``."""
        _check_inputs(categorical, continuous, self.n_categorical, self.n_continuous)
        logits = self.bias.expand(categorical.shape[0], -1)
        for column, embedding in enumerate(self.embeddings):
            logits = logits + embedding(categorical[:, column])
        if self.linear is not None:
            logits = logits + self.linear(continuous)
        return logits


class TabularMLP(nn.Module):
    """A multilayer perceptron over categorical embeddings and continuous values.

    Each categorical column gets its own embedding (width ``embedding_dim``, or
    :func:`default_embedding_dim` of its cardinality); the embeddings and the continuous
    values are concatenated and go through ``Linear -> [BatchNorm] -> ReLU -> Dropout``
    blocks of widths ``hidden``, then a linear output layer.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_continuous: int,
        n_outputs: int,
        *,
        hidden: Sequence[int] = (64, 32),
        embedding_dim: int | None = None,
        dropout: float = 0.1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        widths = [int(c) for c in cardinalities]
        _check_shapes(widths, n_continuous, n_outputs)
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden must be one or more positive widths, got {list(hidden)}")
        self.n_categorical = len(widths)
        self.n_continuous = n_continuous
        dims = [embedding_dim or default_embedding_dim(c) for c in widths]
        self.embeddings = nn.ModuleList(
            nn.Embedding(c, d) for c, d in zip(widths, dims, strict=True)
        )
        layers: list[nn.Module] = []
        width = sum(dims) + n_continuous
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers += [nn.ReLU(), Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, categorical: Tensor, continuous: Tensor) -> Tensor:
        """Logits ``[n, n_outputs]`` for codes ``[n, n_cat]`` and values ``[n, n_cont]``."""
        _check_inputs(categorical, continuous, self.n_categorical, self.n_continuous)
        parts = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        if self.n_continuous:
            parts.append(continuous)
        result: Tensor = self.head(self.body(torch.cat(parts, dim=1)))
        return result


class SmallCNN(nn.Module):
    """Two convolution blocks, adaptive average pooling and a linear classifier.

    Block one is ``Conv3x3 -> ReLU -> MaxPool2``, block two ``Conv3x3 -> ReLU``; adaptive
    pooling then brings any image size to a fixed grid (2x2 below 16 pixels, 4x4 from 16
    up), so the same layout serves 8x8 digits and 28x28 MNIST-like images.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_outputs: int = 10,
        *,
        image_size: int = 8,
        channels: Sequence[int] = (16, 32),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if in_channels < 1 or n_outputs < 1:
            raise ValueError(
                f"in_channels and n_outputs must be at least 1, got {in_channels}, {n_outputs}"
            )
        if image_size < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {image_size}")
        if len(channels) != 2 or any(c < 1 for c in channels):
            raise ValueError(f"channels must be two positive widths, got {list(channels)}")
        first, second = (int(c) for c in channels)
        self.in_channels = in_channels
        grid = 4 if image_size >= 16 else 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, first, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(grid),
        )
        self.head = nn.Sequential(
            nn.Flatten(), Dropout(dropout), nn.Linear(second * grid * grid, n_outputs)
        )

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[n, n_outputs]`` for images ``[n, in_channels, height, width]``."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images of shape [n, {self.in_channels}, height, width], "
                f"got {list(images.shape)}"
            )
        result: Tensor = self.head(self.features(images))
        return result
