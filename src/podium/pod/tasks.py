"""Running accepted tasks: one worker per task, off the pod's service loop.

:class:`TaskWorkers` starts a :class:`~podium.protocols.worker.WorkerExecution` for each
task the pod accepted, on its own relay connection to the task's mailbox, and counts the
running ones (admission refuses beyond the policy's ``max_concurrent_tasks``). The task is
rebuilt from its signed definition through the read-only registries
(:func:`~podium.protocols.registry.protocol_from_definition`): a definition names code
installed on the pod, it never carries code. The pod's sealer of the task continues
after the ``JOB_ACCEPT`` it sealed, so the modeller reads one unbroken stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from podium.core.crypto import SessionSealer
from podium.core.messages import task_mailbox
from podium.data.sources.base import DataSource
from podium.pod.admission import Admission
from podium.pod.policy import PodPolicy
from podium.pod.store import PodStore
from podium.protocols._channel import Inbox, PeerStream
from podium.protocols.base import RunOptions, WorkerContext, definition_hash
from podium.protocols.hooks import Hooks
from podium.protocols.limits import InferenceLimits
from podium.protocols.registry import protocol_from_definition
from podium.protocols.worker import WorkerExecution
from podium.transport import Transport

__all__ = ["TaskWorkers", "check_task"]

_log = logging.getLogger("podium.pod")


def check_task(task: Mapping[str, Any]) -> None:
    """Raise if this pod cannot run ``task`` (an unknown protocol or algorithm, bad
    arguments or run options)."""
    protocol_from_definition(task)
    RunOptions.from_wire(task.get("run", {}))


class TaskWorkers:
    """The running tasks of one pod (one data source)."""

    def __init__(
        self,
        *,
        pod_id: str,
        party: str,
        source_name: str,
        source: DataSource,
        store: PodStore,
        policy: PodPolicy,
        output_dir: Path,
        clock: Callable[[], datetime],
        hooks: Hooks | None = None,
    ) -> None:
        self._pod_id = pod_id
        self._party = party
        self._source_name = source_name
        self._source = source
        self._store = store
        self._policy = policy
        self._output_dir = output_dir
        self._clock = clock
        self._hooks = hooks
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """How many tasks are running now."""
        return len(self._running)

    def start(self, transport: Transport, admission: Admission, sealer: SessionSealer) -> None:
        """Run the accepted task of ``admission`` in the background."""
        task = asyncio.create_task(self._run(transport, admission, sealer))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def close(self) -> None:
        """Stop every running task (the pod is stopping)."""
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _context(self, admission: Admission) -> WorkerContext:
        request, decision = admission.request, admission.decision
        assert request is not None
        assert decision is not None
        roles = frozenset(decision.roles_held)
        return WorkerContext(
            task_id=request.task_id,
            pod_id=self._pod_id,
            modeller=request.modeller,
            roles=roles,
            sources={self._source_name: self._source},
            min_group_size=self._policy.min_group_size,
            row_level=(
                bool(roles & set(self._policy.row_level_roles))
                or "admin" in roles
                or decision.via == "owner"  # the pod's owner sees her own rows
            ),
            output_dir=self._output_dir,
            options=RunOptions.from_wire(request.task.get("run", {})),
        )

    async def _run(self, transport: Transport, admission: Admission, sealer: SessionSealer) -> None:
        request, decision = admission.request, admission.decision
        assert request is not None
        assert decision is not None
        modeller = request.modeller
        try:
            factory = protocol_from_definition(request.task)
            context = self._context(admission)
            limits = {
                limit.model: InferenceLimits(limit.max_inferences) for limit in decision.limits
            }
            mailbox = task_mailbox(request.task_id, self._party)
            async with transport.connect([mailbox]) as connection:
                inbox = Inbox(connection, peers={modeller: (request.task_id, request.session_key)})
                routing = asyncio.create_task(inbox.run())
                try:
                    execution = WorkerExecution(
                        context=context,
                        protocol=factory.worker(),
                        stream=PeerStream(
                            connection, sealer, recipient=task_mailbox(request.task_id, modeller)
                        ),
                        inbox=inbox,
                        modeller_party=modeller,
                        store=self._store,
                        definition_hash=definition_hash(request.task),
                        clock=self._clock,
                        hooks=self._hooks,
                        limits=limits,
                        batchable=factory.batchable,
                    )
                    outcome = await execution.execute()
                finally:
                    routing.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await routing
            _log.info(
                "task %s for %s on %s: %s",
                request.task_id,
                modeller,
                self._pod_id,
                outcome["status"],
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a task's boundary: log it, the pod keeps serving
            _log.exception("task %s on %s failed", request.task_id, self._pod_id)
