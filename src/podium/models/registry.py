"""Podium's built-in models by name, with strict hyperparameters.

:data:`MODELS` maps a name (``LogisticRegression``, ``TabularMLP``, ``SmallCNN``; a
``bitfount.`` prefix is dropped) to a :class:`ModelSpec`: its kind (tabular or image), the
pydantic model of its hyperparameters and how to build it. :func:`build_model` checks the
hyperparameters (no coercion: ``"64"`` is not a number, unknown keys are errors) and builds
the module with initial weights that depend only on the name, the hyperparameters, the
shapes and the seed.

Every model shares the training hyperparameters ``learning_rate``, ``batch_size``,
``optimizer`` (``adam`` or ``sgd``) and ``weight_decay``.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, ValidationError
from torch import nn

from podium.core.errors import TaskDefinitionError
from podium.models.architectures import LogisticRegression, SmallCNN, TabularMLP
from podium.protocols._arguments import Arguments

__all__ = [
    "MODELS",
    "BuiltModel",
    "Hyperparameters",
    "LogisticRegressionHyperparameters",
    "ModelKind",
    "ModelShapes",
    "ModelSpec",
    "SmallCNNHyperparameters",
    "TabularMLPHyperparameters",
    "build_model",
    "model_spec",
    "parse_hyperparameters",
]

ModelKind = Literal["tabular", "image"]

_BUILD_LOCK = threading.Lock()

_LayerWidth = Annotated[int, Field(ge=1, le=4096)]
_ChannelWidth = Annotated[int, Field(ge=1, le=512)]


class Hyperparameters(Arguments):
    """Training hyperparameters every model takes."""

    learning_rate: float = Field(
        default=1e-3, gt=0, allow_inf_nan=False, description="a number above 0, e.g. 0.001"
    )
    batch_size: int = Field(
        default=256, ge=1, le=1_000_000, description="an integer from 1 to 1000000, e.g. 256"
    )
    optimizer: Literal["adam", "sgd"] = Field(default="adam", description='"adam" or "sgd"')
    weight_decay: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="a number from 0 up, e.g. 0.0001"
    )

    def to_definition(self) -> dict[str, Any]:
        """Every hyperparameter, defaults filled in, as a JSON-ready dict sorted by key."""
        return dict(sorted(self.model_dump(mode="json").items()))


class LogisticRegressionHyperparameters(Hyperparameters):
    """LogisticRegression takes only the training hyperparameters."""

    learning_rate: float = Field(
        default=1e-2, gt=0, allow_inf_nan=False, description="a number above 0, e.g. 0.01"
    )


class TabularMLPHyperparameters(Hyperparameters):
    """TabularMLP's layer widths, embedding width, dropout and batch norm."""

    hidden: list[_LayerWidth] = Field(
        default_factory=lambda: [64, 32],
        min_length=1,
        max_length=8,
        description="a list of 1 to 8 integers from 1 to 4096, e.g. [64, 32]",
    )
    embedding_dim: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="null (automatic) or an integer from 1 to 1024, e.g. 8",
    )
    dropout: float = Field(
        default=0.1, ge=0, le=0.9, allow_inf_nan=False, description="a number from 0 to 0.9"
    )
    batch_norm: bool = Field(default=False, description="true or false")


class SmallCNNHyperparameters(Hyperparameters):
    """SmallCNN's two convolution widths and dropout."""

    channels: list[_ChannelWidth] = Field(
        default_factory=lambda: [16, 32],
        min_length=2,
        max_length=2,
        description="a list of 2 integers from 1 to 512, e.g. [16, 32]",
    )
    dropout: float = Field(
        default=0.1, ge=0, le=0.9, allow_inf_nan=False, description="a number from 0 to 0.9"
    )


@dataclass(frozen=True)
class ModelShapes:
    """The data-dependent sizes a model is built for."""

    cardinalities: tuple[int, ...] = ()
    n_continuous: int = 0
    n_outputs: int = 1
    in_channels: int = 1
    image_size: int = 8


@dataclass(frozen=True)
class ModelSpec:
    """A built-in model: its name, kind, hyperparameters model and builder."""

    name: str
    kind: ModelKind
    hyperparameters: type[Hyperparameters]
    build: Callable[[Any, ModelShapes], nn.Module]
    description: str


@dataclass(frozen=True)
class BuiltModel:
    """A model ready to train: the module and what it was built from."""

    module: nn.Module
    name: str
    kind: ModelKind
    hyperparameters: Hyperparameters
    n_outputs: int


def _logistic(_: LogisticRegressionHyperparameters, shapes: ModelShapes) -> nn.Module:
    return LogisticRegression(shapes.cardinalities, shapes.n_continuous, shapes.n_outputs)


def _mlp(hp: TabularMLPHyperparameters, shapes: ModelShapes) -> nn.Module:
    return TabularMLP(
        shapes.cardinalities,
        shapes.n_continuous,
        shapes.n_outputs,
        hidden=hp.hidden,
        embedding_dim=hp.embedding_dim,
        dropout=hp.dropout,
        batch_norm=hp.batch_norm,
    )


