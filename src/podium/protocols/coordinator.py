"""The modeller side of a task's lifecycle: send the task, follow every pod, gather results.

:class:`ModellerExecution` runs one task on several pods over the relay:

1. it subscribes to its own task mailbox, then sends each pod a ``JOB_REQUEST`` signed
   with the modeller's key and sealed to the pod's key, carrying a fresh session key;
2. it waits for each pod's ``JOB_ACCEPT`` or ``JOB_REJECT`` (``answer_timeout_s``); with
   ``require_all_pods`` one refusal or silence cancels the task on the others and raises
   :class:`~podium.core.errors.PodResponseError`;
3. it follows each pod's phases (``PREPARING_DATA`` ... ``NUMBER_OF_BATCHES``,
   ``CURRENT_BATCH_ID``) and answers the ``TASK_START`` handshake once every pod still
   running is ready, so the pods start their first batch together;
4. the protocol's modeller side (:meth:`~podium.protocols.base.ModellerProtocol.run`)
   runs meanwhile and gets each pod's protocol messages through :class:`ModellerTask`;
5. on ``BATCHES_COMPLETE("TASK_COMPLETE")`` it sends the pod ``TASK_COMPLETE``; on
   ``TASK_ABORT`` it records the pod's reason and keeps what the pod sent before.

A pod silent for ``idle_timeout_s`` gets an ``ONLINE_CHECK``; with no answer it is
counted lost and sent ``TASK_CANCEL``. :attr:`progress` is told of every change of phase
or batch; :meth:`TaskProgress.slowest_batch` is the batch of the slowest pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.core.crypto import SessionKey, SessionSealer, SigningKeyPair
from podium.core.errors import PodiumError, PodResponseError, ProtocolError
from podium.core.messages import (
    BatchesComplete,
    BatchesCompleteKind,
    CurrentBatchId,
    Envelope,
    JobReject,
    JobRequest,
    LogMessage,
    MessageType,
    NumberOfBatches,
    Payload,
    Signal,
    TaskAbort,
    new_task_id,
    pod_mailbox,
    pod_party,
    seal_job_request,
    task_mailbox,
)
from podium.protocols._channel import Inbox, Message, PeerGone, PeerStream
from podium.protocols.base import ModellerTask, ProtocolFactory, RunOptions
from podium.protocols.hooks import HookEvent, Hooks
from podium.transport import Connection, Transport

__all__ = ["ModellerExecution", "PodState", "TaskOutcome", "TaskProgress"]

_log = logging.getLogger("podium.modeller")
_ONLINE_CHECK_TIMEOUT_S = 30.0

#: Phases a pod goes through, as the modeller sees them.
_PHASES = {
    MessageType.JOB_ACCEPT: "accepted",
    MessageType.PREPARING_DATA: "preparing data",
    MessageType.CONFIGURING_TASK: "configuring",
    MessageType.PREPARING_DATA_BATCHES: "preparing batches",
    MessageType.NUMBER_OF_BATCHES: "batches",
    MessageType.TASK_START: "ready",
}
#: Messages the engine handles itself; every other kind goes to the protocol.
_ENGINE = frozenset(
    {
        *_PHASES,
        MessageType.CURRENT_BATCH_ID,
        MessageType.BATCHES_COMPLETE,
        MessageType.TASK_ABORT,
        MessageType.ONLINE_CHECK,
        MessageType.ONLINE_RESPONSE,
        MessageType.LOG_MESSAGE,
        MessageType.JOB_REJECT,
    }
)


@dataclass(slots=True)
class PodState:
    """Where one pod of the task stands."""

    pod: str
    phase: str = "asked"
    batch: int | None = None
    batches: int | None = None
    outcome: str | None = None  # completed, rejected, aborted, no answer, lost
    reason: str | None = None
    logs: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def running(self) -> bool:
        """Whether the pod accepted and has not ended yet."""
        return self.outcome is None and self.phase != "asked"


class TaskProgress:
    """The state of every pod; ``on_change`` is called with the pod's state on each change,
    ``on_report`` with each progress line of the protocol."""

    def __init__(
        self,
        on_change: Callable[[PodState], object] | None = None,
        on_report: Callable[[str], object] | None = None,
    ) -> None:
        self.pods: dict[str, PodState] = {}
        self._on_change = on_change
        self._on_report = on_report
        #: The protocol's progress lines (a training round's metrics, say).
        self.lines: list[str] = []

    def report(self, line: str) -> None:
        """A progress line from the protocol."""
        self.lines.append(line)
        if self._on_report is not None:
            self._on_report(line)

    def changed(self, state: PodState) -> None:
        """Report a change."""
        if self._on_change is not None:
            self._on_change(state)

    def slowest_batch(self) -> int | None:
        """The batch of the slowest running pod (what a progress bar shows)."""
        batches = [s.batch for s in self.pods.values() if s.running and s.batch is not None]
        return min(batches) if batches else None


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What a run came to: the protocol's result and how each pod ended; ``task_id`` is
    the modeller's id of the run, ``pod_task_ids`` the id each pod knows it by (one per
    pod on the relay, so that no pod shares a stream or a mailbox with another)."""

    task_id: str
    task_hash: str
    result: Any
    pods: Mapping[str, PodState]
    seconds: float
    pod_task_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def completed(self) -> tuple[str, ...]:
        """The pods that completed the task."""
        return tuple(p for p, s in self.pods.items() if s.outcome == "completed")


