"""The parts of a task: algorithm and protocol factories and their two sides.

A task is a **protocol** holding one or more **algorithms** (DESIGN.md section 5). Each is
built by a factory that serializes to a canonical dict (:meth:`ProtocolFactory.dump`), so
the modeller can sign it and a pod can rebuild exactly the same task from it
(:func:`podium.protocols.registry.protocol_from_definition`). Each factory makes a
**modeller side** and a **worker side**:

- an algorithm's worker side runs on the pod's data, batch by batch
  (:meth:`WorkerAlgorithm.run`, blocking code: the engine runs it in a worker thread) and
  may reduce at the end (:meth:`WorkerAlgorithm.finish`); its modeller side combines what
  every pod sent (:meth:`ModellerAlgorithm.combine`);
- a protocol's worker side decides what a batch does and what is sent
  (:meth:`WorkerProtocol.run_batch`), its modeller side what is done with it
  (:meth:`ModellerProtocol.run`); both talk through the task handles
  :class:`WorkerTask` and :class:`ModellerTask`, which carry any number of exchanges in
  either direction (model parameters out, updates back, round after round).

Tagging interfaces the engine honours on the worker side: :class:`InitialSetupProtocol`
(a step before the batches), :class:`FinalStepProtocol` (a step after them) and
:class:`FinalStepReduceProtocol` (a final step that needs every batch's output).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pandas as pd

from podium.config.task import RunOptions
from podium.core.messages import AbortReason, MessageType, Payload, task_hash_of
from podium.data.sources.base import DataSource

if TYPE_CHECKING:
    # the modeller's package sits above this one: imported only where a task is run
    from podium.modeller import Modeller
    from podium.protocols.coordinator import TaskOutcome
    from podium.protocols.hooks import Hooks

__all__ = [
    "AbortTask",
    "AlgorithmFactory",
    "Batch",
    "FinalStepProtocol",
    "FinalStepReduceProtocol",
    "InitialSetupProtocol",
    "ModellerAlgorithm",
    "ModellerProtocol",
    "ModellerTask",
    "ProtocolFactory",
    "RunOptions",
    "WorkerAlgorithm",
    "WorkerContext",
    "WorkerProtocol",
    "WorkerTask",
    "definition_hash",
]

T = TypeVar("T")

#: Rows a test run reads from each source.
TEST_RUN_ROWS = 100


class AbortTask(Exception):
    """Raised on a pod to end the task with ``TASK_ABORT(reason)``; ``detail`` is what the
    modeller reads (write it for them: no data values)."""

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail[:4000]


def definition_hash(task: Mapping[str, Any]) -> str:
    """The hash of what a task computes: its definition without the run options, so a
    rerun with other options (``test_run``, ``run_on_new_data_only``) is the same task for
    the pod's record of processed and failed files."""
    return task_hash_of({key: value for key, value in task.items() if key != "run"})


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerContext:
    """What a worker side knows about its pod and task (read-only).

    Attributes:
        task_id: The task.
        pod_id: The pod, ``<owner>/<name>``.
        modeller: The user who sent the task.
        roles: The roles the hub's access manager found the modeller holds on the pod.
        sources: The pod's data: datasource name -> source (a test run's are cut short).
        min_group_size: The pod owner's smallest group an aggregate may show.
        row_level: Whether the modeller may receive row-level data.
        output_dir: Where reports written on the pod go.
        options: The run options.
    """

    task_id: str
    pod_id: str
    modeller: str
    roles: frozenset[str]
    sources: Mapping[str, DataSource]
    min_group_size: int
    row_level: bool
    output_dir: Path
    options: RunOptions = field(default_factory=RunOptions)


@dataclass(slots=True)
class Batch:
    """One batch of a worker's data: ``index`` from 0 and its rows (loaded when first
    asked for: an algorithm that works on the sources, like SQL, never loads them)."""

    index: int
    load: Callable[[], pd.DataFrame]
    sources: Mapping[str, DataSource]
    whole: bool = True
    _frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        """The batch's rows."""
        if self._frame is None:
            self._frame = self.load()
        return self._frame


class WorkerAlgorithm(ABC):
    """An algorithm's worker side: blocking code, run in a worker thread."""

    context: WorkerContext
    #: Whether it needs a payload from the modeller before the batches (model weights):
    #: then :meth:`receive_initial` is called with it.
    takes_initial: ClassVar[bool] = False

    def receive_initial(self, data: bytes) -> None:
        """The modeller's payload (weights, say), before the first batch."""
        raise NotImplementedError(f"{type(self).__name__} takes no initial payload")

    def initialise(self, context: WorkerContext) -> None:
        """Called once before the first batch."""
        self.context = context

    @abstractmethod
    def run(self, batch: Batch) -> object | None:
        """The result of one batch, or None to send nothing for it."""

    def finish(self) -> object | None:
        """The result after the last batch (a reduce over every batch), or None."""
        return None