def _cnn(hp: SmallCNNHyperparameters, shapes: ModelShapes) -> nn.Module:
    return SmallCNN(
        shapes.in_channels,
        shapes.n_outputs,
        image_size=shapes.image_size,
        channels=hp.channels,
        dropout=hp.dropout,
    )


MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "LogisticRegression": ModelSpec(
            "LogisticRegression",
            "tabular",
            LogisticRegressionHyperparameters,
            _logistic,
            "linear model over one-hot categoricals and continuous values",
        ),
        "TabularMLP": ModelSpec(
            "TabularMLP",
            "tabular",
            TabularMLPHyperparameters,
            _mlp,
            "multilayer perceptron over categorical embeddings and continuous values",
        ),
        "SmallCNN": ModelSpec(
            "SmallCNN",
            "image",
            SmallCNNHyperparameters,
            _cnn,
            "two-block convolutional network for small images",
        ),
    }
)


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name`` (a ``bitfount.`` prefix is dropped).

    Raises:
        TaskDefinitionError: No such model; says the closest name and lists them all.
    """
    bare = name.removeprefix("bitfount.") if isinstance(name, str) else name
    spec = MODELS.get(bare) if isinstance(bare, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(bare), list(MODELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TaskDefinitionError(f"no model {name!r}{hint}; known models: {', '.join(MODELS)}")
    return spec


def _parse(spec: ModelSpec, hyperparameters: Mapping[str, Any]) -> Hyperparameters:
    """``hyperparameters`` as the spec's model, with one clear line per problem."""
    model = spec.hyperparameters
    if not isinstance(hyperparameters, Mapping):
        raise TaskDefinitionError(
            f"{spec.name}: hyperparameters must be a mapping of name to value, "
            f"got {type(hyperparameters).__name__}"
        )
    try:
        return model.model_validate(dict(hyperparameters))
    except ValidationError as error:
        raise TaskDefinitionError(_describe(spec.name, model, error)) from None


def _describe(owner: str, model: type[Hyperparameters], error: ValidationError) -> str:
    """One line per problem: the hyperparameter, what is wrong and what to give."""
    known = ", ".join(sorted(model.model_fields))
    problems = []
    for item in error.errors():
        where = str(item["loc"][0]) if item["loc"] else ""
        if item["type"] == "extra_forbidden":
            problems.append(
                f"{owner}: {where!r} is not a hyperparameter of {owner}; known: {known}"
            )
            continue
        field = model.model_fields.get(where)
        expected = f"; give {field.description}" if field and field.description else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        got = f" (got {item['input']!r})" if item["type"] != "value_error" else ""
        name = f"hyperparameter {where!r}" if where else "hyperparameters"
        if len(item["loc"]) > 1:
            name += f" item {item['loc'][1]}"
        problems.append(f"{owner}: {name}: {message}{got}{expected}")
    return "; ".join(problems)


def _check_shapes(spec: ModelSpec, shapes: ModelShapes) -> None:
    """Refuse shapes the model cannot be built for, saying which."""
    if shapes.n_outputs < 1:
        raise TaskDefinitionError(f"{spec.name}: n_outputs must be at least 1")
    if spec.kind == "image":
        if shapes.in_channels < 1 or shapes.image_size < 4:
            raise TaskDefinitionError(
                f"{spec.name}: images need at least 1 channel and 4 pixels a side, got "
                f"{shapes.in_channels} channels of {shapes.image_size} pixels"
            )
        return
    if any(c < 1 for c in shapes.cardinalities) or shapes.n_continuous < 0:
        raise TaskDefinitionError(
            f"{spec.name}: cardinalities must be at least 1 and n_continuous at least 0"
        )
    if not shapes.cardinalities and shapes.n_continuous == 0:
        raise TaskDefinitionError(
            f"{spec.name}: no input features; select at least one categorical or continuous column"
        )


def parse_hyperparameters(name: str, hyperparameters: Mapping[str, Any]) -> Hyperparameters:
    """Model ``name``'s hyperparameters, checked and with defaults filled in.

    For checking a task definition early, before any data shapes are known.

    Raises:
        TaskDefinitionError: An unknown model, or a bad or unknown hyperparameter.
    """
    return _parse(model_spec(name), hyperparameters)


def build_model(
    name: str,
    hyperparameters: Mapping[str, Any],
    *,
    cardinalities: Sequence[int] = (),
    n_continuous: int = 0,
    n_outputs: int,
    in_channels: int = 1,
    image_size: int = 8,
    seed: int = 0,
) -> BuiltModel:
    """Build model ``name`` with ``hyperparameters`` for the given shapes.

    The initial weights depend only on the name, the hyperparameters, the shapes and
    ``seed``; the global random state is left as it was.

    Raises:
        TaskDefinitionError: An unknown model, a bad hyperparameter, or impossible shapes.
    """
    spec = model_spec(name)
    parsed = _parse(spec, hyperparameters)
    shapes = ModelShapes(
        tuple(int(c) for c in cardinalities), n_continuous, n_outputs, in_channels, image_size
    )
    _check_shapes(spec, shapes)
    # Modules initialise from torch's global generator: seed it in a fork, one build at a
    # time, so that builds in several threads cannot interleave their draws.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = spec.build(parsed, shapes).to(torch.float32)
    return BuiltModel(module, spec.name, spec.kind, parsed, n_outputs)