_END = object()


class _Task(ModellerTask):
    """The handle the protocol's modeller side gets."""

    def __init__(self, execution: ModellerExecution, pods: tuple[str, ...]) -> None:
        self._execution = execution
        self._pods = pods

    @property
    def pods(self) -> tuple[str, ...]:
        return self._pods

    @property
    def schemas(self) -> Mapping[str, Mapping[str, Any]]:
        return self._execution.schemas

    def report(self, line: str) -> None:
        _log.info("%s", line)
        self._execution.progress.report(line)

    async def messages(self, pod: str) -> AsyncIterator[tuple[int | None, MessageType, Payload]]:
        queue = self._execution.protocol_queues[pod]
        while (item := await queue.get()) is not _END:
            assert isinstance(item, tuple)
            yield item

    async def send(
        self, pod: str, kind: MessageType, record: Payload, *, early: bool = False
    ) -> None:
        execution = self._execution
        state = execution.progress.pods[pod]
        started, ended = execution.started[pod], execution.ended[pod]
        if early:
            started = asyncio.Event()
            started.set()
        elif not started.is_set():  # TASK_START goes first, unless the pod ends before
            waiting = [asyncio.ensure_future(started.wait()), asyncio.ensure_future(ended.wait())]
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiting:
                    waiter.cancel()
        if state.outcome is not None or not started.is_set():
            raise ProtocolError(f"{pod} ended ({state.outcome}: {state.reason or 'no reason'})")
        stream = execution.streams[pod]
        if stream.closed:
            raise ProtocolError(f"{pod}'s stream is closed")
        await stream.send(kind, record)

    async def receive(self, pod: str, *kinds: MessageType) -> Payload:
        item = await self._execution.protocol_queues[pod].get()
        if item is _END:
            state = self._execution.progress.pods[pod]
            raise ProtocolError(f"{pod} ended ({state.outcome}: {state.reason or 'no reason'})")
        assert isinstance(item, tuple)
        _, kind, record = item
        assert isinstance(kind, MessageType)
        assert isinstance(record, Payload)
        if kind not in kinds:
            raise ProtocolError(
                f"expected {' or '.join(k.value for k in kinds)} from {pod}, got {kind.value}"
            )
        return record