class ModellerAlgorithm(ABC):
    """An algorithm's modeller side: puts the pods' results together."""

    @abstractmethod
    def combine(self, results: Mapping[str, Sequence[object]]) -> object:
        """The algorithm's answer from each pod's results (in the order they came)."""


class AlgorithmFactory(ABC):
    """Builds an algorithm's two sides; serializes to ``{"name", "arguments"}``."""

    #: The name in task definitions (Bitfount's where there is one).
    name: ClassVar[str]
    #: Whether the algorithm can run batch by batch.
    batchable: ClassVar[bool] = False
    #: Task-level keys (Bitfount puts ``model`` and ``data_structure`` beside the
    #: algorithm) that the registry hands to this algorithm as arguments.
    task_level: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> AlgorithmFactory:
        """The factory of a definition's ``arguments``.

        Raises:
            TaskDefinitionError: An unknown, missing or invalid argument.
        """

    @abstractmethod
    def arguments(self) -> dict[str, Any]:
        """The arguments that rebuild this factory (canonical JSON values only)."""

    @abstractmethod
    def worker(self) -> WorkerAlgorithm:
        """A new worker side."""

    @abstractmethod
    def modeller(self) -> ModellerAlgorithm:
        """A new modeller side."""

    def dump(self) -> dict[str, Any]:
        """``{"name": ..., "arguments": ...}``."""
        return {"name": self.name, "arguments": self.arguments()}

    def initial_payload(self) -> bytes | None:
        """Bytes the modeller sends each pod before the batches (model weights: too large
        for the signed definition, which carries their hash instead); None: nothing."""
        return None

    def execute(
        self,
        pod_identifiers: Collection[str],
        *,
        modeller: Modeller | None = None,
        options: RunOptions | None = None,
    ) -> Any:
        """Run this algorithm alone on the pods (the ``ResultsOnly`` protocol) and return
        its combined result (for most algorithms a
        :class:`~podium.algorithms.TableResult`: ``.per_pod`` and ``.combined``).

        ``modeller`` defaults to :meth:`Modeller.from_environment`
        (``$PODIUM_HUB`` and ``$PODIUM_API_KEY``).
        """
        from podium.protocols.results_only import ResultsOnly  # noqa: PLC0415 - a subclass

        outcome = ResultsOnly(algorithm=self).run(
            pod_identifiers, modeller=modeller, options=options
        )
        return outcome.result.combined[0]


class WorkerTask(ABC):
    """The worker side's handle on its running task."""

    context: WorkerContext

    @abstractmethod
    async def send(self, kind: MessageType, record: Payload) -> None:
        """Send a message to the modeller."""

    @abstractmethod
    async def receive(self, *kinds: MessageType) -> Payload:
        """The next message from the modeller, which must be of one of ``kinds``.

        Raises:
            ProtocolError: Another kind came, or the modeller went away.
        """

    @abstractmethod
    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread (blocking work off the event loop)."""

    @abstractmethod
    async def send_result(self, value: object) -> None:
        """Send ``value`` (plain data and tables) as an ``EVALUATION_RESULTS`` message."""


class ModellerTask(ABC):
    """The modeller side's handle on its running task."""

    @property
    @abstractmethod
    def pods(self) -> tuple[str, ...]:
        """The pods that accepted the task (ids ``<owner>/<name>``)."""

    @property
    def schemas(self) -> Mapping[str, Mapping[str, Any]]:
        """Each pod's schema as the hub holds it (``Schema.to_dict()`` form)."""
        return {}

    def report(self, line: str) -> None:  # noqa: B027 - optional: progress lines
        """A line of progress for the person running the task (a round's metrics, say)."""

    @abstractmethod
    def messages(self, pod: str) -> AsyncIterator[tuple[int | None, MessageType, Payload]]:
        """The protocol's messages from ``pod`` with the batch each belongs to (None after
        the batches), until the pod completes or aborts."""

    @abstractmethod
    async def send(
        self, pod: str, kind: MessageType, record: Payload, *, early: bool = False
    ) -> None:
        """Send a message to ``pod``: after the ``TASK_START`` handshake, or with
        ``early`` at once (what the worker's initial setup step reads)."""

    @abstractmethod
    async def receive(self, pod: str, *kinds: MessageType) -> Payload:
        """The next protocol message from ``pod``, of one of ``kinds``.

        Raises:
            ProtocolError: Another kind came, or the pod ended or went away.
        """


