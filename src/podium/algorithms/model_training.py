"""``FederatedModelTraining``: what a pod trains, on which columns, split how.

The algorithm carries the model (``{name, hyperparameters}``: a built-in architecture from
:mod:`podium.models.registry`), the data structure (target, selected and ignored columns,
the split: :class:`podium.models.data_structure.DataStructure`) and a seed. The protocol
that drives the rounds is :class:`podium.protocols.fedavg.FederatedAveraging`; this module
holds what both sides need to agree on and the pod's local state between rounds.

Task files may put ``model`` and ``data_structure`` at the task level (Bitfount's layout);
the registry hands them to this algorithm (``task_level``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from podium.core.errors import TaskDefinitionError
from podium.protocols._arguments import Arguments, parse_arguments
from podium.protocols.base import (
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    WorkerAlgorithm,
)

__all__ = ["FederatedModelTraining", "ModelDefinition", "ModelTrainingAndEvaluation"]

#: Custom model code is not accepted as a named model: it needs the owner's allow-list.
_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class ModelDefinition(Arguments):
    """A built-in model by name, with its hyperparameters."""

    name: str = Field(pattern=_NAME_PATTERN)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class _Arguments(Arguments):
    model: ModelDefinition
    data_structure: dict[str, Any]
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    image_size: int | None = Field(default=None, ge=4, le=512)
    image_mode: Literal["L", "RGB"] = "L"


class _Worker(WorkerAlgorithm):
    """Unused by the batches: the protocol drives training (kept for the registry's shape)."""

    def run(self, batch: Batch) -> None:
        return None


class _Modeller(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> object:
        return dict(results)


class FederatedModelTraining(AlgorithmFactory):
    """Train a built-in model on each pod's data (with ``FederatedAveraging``).

    Args:
        model: ``{"name": "TabularMLP", "hyperparameters": {...}}``.
        data_structure: The target, the columns and the split (Bitfount's
            ``data_structure`` or Podium's flat form).
        seed: Seeds the split, the initial weights and the local shuffles.
        image_size: For an image model: the side of the square images it takes (each
            image is resized to it).
        image_mode: For an image model: ``L`` (greyscale) or ``RGB``.
    """

    name = "FederatedModelTraining"
    task_level: ClassVar[tuple[str, ...]] = ("model", "data_structure")

    def __init__(
        self,
        *,
        model: Mapping[str, Any],
        data_structure: Mapping[str, Any],
        seed: int = 0,
        image_size: int | None = None,
        image_mode: str = "L",
    ) -> None:
        given: dict[str, Any] = {
            "model": dict(model),
            "data_structure": dict(data_structure),
            "seed": seed,
            "image_mode": image_mode,
        }
        if image_size is not None:
            given["image_size"] = image_size
        parsed = parse_arguments(self.name, _Arguments, given)
        from podium.models.data_structure import DataStructure  # noqa: PLC0415 - optional

        self.model = parsed.model
        self.structure = DataStructure.from_definition(parsed.data_structure)
        self.seed = parsed.seed
        self.image_size = parsed.image_size
        self.image_mode = parsed.image_mode
        self.kind = _check_model(self.model.name, self.model.hyperparameters)
        if self.kind == "image" and self.image_size is None:
            raise TaskDefinitionError(
                f"FederatedModelTraining: {self.model.name} is an image model: give "
                "image_size (the side of the square images it takes, e.g. 8 or 28)"
            )

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> FederatedModelTraining:
        parsed = parse_arguments(cls.name, _Arguments, arguments)
        return cls(
            model=parsed.model.model_dump(),
            data_structure=parsed.data_structure,
            seed=parsed.seed,
            image_size=parsed.image_size,
            image_mode=parsed.image_mode,
        )

    def arguments(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model.name, "hyperparameters": dict(self.model.hyperparameters)},
            "data_structure": self.structure.to_definition(),
            "seed": self.seed,
            **(
                {"image_size": self.image_size, "image_mode": self.image_mode}
                if self.image_size is not None
                else {}
            ),
        }

    def worker(self) -> WorkerAlgorithm:
        return _Worker()

    def modeller(self) -> ModellerAlgorithm:
        return _Modeller()


def _check_model(name: str, hyperparameters: Mapping[str, Any]) -> str:
    """Refuse a model Podium does not have, or bad hyperparameters, early (on the
    modeller before sending, on the pod before accepting)."""
    try:
        from podium.models.registry import (  # noqa: PLC0415 - torch is optional
            model_spec,
            parse_hyperparameters,
        )
    except ImportError:
        raise TaskDefinitionError(
            "FederatedModelTraining needs PyTorch here: install podium[ml] "
            "(pip install 'podium[ml]')"
        ) from None
    parse_hyperparameters(name, hyperparameters)
    return model_spec(name).kind


class ModelTrainingAndEvaluation(FederatedModelTraining):
    """Bitfount's name for training that ends with an evaluation on each pod's test rows:
    with ``FederatedAveraging`` every training run does (the test metrics of
    :class:`~podium.protocols.fedavg.TrainingResult`)."""

    name = "ModelTrainingAndEvaluation"