class ModellerExecution:
    """Runs one task on pods from the modeller's side (see the module docstring).

    Args:
        factory: The protocol with its algorithms.
        task: The signed task definition (``factory.dump()`` plus ``pods`` and ``run``).
        task_id: The task's id.
        modeller: The modeller's user name (its party on the relay).
        signing: The modeller's signing key pair (registered on the hub).
        pod_keys: Each pod's id -> its X25519 public key (from the hub's registry).
        transport: The relay.
        options: The run options.
    """

    def __init__(
        self,
        *,
        factory: ProtocolFactory,
        task: Mapping[str, Any],
        task_id: str,
        task_hash: str,
        modeller: str,
        signing: SigningKeyPair,
        pod_keys: Mapping[str, bytes],
        transport: Transport,
        options: RunOptions,
        clock: Callable[[], datetime],
        hooks: Hooks | None = None,
        progress: TaskProgress | None = None,
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._factory = factory
        self.schemas = dict(schemas or {})
        self._task = dict(task)
        self._task_id = task_id
        self._task_hash = task_hash
        self._me = modeller
        self._signing = signing
        self._pod_keys = dict(pod_keys)
        self._transport = transport
        self._options = options
        self._clock = clock
        self._hooks = hooks or Hooks()
        self.progress = progress or TaskProgress()
        self._parties = {pod: pod_party(*pod.split("/", 1)) for pod in self._pod_keys}
        self._sessions = {pod: SessionKey.generate() for pod in self._pod_keys}
        # one wire task id per pod: each pod's stream and mailboxes are its own
        self.wire_ids = {pod: new_task_id() for pod in self._pod_keys}
        self.streams: dict[str, PeerStream] = {}
        self.protocol_queues: dict[str, asyncio.Queue[object]] = {}
        self._ready: set[str] = set()
        self._started = False
        self.started: dict[str, asyncio.Event] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self._starting: list[asyncio.Task[None]] = []

    async def execute(self) -> TaskOutcome:
        """Run the task; return its outcome.

        Raises:
            PodResponseError: ``require_all_pods`` and a pod refused or did not answer, or
                no pod accepted.
            HookError: A hook failed.
            ProtocolError: A pod broke the task's message flow.
        """
        began = time.monotonic()
        for pod in self._pod_keys:
            self.progress.pods[pod] = PodState(pod)
        mailboxes = [task_mailbox(self.wire_ids[pod], self._me) for pod in self._pod_keys]
        self._hooks.fire(HookEvent.TASK_START, task_id=self._task_id, pods=list(self._pod_keys))
        async with self._transport.connect(mailboxes) as connection:
            peers = {
                self._parties[p]: (self.wire_ids[p], self._sessions[p]) for p in self._pod_keys
            }
            inbox = Inbox(connection, peers=peers, answers_first=True)
            routing = asyncio.create_task(inbox.run())
            try:
                await self._send_requests(connection)
                accepted = await self._answers(inbox)
                self._check_answers(accepted)
                result = await self._run(accepted, inbox)
            except BaseException:
                await self._cancel_running()
                raise
            finally:
                for stream in self.streams.values():
                    try:
                        await stream.flush()
                    except PodiumError as error:
                        _log.warning("task %s: messages not stored: %s", self._task_id, error)
                        stream.cancel()
                routing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await routing
        self._hooks.fire(HookEvent.TASK_END, task_id=self._task_id)
        return TaskOutcome(
            self._task_id,
            self._task_hash,
            result,
            self.progress.pods,
            time.monotonic() - began,
            dict(self.wire_ids),
        )

    # -- asking ------------------------------------------------------------------------

    async def _send_requests(self, connection: Connection) -> None:
        now = self._clock()
        for pod, public in self._pod_keys.items():
            owner, name = pod.split("/", 1)
            record = JobRequest.build(
                self._signing,
                modeller=self._me,
                pod_id=pod,
                task=self._task,
                session_key=self._sessions[pod],
                task_id=self.wire_ids[pod],
                now=now,
            )
            body = await asyncio.to_thread(seal_job_request, record, public, pod_id=pod)
            await connection.send(
                Envelope(
                    type=MessageType.JOB_REQUEST,
                    task_id=self.wire_ids[pod],
                    sender=self._me,
                    recipient=pod_mailbox(owner, name),
                    seq=0,
                    sent_at=time.time(),
                    body=body,
                )
            )
            sealer = SessionSealer(self._sessions[pod], self.wire_ids[pod], self._me)
            self.streams[pod] = PeerStream(
                connection, sealer, recipient=task_mailbox(self.wire_ids[pod], self._parties[pod])
            )
            self.protocol_queues[pod] = asyncio.Queue()
            self.started[pod] = asyncio.Event()
            self.ended[pod] = asyncio.Event()

    async def _answers(self, inbox: Inbox) -> list[str]:
        async def one(pod: str) -> bool:
            state = self.progress.pods[pod]
            queue = inbox.queues[self._parties[pod]]
            try:
                async with asyncio.timeout(self._options.answer_timeout_s):
                    item = await queue.get()
            except TimeoutError:
                self._end(state, "no answer", f"no answer in {self._options.answer_timeout_s:g} s")
                return False
            if isinstance(item, PeerGone):
                self._end(state, "no answer", str(item.error))
                return False
            if item.type is MessageType.JOB_ACCEPT:
                state.phase = "accepted"
                self.progress.changed(state)
                return True
            if item.type is MessageType.JOB_REJECT and isinstance(item.payload, JobReject):
                self._end(state, "rejected", item.payload.reason)
                return False
            self._end(state, "no answer", f"answered with a {item.type.value}")
            return False

        results = await asyncio.gather(*(one(pod) for pod in self._pod_keys))
        return [pod for pod, ok in zip(self._pod_keys, results, strict=True) if ok]

    def _check_answers(self, accepted: list[str]) -> None:
        refused = {
            pod: s
            for pod, s in self.progress.pods.items()
            if s.outcome in ("rejected", "no answer")
        }
        if refused and (self._options.require_all_pods or not accepted):
            lines = "; ".join(f"{pod} {s.outcome}: {s.reason}" for pod, s in refused.items())
            what = "every pod must take part" if accepted else "no pod accepted the task"
            raise PodResponseError(f"{what}: {lines}")

    # -- running -----------------------------------------------------------------------

    async def _run(self, accepted: list[str], inbox: Inbox) -> object:
        protocol = self._factory.modeller()
        handle = _Task(self, tuple(accepted))
        followers = [
            asyncio.create_task(self._follow(pod, inbox.queues[self._parties[pod]]))
            for pod in accepted
        ]
        driving = asyncio.create_task(protocol.run(handle))
        try:
            done, _ = await asyncio.wait([driving, *followers], return_when=asyncio.FIRST_EXCEPTION)
            for finished in done:
                if (error := finished.exception()) is not None:
                    raise error
            await asyncio.gather(*followers)
            await asyncio.gather(*self._starting)
            return await driving
        finally:
            for running in [driving, *followers, *self._starting]:
                running.cancel()
            await asyncio.gather(driving, *followers, *self._starting, return_exceptions=True)

    async def _follow(self, pod: str, queue: asyncio.Queue[Message | PeerGone]) -> None:
        """Handle the engine's messages from ``pod`` until it ends."""
        state = self.progress.pods[pod]
        stream = self.streams[pod]
        to_protocol = self.protocol_queues[pod]
        try:
            while state.outcome is None:
                item = await self._next(pod, queue)
                if item is None:
                    self._end(state, "lost", "the pod stopped answering")
                    await stream.send(MessageType.TASK_CANCEL, Signal(), final=True)
                    break
                if isinstance(item, PeerGone):
                    self._end(state, "lost", str(item.error))
                    break
                await self._handle(pod, state, item, to_protocol)
        finally:
            to_protocol.put_nowait(_END)
            self._maybe_start()

    async def _next(
        self, pod: str, queue: asyncio.Queue[Message | PeerGone]
    ) -> Message | PeerGone | None:
        try:
            async with asyncio.timeout(self._options.idle_timeout_s):
                return await queue.get()
        except TimeoutError:
            await self.streams[pod].send(MessageType.ONLINE_CHECK, Signal())
        try:
            async with asyncio.timeout(min(_ONLINE_CHECK_TIMEOUT_S, self._options.idle_timeout_s)):
                return await queue.get()
        except TimeoutError:
            return None

    async def _handle(
        self, pod: str, state: PodState, message: Message, to_protocol: asyncio.Queue[object]
    ) -> None:
        kind, record = message.type, message.payload
        if kind not in _ENGINE:
            to_protocol.put_nowait(
                (state.batch if state.phase != "finishing" else None, kind, record)
            )
            return
        if kind in _PHASES and kind is not MessageType.TASK_START:
            state.phase = _PHASES[kind]
            if isinstance(record, NumberOfBatches):
                state.batches = record.n
        elif kind is MessageType.CURRENT_BATCH_ID and isinstance(record, CurrentBatchId):
            state.batch = record.batch
            state.phase = "running"
        elif kind is MessageType.TASK_START:
            self._ready.add(pod)
            state.phase = "ready"
            self._maybe_start()
        elif kind is MessageType.BATCHES_COMPLETE and isinstance(record, BatchesComplete):
            if record.kind is BatchesCompleteKind.BATCHES_ONLY:
                state.phase = "finishing"
            else:
                await self.streams[pod].send(MessageType.TASK_COMPLETE, Signal(), final=True)
                self._end(state, "completed", None)
        elif kind is MessageType.TASK_ABORT and isinstance(record, TaskAbort):
            self._end(state, "aborted", f"{record.reason.value}: {record.detail}")
            self._hooks.fire(
                HookEvent.TASK_ABORT, task_id=self._task_id, pod=pod, reason=record.reason.value
            )
        elif kind is MessageType.ONLINE_CHECK:
            await self.streams[pod].send(MessageType.ONLINE_RESPONSE, Signal())
        elif kind is MessageType.LOG_MESSAGE and isinstance(record, LogMessage):
            state.logs.append(f"{record.level.value}: {record.message}")
            _log.info("%s: %s", pod, record.message)
        self.progress.changed(state)

    def _maybe_start(self) -> None:
        """Send ``TASK_START`` to the ready pods once every running pod is ready."""
        if self._started or not self._ready:
            return
        running = {p for p, s in self.progress.pods.items() if s.running}
        if running <= self._ready:
            self._started = True
            for pod in sorted(self._ready & running):
                self._starting.append(asyncio.create_task(self._start(pod)))

    async def _start(self, pod: str) -> None:
        await self.streams[pod].send(MessageType.TASK_START, Signal())
        self.started[pod].set()

    def _end(self, state: PodState, outcome: str, reason: str | None) -> None:
        state.outcome, state.reason, state.ended = outcome, reason, time.monotonic()
        state.phase = outcome
        if state.pod in self.ended:
            self.ended[state.pod].set()
        self.progress.changed(state)

    async def _cancel_running(self) -> None:
        for pod, state in self.progress.pods.items():
            stream = self.streams.get(pod)
            if state.running and stream is not None and not stream.closed:
                with contextlib.suppress(Exception):
                    await stream.send(MessageType.TASK_CANCEL, Signal(), final=True)
                self._end(state, "cancelled", "the modeller cancelled the task")
