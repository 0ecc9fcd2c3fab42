"""The read-only registries of protocols and algorithms, and tasks rebuilt from definitions.

Names compare without a ``bitfount.`` prefix, so task files written for Bitfount find
Podium's implementations. A pod rebuilds a task only from these registries: a definition
names code that is already installed, never carries code to run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from podium.algorithms.csv_report import CSVReportAlgorithm
from podium.algorithms.model_eval import ModelEvaluation, ModelInference
from podium.algorithms.model_training import FederatedModelTraining, ModelTrainingAndEvaluation
from podium.algorithms.sql import SqlQuery
from podium.algorithms.statistics import ColumnAverage, Statistics
from podium.core.errors import TaskDefinitionError
from podium.protocols.base import AlgorithmFactory, ProtocolFactory
from podium.protocols.fedavg import FederatedAveraging
from podium.protocols.inference_report import (
    InferenceAndCSVReport,
    InferenceAndReturnCSVReport,
)
from podium.protocols.results_only import ResultsOnly

__all__ = ["ALGORITHMS", "PROTOCOLS", "algorithm_from_definition", "protocol_from_definition"]

#: Protocol name -> factory class.
PROTOCOLS: Mapping[str, type[ProtocolFactory]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            ResultsOnly,
            FederatedAveraging,
            InferenceAndCSVReport,
            InferenceAndReturnCSVReport,
        )
    }
)
#: Algorithm name -> factory class.
ALGORITHMS: Mapping[str, type[AlgorithmFactory]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            SqlQuery,
            Statistics,
            ColumnAverage,
            CSVReportAlgorithm,
            FederatedModelTraining,
            ModelTrainingAndEvaluation,
            ModelEvaluation,
            ModelInference,
        )
    }
)


def _lookup(kind: str, name: object, table: Mapping[str, Any], where: str) -> Any:
    if not isinstance(name, str) or not name.strip():
        raise TaskDefinitionError(f"{where}: a {kind} needs a 'name'")
    bare = name.strip()
    if bare.lower().startswith("bitfount."):
        bare = bare[len("bitfount.") :]
    if bare in table:
        return table[bare]
    close = difflib.get_close_matches(bare, list(table), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise TaskDefinitionError(
        f"{where}: {name!r} is not a {kind} Podium knows.{hint} Known: {', '.join(table)}"
    )


def _named(value: object, where: str) -> tuple[object, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise TaskDefinitionError(f"{where} must be a mapping with a 'name'")
    arguments = value.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise TaskDefinitionError(f"{where}.arguments must be a mapping")
    return value.get("name"), arguments


def algorithm_from_definition(
    value: object, where: str = "algorithm", task: Mapping[str, Any] | None = None
) -> AlgorithmFactory:
    """The algorithm factory of ``{"name", "arguments"}``; the task-level keys the
    algorithm takes (``model``, ``data_structure``) come from ``task`` unless given.

    Raises:
        TaskDefinitionError: An unknown name (with a suggestion) or bad arguments.
    """
    name, arguments = _named(value, where)
    cls: type[AlgorithmFactory] = _lookup("algorithm", name, ALGORITHMS, where)
    merged = dict(arguments)
    for key in cls.task_level:
        if key not in merged and task is not None and task.get(key) is not None:
            merged[key] = task[key]
    return cls.from_arguments(merged)


def protocol_from_definition(task: Mapping[str, Any]) -> ProtocolFactory:
    """The protocol factory (with its algorithms) of a task definition.

    Raises:
        TaskDefinitionError: An unknown name, bad arguments, or no algorithm.
    """
    name, arguments = _named(task.get("protocol"), "protocol")
    cls: type[ProtocolFactory] = _lookup("protocol", name, PROTOCOLS, "protocol")
    raw = task.get("algorithm")
    listed = raw if isinstance(raw, list) else [raw] if raw is not None else []
    if not listed:
        raise TaskDefinitionError("a task needs at least one algorithm")
    algorithms = [
        algorithm_from_definition(item, f"algorithm[{index}]", task)
        for index, item in enumerate(listed)
    ]
    return cls.from_arguments(arguments, algorithms)
