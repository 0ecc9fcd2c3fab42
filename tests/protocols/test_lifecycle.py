"""The task lifecycle over a real hub's relay: refusals, disclosure control, batches,
resilience, new data only, test runs, hooks and timeouts."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pandas as pd
import pytest

from podium.algorithms.csv_report import CSVReportAlgorithm
from podium.algorithms.sql import SqlQuery
from podium.algorithms.statistics import ColumnAverage, Statistics
from podium.core.crypto import SessionKey
from podium.core.crypto.encoding import b64url_decode
from podium.core.errors import PodResponseError
from podium.core.messages import (
    AbortReason,
    Envelope,
    JobRequest,
    MessageType,
    TaskAbort,
    new_task_id,
    pod_mailbox,
    seal_job_request,
    task_mailbox,
)
from podium.data.sources.csv_source import CSVSource
from podium.hub.access import ALGORITHM_ROLES
from podium.hub.client import HubClient
from podium.hub.models import utcnow
from podium.hub.schemas import PodIn
from podium.pod.keys import load_or_create_pod_keys
from podium.pod.policy import PodPolicy
from podium.protocols import registry
from podium.protocols._channel import Inbox, Message
from podium.protocols.base import (
    AlgorithmFactory,
    Batch,
    ModellerAlgorithm,
    RunOptions,
    WorkerAlgorithm,
)
from podium.protocols.hooks import HookEvent, Hooks
from podium.protocols.results_only import ResultsOnly
from podium.transport import WebSocketTransport
from tests.protocols.conftest import BOB_SIGNING, Federation, frames

COUNT_BY_SEX = 'SELECT sex, COUNT(*) AS n FROM "data" GROUP BY sex ORDER BY sex'


def _sql(query: str = COUNT_BY_SEX) -> ResultsOnly:
    return ResultsOnly(algorithm=SqlQuery(query=query, table="data"))


async def test_without_require_all_pods_a_refusing_pod_is_reported_and_the_rest_run(
    federation: Federation,
) -> None:
    """One pod has no grant for bob: it refuses, the other completes."""
    data = frames(2)
    async with federation.pods(data, grant=None) as pods:
        await federation.grant(pods[0], "general-modeller")
        await federation.grant(pods[1], "viewer")
        outcome = await federation.modeller().run_async(_sql(), pods)
    assert outcome.completed == (pods[0],)
    refused = outcome.pods[pods[1]]
    assert refused.outcome == "rejected"
    assert refused.reason is not None
    assert refused.reason.startswith("hub-refused: missing-role")


async def test_require_all_pods_raises_when_a_pod_refuses_and_cancels_the_others(
    federation: Federation,
) -> None:
    """A refusal with require_all_pods: PodResponseError, and the accepting pod's task
    ends cancelled in its pod DB."""
    data = frames(2)
    async with federation.pods(data, grant=None) as pods:
        await federation.grant(pods[0], "general-modeller")
        await federation.grant(pods[1], "viewer")
        with pytest.raises(PodResponseError, match="missing-role"):
            await federation.modeller().run_async(
                _sql(), pods, options=RunOptions(require_all_pods=True)
            )
        store = federation.stores["pod-a"]
        deadline = time.monotonic() + 10
        while not (runs := store.list_task_runs()) or runs[0].status == "running":
            assert time.monotonic() < deadline, "the accepted pod never ended its task"
            await asyncio.sleep(0.05)
    assert runs[0].status == "aborted"


async def _ghost_pod(federation: Federation) -> str:
    """A pod registered with keys that never sent a heartbeat: offline."""
    keys = load_or_create_pod_keys(federation.tmp / "keys" / "ghost")
    registration = PodIn(
        display_name="ghost",
        description="never online",
        signing_key=keys.signing.public_b64,
        encryption_key=keys.encryption.public_b64,
    )
    async with HubClient(federation.url, token=federation.owner_key) as alice:
        await alice.register_pod("alice/ghost", registration)
        await alice.grant("alice/ghost", "bob", "general-modeller")
        assert (await alice.get_pod("alice/ghost")).status == "offline"
    return "alice/ghost"


async def test_an_offline_pod_with_require_all_pods_is_an_error_before_anything_is_sent(
    federation: Federation,
) -> None:
    """require_all_pods and an offline pod: PodResponseError, the online pod never asked."""
    ghost = await _ghost_pod(federation)
    async with federation.pods(frames(1)) as pods:
        with pytest.raises(PodResponseError, match="the pod is offline"):
            await federation.modeller().run_async(
                _sql(), [*pods, ghost], options=RunOptions(require_all_pods=True)
            )
    assert federation.stores["pod-a"].list_task_runs() == []


async def test_without_require_all_pods_an_offline_pod_is_skipped(federation: Federation) -> None:
    """The offline pod is reported as not answering; the online one completes."""
    ghost = await _ghost_pod(federation)
    async with federation.pods(frames(1)) as pods:
        outcome = await federation.modeller().run_async(_sql(), [*pods, ghost])
    assert outcome.completed == tuple(pods)
    assert outcome.pods[ghost].outcome == "no answer"


async def test_row_level_sql_is_refused_unless_the_policy_gives_the_role_rows(
    federation: Federation,
) -> None:
    """SELECT * aborts the task for a general modeller; with row_level_roles [sql] the
    rows come back."""
    data = frames(1)
    async with federation.pods(data) as pods:
        outcome = await federation.modeller().run_async(_sql('SELECT * FROM "data"'), pods)
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    assert "row-level output is refused" in (state.reason or "")
    policy = PodPolicy.model_validate({"row_level_roles": ["sql"]})
    federation.stores.clear()
    async with federation.pods(data, policy=policy) as pods:
        outcome = await federation.modeller().run_async(_sql('SELECT * FROM "data"'), pods)
    rows = outcome.result.combined[0].per_pod[pods[0]]
    pd.testing.assert_frame_equal(rows, data["pod-a"], check_dtype=False)


async def test_groups_below_the_minimum_size_never_leave_the_pod(federation: Federation) -> None:
    """With min_group_size 150, the smaller sex group of 200 rows is suppressed."""
    frame = pd.DataFrame({"sex": ["F"] * 40 + ["M"] * 160, "age": range(200)})
    policy = PodPolicy.model_validate({"min_group_size": 150})
    async with federation.pods({"pod-a": frame}, policy=policy) as pods:
        outcome = await federation.modeller().run_async(_sql(), pods)
    table = outcome.result.combined[0]
    assert table.per_pod[pods[0]].to_dict("records") == [{"sex": "M", "n": 160}]
    assert table.notes[pods[0]]["suppressed_groups"] == 1


async def test_a_sql_error_aborts_with_a_message_for_the_modeller(federation: Federation) -> None:
    """An unknown column: the pod aborts and says why; nothing else happens."""
    async with federation.pods(frames(1)) as pods:
        outcome = await federation.modeller().run_async(
            _sql('SELECT nope, COUNT(*) FROM "data" GROUP BY nope'), pods
        )
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    assert "WORKER_ERROR" in (state.reason or "")
    assert "nope" in (state.reason or "")


async def test_statistics_stream_in_batches_and_the_modeller_sees_them(
    federation: Federation,
) -> None:
    """batched_execution with 50-row batches: 4 batches of 200 rows, counted exactly."""
    data = frames(1)
    seen: list[int] = []

    async with federation.pods(data, hooks=_batch_hooks(seen)) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=Statistics(columns=["age"])),
            pods,
            options=RunOptions(batched_execution=True, batch_rows=50),
        )
    assert outcome.pods[pods[0]].batches == -1
    assert outcome.pods[pods[0]].batch == 3
    assert seen == [0, 1, 2, 3]
    table = outcome.result.combined[0].combined
    assert int(table.loc[0, "count"]) == 200


def _batch_hooks(seen: list[int]) -> Hooks:
    hooks = Hooks()
    hooks.on(HookEvent.BATCH_END, lambda batch, **_: seen.append(batch))
    return hooks


async def test_test_run_reads_a_few_records_only(federation: Federation) -> None:
    """test_run: 100 records of 200."""
    async with federation.pods(frames(1)) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=Statistics(columns=["age"])),
            pods,
            options=RunOptions(test_run=True),
        )
    assert int(outcome.result.combined[0].combined.loc[0, "count"]) == 100


async def test_column_average_is_the_weighted_mean_of_the_pods(federation: Federation) -> None:
    """ColumnAverage over three pods equals the mean of the pooled column."""
    data = frames(3)
    async with federation.pods(data) as pods:
        result = (
            await federation.modeller().run_async(
                ResultsOnly(algorithm=ColumnAverage(field="hours")), pods
            )
        ).result.combined[0]
    pooled = pd.concat(data.values())["hours"]
    assert result.combined.loc[0, "mean"] == pytest.approx(pooled.mean(), rel=1e-12)
    assert int(result.combined.loc[0, "count"]) == len(pooled)


async def test_a_csv_report_stays_on_the_pod_and_only_its_summary_returns(
    federation: Federation,
) -> None:
    """The report file is on the pod with every row; the modeller gets rows and a hash."""
    data = frames(1)
    async with federation.pods(data) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=CSVReportAlgorithm(columns=["age", "sex"], filename="r.csv")),
            pods,
            options=RunOptions(batched_execution=True, batch_rows=64),
        )
    summary = outcome.result.combined[0].per_pod[pods[0]]
    assert summary.loc[0, "rows"] == 200
    written = pd.read_csv(federation.tmp / "outputs" / "pod-a" / "r.csv")
    pd.testing.assert_frame_equal(written, data["pod-a"][["age", "sex"]])
    digest = hashlib.sha256((federation.tmp / "outputs" / "pod-a" / "r.csv").read_bytes())
    assert summary.loc[0, "sha256"] == digest.hexdigest()


@pytest.fixture
def csv_pod(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    frames(1)["pod-a"].to_csv(path, index=False)
    return path


async def test_run_on_new_data_only_skips_a_file_it_has_processed(
    federation: Federation, csv_pod: Path
) -> None:
    """First run completes, the second aborts with NO_NEW_DATA, a changed file runs again."""
    task = ResultsOnly(algorithm=Statistics(columns=["age"]))
    options = RunOptions(run_on_new_data_only=True)
    async with federation.pods({"pod-a": CSVSource(csv_pod)}) as pods:
        first = await federation.modeller().run_async(task, pods, options=options)
        second = await federation.modeller().run_async(task, pods, options=options)
        frames(1, seed=7)["pod-a"].to_csv(csv_pod, index=False)
        third = await federation.modeller().run_async(task, pods, options=options)
    assert first.completed == tuple(pods)
    assert second.pods[pods[0]].outcome == "aborted"
    assert (second.pods[pods[0]].reason or "").startswith("NO_NEW_DATA")
    assert third.completed == tuple(pods)


class _Flaky(AlgorithmFactory):
    """A test algorithm: batch ``fail_batch`` fails ``failures`` times, then works."""

    name = "Flaky"
    batchable = True
    attempts: ClassVar[dict[int, int]] = {}

    def __init__(self, *, fail_batch: int, failures: int) -> None:
        self.fail_batch, self.failures = fail_batch, failures

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> _Flaky:
        return cls(fail_batch=arguments["fail_batch"], failures=arguments["failures"])

    def arguments(self) -> dict[str, Any]:
        return {"fail_batch": self.fail_batch, "failures": self.failures}

    def worker(self) -> WorkerAlgorithm:
        return _FlakyWorker(self.fail_batch, self.failures)

    def modeller(self) -> ModellerAlgorithm:
        return _Count()


class _FlakyWorker(WorkerAlgorithm):
    def __init__(self, fail_batch: int, failures: int) -> None:
        self.fail_batch, self.failures = fail_batch, failures

    def run(self, batch: Batch) -> object:
        if self.fail_batch in (batch.index, -1):
            tries = _Flaky.attempts.get(batch.index, 0) + 1
            _Flaky.attempts[batch.index] = tries
            if tries <= self.failures:
                raise ValueError(f"batch {batch.index} broke (try {tries})")
        return {"rows": len(batch.frame())}


class _Count(ModellerAlgorithm):
    def combine(self, results: Mapping[str, Sequence[object]]) -> object:
        return {
            pod: sum(r["rows"] for r in rs if isinstance(r, dict)) for pod, rs in results.items()
        }


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> None:
    _Flaky.attempts.clear()
    known = dict(registry.ALGORITHMS)
    monkeypatch.setattr(registry, "ALGORITHMS", MappingProxyType({**known, "Flaky": _Flaky}))
    monkeypatch.setattr(
        "podium.hub.access.ALGORITHM_ROLES", {"flaky": "sql", **_roles()}, raising=True
    )


def _roles() -> dict[str, str]:
    return dict(ALGORITHM_ROLES)


async def test_a_failed_batch_is_retried_in_the_resilience_phase(
    federation: Federation, flaky: None
) -> None:
    """Batch 1 fails once: the modeller hears of it, the retry after the batches works, and
    every row is counted once."""
    events: list[tuple[str, object]] = []
    hooks = Hooks()
    hooks.on(
        HookEvent.RESILIENCE_START,
        lambda failed_batches, **_: events.append(("start", failed_batches)),
    )
    hooks.on(
        HookEvent.RESILIENCE_END, lambda failed_batches, **_: events.append(("end", failed_batches))
    )
    async with federation.pods(frames(1), hooks=hooks) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=_Flaky(fail_batch=1, failures=1)),
            pods,
            options=RunOptions(batched_execution=True, batch_rows=50),
        )
    state = outcome.pods[pods[0]]
    assert state.outcome == "completed"
    assert any("batch 1 failed" in line for line in state.logs)
    assert outcome.result.combined[0] == {pods[0]: 200}
    assert events == [("start", [1]), ("end", [])]


async def test_consecutive_failures_abort_the_task(federation: Federation, flaky: None) -> None:
    """Every batch fails: after three in a row the pod aborts with WORKER_ERROR."""
    async with federation.pods(frames(1)) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=_Flaky(fail_batch=-1, failures=99)),
            pods,
            options=RunOptions(batched_execution=True, batch_rows=20),
        )
    state = outcome.pods[pods[0]]
    assert state.outcome == "aborted"
    assert (state.reason or "").startswith("WORKER_ERROR: 3 batches failed in a row")


async def test_files_of_batches_that_fail_again_are_skipped_unless_forced(
    federation: Federation, flaky: None, csv_pod: Path
) -> None:
    """A batch failing twice puts the file among the failed files; a later run without
    force_rerun_failed_files aborts with NO_NEW_DATA, a forced one runs."""
    task = ResultsOnly(algorithm=_Flaky(fail_batch=0, failures=2))
    async with federation.pods({"pod-a": CSVSource(csv_pod)}) as pods:
        first = await federation.modeller().run_async(task, pods)
        store = federation.stores["pod-a"]
        skipped = await federation.modeller().run_async(
            task, pods, options=RunOptions(force_rerun_failed_files=False)
        )
        forced = await federation.modeller().run_async(task, pods)
    assert first.pods[pods[0]].outcome == "completed"
    assert first.result.combined[0] == {pods[0]: 0}
    assert skipped.pods[pods[0]].outcome == "aborted"
    assert "failed in an earlier run" in (skipped.pods[pods[0]].reason or "")
    assert forced.result.combined[0] == {pods[0]: 200}
    assert store is federation.stores["pod-a"]


async def test_a_failing_pod_hook_aborts_the_task_with_the_hook_error(
    federation: Federation,
) -> None:
    """A batch_start hook that raises: the task aborts and the modeller reads why."""
    hooks = Hooks()

    def broken(**_: object) -> None:
        raise RuntimeError("audit system down")

    hooks.on(HookEvent.BATCH_START, broken)
    async with federation.pods(frames(1), hooks=hooks) as pods:
        outcome = await federation.modeller().run_async(_sql(), pods)
    reason = outcome.pods[pods[0]].reason or ""
    assert outcome.pods[pods[0]].outcome == "aborted"
    assert "batch_start hook" in reason
    assert "audit system down" in reason


async def test_the_modeller_hooks_see_the_task_start_and_end(federation: Federation) -> None:
    """Modeller-side hooks: task_start with the pods, task_end after."""
    calls: list[str] = []
    hooks = Hooks()
    hooks.on(HookEvent.TASK_START, lambda pods, **_: calls.append(f"start {len(pods)}"))
    hooks.on(HookEvent.TASK_END, lambda **_: calls.append("end"))
    async with federation.pods(frames(2)) as pods:
        await federation.modeller().run_async(_sql(), pods, hooks=hooks)
    assert calls == ["start 2", "end"]


async def test_a_slow_batch_is_kept_alive_by_online_checks(
    federation: Federation, monkeypatch: pytest.MonkeyPatch, flaky: None
) -> None:
    """idle_timeout_s 0.2 and a batch of 1 s: the modeller's ONLINE_CHECK is answered while
    the pod works, so the task completes."""
    original = _FlakyWorker.run

    def slow(self: _FlakyWorker, batch: Batch) -> object:
        time.sleep(1.0)
        return original(self, batch)

    monkeypatch.setattr(_FlakyWorker, "run", slow)
    async with federation.pods(frames(1)) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=_Flaky(fail_batch=5, failures=0)),
            pods,
            options=RunOptions(idle_timeout_s=0.2),
        )
    assert outcome.completed == tuple(pods)


async def test_cancelling_the_modeller_cancels_the_task_on_the_pod(
    federation: Federation, monkeypatch: pytest.MonkeyPatch, flaky: None
) -> None:
    """The modeller's run is cancelled mid-batch: the pod gets TASK_CANCEL and records the
    run as aborted (cancelled)."""
    original = _FlakyWorker.run

    def slow(self: _FlakyWorker, batch: Batch) -> object:
        time.sleep(0.5)
        return original(self, batch)

    monkeypatch.setattr(_FlakyWorker, "run", slow)
    started = asyncio.Event()
    hooks = Hooks()
    hooks.on(HookEvent.BATCH_START, lambda **_: started.set())
    async with federation.pods(frames(1), hooks=hooks) as pods:
        run = asyncio.create_task(
            federation.modeller().run_async(
                ResultsOnly(algorithm=_Flaky(fail_batch=9, failures=0)),
                pods,
                options=RunOptions(batched_execution=True, batch_rows=20),
            )
        )
        await asyncio.wait_for(started.wait(), 10)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        store = federation.stores["pod-a"]
        deadline = time.monotonic() + 10
        while (runs := store.list_task_runs())[0].status == "running":
            assert time.monotonic() < deadline, "the pod never stopped the task"
            await asyncio.sleep(0.05)
        assert store.get_task_result(runs[0].task_id) is not None
    assert runs[0].status == "aborted"
    outcome = store.get_task_result(runs[0].task_id) or b""
    assert b'"reason": "CANCELLED"' in outcome
    assert b'"batches": 10' not in outcome  # it stopped before the last batch


async def test_a_pod_aborts_when_the_modeller_goes_silent(federation: Federation) -> None:
    """A modeller that sends the request and then nothing: the pod asks ONLINE_CHECK, hears
    nothing, and aborts with MODELLER_TIMEOUT."""
    async with federation.pods(frames(1)) as pods:
        async with HubClient(federation.url, token=federation.bob_key) as bob:
            await bob.register_key("bob", "signing", BOB_SIGNING.public_b64)
            pod = await bob.get_pod(pods[0])
        (key,) = [k for k in pod.keys if k.purpose == "encryption"]
        task = _sql().dump() | {"pods": pods, "run": RunOptions(idle_timeout_s=0.3).wire()}
        session, task_id = SessionKey.generate(), new_task_id()
        request = JobRequest.build(
            BOB_SIGNING, modeller="bob", pod_id=pods[0], task=task,
            session_key=session, task_id=task_id, now=utcnow(),
        )  # fmt: skip
        envelope = Envelope(
            type=MessageType.JOB_REQUEST, task_id=task_id, sender="bob",
            recipient=pod_mailbox("alice", "pod-a"), seq=0, sent_at=time.time(),
            body=seal_job_request(request, b64url_decode(key.public_key), pod_id=pods[0]),
        )  # fmt: skip
        transport = WebSocketTransport(federation.url, federation.bob_key)
        kinds: list[MessageType] = []
        last: Message | None = None
        async with transport.connect([task_mailbox(task_id, "bob")]) as connection:
            inbox = Inbox(connection, peers={"alice.pod-a": (task_id, session)})
            routing = asyncio.create_task(inbox.run())
            await connection.send(envelope)
            queue = inbox.queues["alice.pod-a"]
            async with asyncio.timeout(10):
                while not kinds or kinds[-1] is not MessageType.TASK_ABORT:
                    message = await queue.get()
                    assert isinstance(message, Message)
                    kinds.append(message.type)
                    last = message
            routing.cancel()
    assert MessageType.ONLINE_CHECK in kinds
    assert last is not None
    assert isinstance(last.payload, TaskAbort)
    assert last.payload.reason is AbortReason.MODELLER_TIMEOUT