class WorkerProtocol(ABC):
    """A protocol's worker side."""

    def __init__(self, algorithms: Sequence[WorkerAlgorithm]) -> None:
        self.algorithms = tuple(algorithms)

    @abstractmethod
    async def run_batch(self, task: WorkerTask, batch: Batch) -> None:
        """Run one batch and send what the modeller should get from it."""


class InitialSetupProtocol(ABC):
    """Tag: the worker side has a step before any batch."""

    @abstractmethod
    async def run_initial_setup(self, task: WorkerTask) -> None:
        """The initial setup step."""


class FinalStepProtocol(ABC):
    """Tag: the worker side has a step after the batches (and the resilience phase)."""

    @abstractmethod
    async def run_final_step(self, task: WorkerTask) -> None:
        """The final step."""


class FinalStepReduceProtocol(FinalStepProtocol):
    """Tag: the final step reduces the output of every batch (it cannot run per batch)."""


class ModellerProtocol(ABC):
    """A protocol's modeller side."""

    def __init__(self, algorithms: Sequence[ModellerAlgorithm]) -> None:
        self.algorithms = tuple(algorithms)

    @abstractmethod
    async def run(self, task: ModellerTask) -> object:
        """Drive the task from the modeller's side; return its result."""


class ProtocolFactory(ABC):
    """A protocol with its algorithms; the task definition is its :meth:`dump`."""

    #: The name in task definitions.
    name: ClassVar[str]

    def __init__(self, *, algorithm: AlgorithmFactory | Sequence[AlgorithmFactory]) -> None:
        listed = [algorithm] if isinstance(algorithm, AlgorithmFactory) else list(algorithm)
        if not listed:
            raise ValueError(f"{self.name} needs at least one algorithm")
        self.algorithms: tuple[AlgorithmFactory, ...] = tuple(listed)

    @classmethod
    def from_arguments(
        cls, arguments: Mapping[str, Any], algorithms: Sequence[AlgorithmFactory]
    ) -> ProtocolFactory:
        """The factory of a definition's protocol ``arguments`` and its algorithms.

        Raises:
            TaskDefinitionError: An unknown or invalid argument.
        """
        from podium.protocols._arguments import no_arguments  # noqa: PLC0415 - imports base

        no_arguments(cls.name, arguments)
        return cls(algorithm=algorithms)

    def arguments(self) -> dict[str, Any]:
        """The protocol's own arguments (canonical JSON values only)."""
        return {}

    def dump(self) -> dict[str, Any]:
        """The canonical task definition: ``{"protocol": {...}, "algorithm": [...]}``."""
        return {
            "protocol": {"name": self.name, "arguments": self.arguments()},
            "algorithm": [algorithm.dump() for algorithm in self.algorithms],
        }

    @property
    def hash(self) -> str:
        """The stable hash of :meth:`dump` (the same on every machine)."""
        return task_hash_of(self.dump())

    @property
    def batchable(self) -> bool:
        """Whether every algorithm can run batch by batch."""
        return all(algorithm.batchable for algorithm in self.algorithms)

    def run(
        self,
        pod_identifiers: Collection[str],
        *,
        modeller: Modeller | None = None,
        options: RunOptions | None = None,
        require_all_pods: bool = False,
        run_on_new_data_only: bool = False,
        project_id: str | None = None,
        batched_execution: bool | None = None,
        test_run: bool = False,
        force_rerun_failed_files: bool = True,
        hooks: Hooks | None = None,
    ) -> TaskOutcome:
        """Run the task on ``pod_identifiers`` and wait for its outcome (Bitfount's
        ``run``). The run options are the keyword arguments, or all of them at once as
        ``options``. ``modeller`` defaults to :meth:`Modeller.from_environment`. From a
        running event loop, use ``await modeller.run_async(factory, pods)``.

        Raises:
            PodResponseError: ``require_all_pods`` and a pod refused, is offline or did
                not answer; or no pod accepted.
        """
        from podium.modeller import Modeller  # noqa: PLC0415 - the layer above: only to run

        if options is None:
            options = RunOptions(
                require_all_pods=require_all_pods,
                run_on_new_data_only=run_on_new_data_only,
                project_id=project_id,
                batched_execution=batched_execution,
                test_run=test_run,
                force_rerun_failed_files=force_rerun_failed_files,
            )
        chosen = modeller or Modeller.from_environment()
        return chosen.run(self, pod_identifiers, options=options, hooks=hooks)

    @abstractmethod
    def worker(self) -> WorkerProtocol:
        """A new worker side, with its algorithms' worker sides."""

    @abstractmethod
    def modeller(self) -> ModellerProtocol:
        """A new modeller side, with its algorithms' modeller sides."""
