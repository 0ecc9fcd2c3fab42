"""The protocol engine: the task lifecycle between a modeller and its pods.

A task is a protocol (:class:`ResultsOnly`, ...) with algorithms; the modeller side runs
in :class:`~podium.protocols.coordinator.ModellerExecution`, each pod's worker side in
:class:`~podium.protocols.worker.WorkerExecution`, speaking the batched flow of
DESIGN.md section 5 over the relay, every message sealed with the task's session key.
Protocols and algorithms are found by name in :mod:`podium.protocols.registry`.
"""

from podium.config.task import RunOptions
from podium.protocols.base import (
    AbortTask,
    AlgorithmFactory,
    Batch,
    FinalStepProtocol,
    FinalStepReduceProtocol,
    InitialSetupProtocol,
    ModellerAlgorithm,
    ModellerProtocol,
    ModellerTask,
    ProtocolFactory,
    WorkerAlgorithm,
    WorkerContext,
    WorkerProtocol,
    WorkerTask,
    definition_hash,
)
from podium.protocols.coordinator import ModellerExecution, PodState, TaskOutcome, TaskProgress
from podium.protocols.hooks import HookError, HookEvent, Hooks
from podium.protocols.limits import (
    InferenceLimits,
    LimitsExceededInfo,
    check_usage_limits,
    truncate_to_allowed,
)
from podium.protocols.results_only import ResultsOnly, ResultsOnlyResult

__all__ = [
    "AbortTask",
    "AlgorithmFactory",
    "Batch",
    "FinalStepProtocol",
    "FinalStepReduceProtocol",
    "HookError",
    "HookEvent",
    "Hooks",
    "InferenceLimits",
    "InitialSetupProtocol",
    "LimitsExceededInfo",
    "ModellerAlgorithm",
    "ModellerExecution",
    "ModellerProtocol",
    "ModellerTask",
    "PodState",
    "ProtocolFactory",
    "ResultsOnly",
    "ResultsOnlyResult",
    "RunOptions",
    "TaskOutcome",
    "TaskProgress",
    "WorkerAlgorithm",
    "WorkerContext",
    "WorkerProtocol",
    "WorkerTask",
    "check_usage_limits",
    "definition_hash",
    "truncate_to_allowed",
]
