"""The worker side of a task's lifecycle (DESIGN.md section 5), on a pod.

:class:`WorkerExecution` runs one accepted task against one data source and speaks the
batched flow to the modeller, every message sealed with the task's session key::

    PREPARING_DATA, CONFIGURING_TASK, [initial setup], NUMBER_OF_BATCHES (1 or -1)
    for each batch:  CURRENT_BATCH_ID n   (before batch 0: TASK_START, and wait for the
                     modeller's TASK_START once every pod is ready), the batch's messages
    BATCHES_COMPLETE("BATCHES_ONLY"), resilience, [final step],
    BATCHES_COMPLETE("TASK_COMPLETE"), then wait for the modeller's TASK_COMPLETE

**Resilience.** A batch that fails is recorded and the task goes on; after
``max_consecutive_failures`` failures in a row it aborts (``WORKER_ERROR``). Once the
batches are done, each failed batch is retried on its own; one that fails again puts the
source's files in the pod DB's failed files, which a later run skips unless
``force_rerun_failed_files``. **New data only**: the pod DB remembers the file versions
each task definition processed; a run with ``run_on_new_data_only`` and no new or changed
file aborts with ``NO_NEW_DATA``. Files are the unit: a source with one file is read whole
when that file is new.

**Timeouts and cancelling.** A worker that hears nothing from the modeller for
``idle_timeout_s`` sends ``ONLINE_CHECK``; with no answer it aborts (``MODELLER_TIMEOUT``).
``TASK_CANCEL`` from the modeller stops the task at once. Blocking work (pandas, DuckDB)
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd

from podium.core.errors import PodiumError, ProtocolError
from podium.core.messages import (
    STREAMING,
    AbortReason,
    BatchesComplete,
    BatchesCompleteKind,
    CurrentBatchId,
    LogLevel,
    LogMessage,
    MessageType,
    NumberOfBatches,
    Opaque,
    Payload,
    Signal,
    TaskAbort,
)
from podium.core.results import encode_result
from podium.data.sources.base import DataSource
from podium.data.sources.frame_source import DataFrameSource
from podium.pod.store import FileVersion, PodStore, TaskRunStatus
from podium.protocols._channel import Inbox, Message, PeerGone, PeerStream
from podium.protocols.base import (
    TEST_RUN_ROWS,
    AbortTask,
    Batch,
    FinalStepProtocol,
    InitialSetupProtocol,
    WorkerContext,
    WorkerProtocol,
    WorkerTask,
)
from podium.protocols.hooks import HookError, HookEvent, Hooks
from podium.protocols.limits import InferenceLimits, LimitsExceededInfo, check_usage_limits

__all__ = ["WorkerAbort", "WorkerExecution", "WorkerOutcome"]

_log = logging.getLogger("podium.pod.worker")
T = TypeVar("T")

#: Seconds to wait for the answer to an ``ONLINE_CHECK`` (at most: a shorter idle timeout
#: gives a shorter wait).
ONLINE_CHECK_TIMEOUT_S = 30.0


#: Ends the task with ``TASK_ABORT(reason)``; ``detail`` goes to the modeller.
WorkerAbort = AbortTask


class _Cancelled(Exception):
    """The modeller sent ``TASK_CANCEL``."""


class WorkerOutcome(dict[str, Any]):
    """What the run came to (kept as the task's result in the pod DB): status, batches,
    failed batches, abort reason."""


class _Task(WorkerTask):
    """The handle protocols get (:class:`~podium.protocols.base.WorkerTask`)."""

    def __init__(self, execution: WorkerExecution) -> None:
        self._execution = execution
        self.context = execution.context

    async def send(self, kind: MessageType, record: Payload) -> None:
        await self._execution.stream.send(kind, record)

    async def receive(self, *kinds: MessageType) -> Payload:
        return await self._execution.receive(*kinds)

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    async def send_result(self, value: object) -> None:
        data = await asyncio.to_thread(encode_result, value)
        await self.send(MessageType.EVALUATION_RESULTS, Opaque(data))

    def check_usage(self, model_id: str, used: int) -> LimitsExceededInfo | None:
        """Count ``used`` predictions of ``model_id`` against the modeller's limit."""
        return check_usage_limits(self._execution.limits, model_id, used)

    async def abort_limits_exceeded(self, info: LimitsExceededInfo, model_id: str) -> None:
        """End the task: the modeller's limit for ``model_id`` is used up."""
        raise WorkerAbort(
            AbortReason.LIMITS_EXCEEDED,
            f"the inference limit of model {model_id!r} is used up: {info.allowed} "
            f"predictions of the last run were allowed, {info.overrun} over",
        )


class WorkerExecution:
    """Runs one accepted task on one data source (see the module docstring)."""

    def __init__(
        self,
        *,
        context: WorkerContext,
        protocol: WorkerProtocol,
        stream: PeerStream,
        inbox: Inbox,
        modeller_party: str,
        store: PodStore,
        definition_hash: str,
        clock: Callable[[], datetime],
        hooks: Hooks | None = None,
        limits: dict[str, InferenceLimits] | None = None,
        batchable: bool = False,
    ) -> None:
        self.context = context
        self.protocol = protocol
        self.stream = stream
        self._inbox = inbox
        self._queue = inbox.queues[modeller_party]
        self._store = store
        self._definition_hash = definition_hash
        self._clock = clock
        self._hooks = hooks or Hooks()
        self.limits = dict(limits or {})
        self._batchable = batchable
        self._source_name, self._source = next(iter(context.sources.items()))
        self._flow_queue: asyncio.Queue[Message | PeerGone] = asyncio.Queue()
        self._cancelled = False
        self._failed: list[tuple[int, str]] = []
        self._batches_run = 0
        self._files: list[FileVersion] = []

    # -- receiving -------------------------------------------------------------------

    async def receive(self, *kinds: MessageType) -> Payload:
        """The next message of one of ``kinds`` from the modeller (engine messages are
        handled on the way)."""
        while True:
            message = await self._next()
            if message.type in kinds:
                return message.payload
            raise ProtocolError(
                f"expected {' or '.join(k.value for k in kinds)} from the modeller, "
                f"got {message.type.value}"
            )

    async def _next(self) -> Message:
        """The next message for the flow; checks the modeller is there when it is quiet."""
        idle = self.context.options.idle_timeout_s
        answer = min(ONLINE_CHECK_TIMEOUT_S, idle)
        checked = False
        while True:
            try:
                async with asyncio.timeout(answer if checked else idle):
                    item = await self._flow_queue.get()
            except TimeoutError:
                if checked:
                    raise WorkerAbort(
                        AbortReason.MODELLER_TIMEOUT,
                        f"no word from the modeller for {idle + answer:g} s",
                    ) from None
                await self.stream.send(MessageType.ONLINE_CHECK, Signal())
                checked = True
                continue
            if isinstance(item, PeerGone):
                raise item.error
            if item.type is MessageType.ONLINE_RESPONSE:
                checked = False
                continue
            return item

    async def _pump(self, flow: asyncio.Task[None]) -> None:
        """Answer the modeller's engine messages at once, whatever the flow is doing (a
        long batch, say): ``ONLINE_CHECK`` gets ``ONLINE_RESPONSE``, ``TASK_CANCEL``
        cancels the flow; everything else goes to the flow."""
        while True:
            item = await self._queue.get()
            if isinstance(item, Message) and item.type is MessageType.ONLINE_CHECK:
                await self.stream.send(MessageType.ONLINE_RESPONSE, Signal())
                continue
            if isinstance(item, Message) and item.type is MessageType.TASK_CANCEL:
                self._cancelled = True
                flow.cancel()
                return
            self._flow_queue.put_nowait(item)
            if isinstance(item, PeerGone):
                return

    # -- the flow ----------------------------------------------------------------------

    async def execute(self) -> WorkerOutcome:
        """Run the task to its end; never raises for the task's own failures (they end
        it with ``TASK_ABORT``, recorded in the pod DB)."""
        ctx = self.context
        await asyncio.to_thread(
            self._store.record_task_start,
            ctx.task_id,
            self._definition_hash,
            ctx.modeller,
            self._clock(),
        )
        outcome = WorkerOutcome(status=TaskRunStatus.COMPLETED.value)
        running: list[asyncio.Task[None]] = []
        try:
            await self._run(running)
        except WorkerAbort as abort:
            outcome.update(status=TaskRunStatus.ABORTED.value, reason=abort.reason.value)
            await self._abort(abort)
        except HookError as error:
            outcome.update(status=TaskRunStatus.ABORTED.value, reason="WORKER_ERROR")
            await self._abort(WorkerAbort(AbortReason.WORKER_ERROR, str(error)))
        except _Cancelled:
            _log.info("task %s was cancelled by %s", ctx.task_id, ctx.modeller)
            outcome.update(status=TaskRunStatus.ABORTED.value, reason="CANCELLED")
        except ProtocolError as error:
            _log.warning("task %s: %s", ctx.task_id, error)
            outcome.update(status=TaskRunStatus.FAILED.value, reason=str(error))
        except asyncio.CancelledError:
            # the pod is stopping: tell the modeller, record the end, then stop
            outcome.update(status=TaskRunStatus.ABORTED.value, reason="WORKER_ERROR")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._abort(WorkerAbort(AbortReason.WORKER_ERROR, "the pod is stopping"))
            await self._record_end(outcome)
            raise
        except Exception as error:  # noqa: BLE001 - the task's boundary: abort, log, go on
            _log.exception("task %s failed", ctx.task_id)
            outcome.update(status=TaskRunStatus.FAILED.value, reason="WORKER_ERROR")
            detail = f"{_public(error)}"
            await self._abort(WorkerAbort(AbortReason.WORKER_ERROR, detail))
        finally:
            await self._close(running)
        await self._record_end(outcome)
        return outcome

    async def _run(self, running: list[asyncio.Task[None]]) -> None:
        """The flow, with the pump answering the modeller's engine messages beside it."""
        self._fire(HookEvent.TASK_START)
        flow = asyncio.create_task(self._flow())
        running += [flow, asyncio.create_task(self._pump(flow))]
        try:
            await flow
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            raise _Cancelled() from None
        self._fire(HookEvent.TASK_END, status="completed")

    async def _close(self, running: list[asyncio.Task[None]]) -> None:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        try:
            await self.stream.flush()
        except PodiumError as error:
            _log.warning(
                "task %s: the last messages were not stored: %s", self.context.task_id, error
            )
            self.stream.cancel()

    async def _record_end(self, outcome: WorkerOutcome) -> None:
        outcome.update(batches=self._batches_run, failed_batches=[i for i, _ in self._failed])
        await asyncio.to_thread(
            self._store.record_task_end,
            self.context.task_id,
            outcome["status"],
            json.dumps(outcome, sort_keys=True).encode(),
            self._clock(),
        )

    async def _abort(self, abort: WorkerAbort) -> None:
        _log.warning("task %s aborted: %s", self.context.task_id, abort)
        try:
            self._hooks.fire(HookEvent.TASK_ABORT, **self._info(reason=abort.reason.value))
        except HookError as error:
            _log.error("task %s: %s", self.context.task_id, error)
            abort = WorkerAbort(abort.reason, f"{abort.detail}; and {error}")
        if not self.stream.closed:
            try:
                await self.stream.send(
                    MessageType.TASK_ABORT, TaskAbort(abort.reason, abort.detail), final=True
                )
            except PodiumError as error:
                _log.warning(
                    "task %s: the abort did not reach the modeller: %s", self.context.task_id, error
                )

    async def _flow(self) -> None:
        send = self.stream.send
        await send(MessageType.PREPARING_DATA, Signal())
        await self._prepare()
        await send(MessageType.CONFIGURING_TASK, Signal())
        task = _Task(self)
        for algorithm in self.protocol.algorithms:
            await asyncio.to_thread(algorithm.initialise, self.context)
        if isinstance(self.protocol, InitialSetupProtocol):
            await self.protocol.run_initial_setup(task)
        streaming = self._streaming()
        await send(MessageType.NUMBER_OF_BATCHES, NumberOfBatches(STREAMING if streaming else 1))
        await self._run_batches(task, streaming)
        await send(MessageType.BATCHES_COMPLETE, BatchesComplete(BatchesCompleteKind.BATCHES_ONLY))
        await self._resilience(task, streaming)
        if isinstance(self.protocol, FinalStepProtocol):
            await self.protocol.run_final_step(task)
        if self._files and not self.context.options.test_run and not self._failed:
            await asyncio.to_thread(
                self._store.mark_files_processed,
                self._definition_hash,
                self._source_name,
                self._files,
                self._clock(),
            )
        await send(MessageType.BATCHES_COMPLETE, BatchesComplete(BatchesCompleteKind.TASK_COMPLETE))
        await self.receive(MessageType.TASK_COMPLETE)

    def _streaming(self) -> bool:
        wanted = self.context.options.batched_execution
        if wanted and not self._batchable:
            _log.info(
                "task %s: batched execution asked for, but an algorithm needs the whole "
                "data at once: one pass",
                self.context.task_id,
            )
        return self._batchable if wanted is None else bool(wanted) and self._batchable

    async def _prepare(self) -> None:
        """Check for new data and earlier failures; cut a test run's data short."""
        options = self.context.options
        source = self._source
        if (reason := source.unavailable()) is not None:
            raise WorkerAbort(AbortReason.DATA_NOT_AVAILABLE, reason)
        needs_files = options.run_on_new_data_only or not options.force_rerun_failed_files
        records = await asyncio.to_thread(source.files) if needs_files else []
        self._files = [FileVersion(str(r.path), r.sha256, r.modified) for r in records]
        if options.run_on_new_data_only and self._files:
            new = await asyncio.to_thread(
                self._store.new_files, self._definition_hash, self._source_name, self._files
            )
            if not new:
                raise WorkerAbort(
                    AbortReason.NO_NEW_DATA,
                    f"no file of {self._source_name} is new or changed since this task last ran",
                )
        if not options.force_rerun_failed_files and self._files:
            failed = await asyncio.to_thread(
                self._store.failed_files, self._definition_hash, self._source_name
            )
            bad = {(f.path, f.content_hash) for f in failed}
            if all((f.path, f.content_hash) in bad for f in self._files):
                raise WorkerAbort(
                    AbortReason.NO_NEW_DATA,
                    f"every file of {self._source_name} failed in an earlier run of this "
                    "task; run with force_rerun_failed_files to retry them",
                )
        if options.test_run:
            frame = await asyncio.to_thread(source.to_pandas, max_rows=TEST_RUN_ROWS)
            test_source: DataSource = DataFrameSource(frame)
            self._source = test_source
            self.context = dataclasses.replace(
                self.context, sources={self._source_name: test_source}
            )

    def _batches(self, streaming: bool) -> Iterator[Batch]:
        sources = {self._source_name: self._source}
        if not streaming:
            yield Batch(0, self._source.to_pandas, sources, whole=True)
            return
        rows = self.context.options.batch_rows
        for index, frame in enumerate(self._source.iter_batches(rows)):
            yield Batch(index, functools.partial(_same, frame), sources, whole=False)

    async def _run_batches(self, task: _Task, streaming: bool) -> None:
        batches = self._batches(streaming)
        consecutive = 0
        limit = self.context.options.max_consecutive_failures
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            await self.stream.send(MessageType.CURRENT_BATCH_ID, CurrentBatchId(batch.index))
            if batch.index == 0:
                await self.stream.send(MessageType.TASK_START, Signal())
                await self.receive(MessageType.TASK_START)
            if await self._one_batch(task, batch):
                consecutive = 0
            else:
                consecutive += 1
                if consecutive >= limit:
                    raise WorkerAbort(
                        AbortReason.WORKER_ERROR,
                        f"{consecutive} batches failed in a row; the last: {self._failed[-1][1]}",
                    )
        if self._batches_run == 0:
            raise WorkerAbort(AbortReason.NO_DATA, f"{self._source_name} has no records")

    async def _one_batch(self, task: _Task, batch: Batch) -> bool:
        self._fire(HookEvent.BATCH_START, batch=batch.index)
        self._batches_run += 1
        try:
            await self.protocol.run_batch(task, batch)
        except (WorkerAbort, _Cancelled, ProtocolError, HookError):
            raise
        except Exception as error:  # noqa: BLE001 - a batch's own failure: recorded, the task goes on
            detail = f"{type(error).__name__}: {error}"
            _log.warning("task %s: batch %d failed: %s", self.context.task_id, batch.index, detail)
            self._failed.append((batch.index, detail))
            await self.stream.send(
                MessageType.LOG_MESSAGE,
                LogMessage(LogLevel.WARNING, f"batch {batch.index} failed: {_public(error)}"),
            )
            self._fire(HookEvent.BATCH_END, batch=batch.index, failed=True)
            return False
        self._fire(HookEvent.BATCH_END, batch=batch.index, failed=False)
        return True

    async def _resilience(self, task: _Task, streaming: bool) -> None:
        """Retry each failed batch on its own; record the files of those that fail again."""
        if not self._failed:
            return
        failed, self._failed = self._failed, []
        self._fire(HookEvent.RESILIENCE_START, failed_batches=[i for i, _ in failed])
        for index, error in failed:
            batch = await asyncio.to_thread(self._batch_at, index, streaming)
            if batch is None:  # the data changed under the task: still failed
                self._failed.append((index, error))
                continue
            await self.stream.send(MessageType.CURRENT_BATCH_ID, CurrentBatchId(batch.index))
            await self._one_batch(task, batch)
        still = [i for i, _ in self._failed]
        if still:
            files = self._files or [
                FileVersion(str(r.path), r.sha256, r.modified)
                for r in await asyncio.to_thread(self._source.files)
            ]
            for file in files:
                await asyncio.to_thread(
                    self._store.record_failed_file,
                    self._definition_hash,
                    self._source_name,
                    file.path,
                    file.content_hash,
                    error=self._failed[-1][1][:1000],
                    now=self._clock(),
                )
        self._fire(HookEvent.RESILIENCE_END, failed_batches=still)

    def _batch_at(self, index: int, streaming: bool) -> Batch | None:
        for batch in self._batches(streaming):
            if batch.index == index:
                batch.frame()  # read it here, in the worker thread
                return batch
        return None

    # -- hooks -------------------------------------------------------------------------

    def _info(self, **extra: object) -> dict[str, object]:
        ctx = self.context
        return {"task_id": ctx.task_id, "pod": ctx.pod_id, "modeller": ctx.modeller, **extra}

    def _fire(self, event: HookEvent, **extra: object) -> None:
        self._hooks.fire(event, **self._info(**extra))


def _same(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _public(error: Exception) -> str:
    """What the modeller may read of a batch's error: Podium's own messages are written
    for it; anything else gives only its type (the text may quote data)."""
    if isinstance(error, PodiumError):
        return str(error)[:1000]
    return f"{type(error).__name__} (details in the pod's log)"
