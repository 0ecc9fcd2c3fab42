"""The pod DB's contract: every test runs on the in-memory store and on SQLite.

The in-memory store is the reference; the SQLite store must behave the same, down to sort
orders, no-op results and what a refused call leaves behind (nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from podium.core.crypto import NonceRegistry
from podium.pod.store import (
    AlreadyExistsError,
    FileVersion,
    NewAuditEvent,
    PodStore,
    StoreNonceRegistry,
    TaskRunStatus,
)
from tests.pod.conftest import T0, at

NAIVE = datetime(2026, 3, 4, 5, 6, 7)  # the point: a time with no zone
PLUS_TWO = timezone(timedelta(hours=2))


def race(call: Callable[[], bool], times: int = 8) -> list[bool]:
    """Run ``call`` from ``times`` threads released together; the results."""
    barrier = threading.Barrier(times, timeout=10)

    def run(_: int) -> bool:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(run, range(times)))


def files(*names: str, mtime: float = 1.5) -> list[FileVersion]:
    """File versions whose content hash is ``h-`` plus the name."""
    return [FileVersion(f"/data/{n}.csv", f"h-{n}", mtime) for n in names]


# -- task definitions ------------------------------------------------------------------


def test_a_definition_is_saved_once_and_read_back(pod_store: PodStore) -> None:
    """Saving a definition twice stores it once and keeps the first time."""
    definition = {"protocol": "results-only", "algorithms": [{"sql": "SELECT 1"}]}
    assert pod_store.save_task_definition("hash-1", definition, T0) is True
    again = pod_store.save_task_definition("hash-1", dict(reversed(definition.items())), at(5))
    assert again is False
    stored = pod_store.get_task_definition("hash-1")
    assert stored is not None
    assert (stored.task_hash, stored.definition, stored.saved_at) == ("hash-1", definition, T0)


def test_a_second_save_is_a_no_op(pod_store: PodStore) -> None:
    """The same definition under the same hash, in any key order, is not new."""
    pod_store.save_task_definition("h", {"a": 1, "b": 2}, T0)
    assert pod_store.save_task_definition("h", {"b": 2, "a": 1}, at(1)) is False


def test_a_different_definition_under_a_known_hash_is_refused(pod_store: PodStore) -> None:
    """A hash that holds another definition raises and keeps the original."""
    pod_store.save_task_definition("h", {"a": 1}, T0)
    with pytest.raises(AlreadyExistsError, match="different definition"):
        pod_store.save_task_definition("h", {"a": 2}, T0)
    stored = pod_store.get_task_definition("h")
    assert stored is not None
    assert stored.definition == {"a": 1}


def test_an_unknown_hash_has_no_definition(pod_store: PodStore) -> None:
    """Reading a hash never saved gives None."""
    assert pod_store.get_task_definition("nope") is None


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, ["not", "a", "dict"]])
def test_a_definition_that_is_not_json_is_refused(pod_store: PodStore, bad: Any) -> None:
    """A definition that JSON cannot hold raises ValueError and stores nothing."""
    with pytest.raises(ValueError, match="definition"):
        pod_store.save_task_definition("h", bad, T0)
    assert pod_store.get_task_definition("h") is None


def test_definitions_come_back_as_json(pod_store: PodStore) -> None:
    """Tuples come back as lists, nested values intact."""
    pod_store.save_task_definition("h", {"cols": ("a", "b"), "n": {"k": None}}, T0)
    stored = pod_store.get_task_definition("h")
    assert stored is not None
    assert stored.definition == {"cols": ["a", "b"], "n": {"k": None}}


# -- task runs -------------------------------------------------------------------------


def test_a_run_starts_and_ends_with_its_result(pod_store: PodStore) -> None:
    """A run goes from running to completed and keeps its result bytes."""
    started = pod_store.record_task_start("t1", "h", "alice", T0)
    assert started.status is TaskRunStatus.RUNNING
    assert pod_store.get_task_run("t1") == started
    assert pod_store.record_task_end("t1", TaskRunStatus.COMPLETED, b"\x00arrow\xff", at(3))
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert (run.status, run.started_at, run.ended_at, run.result_size) == (
        TaskRunStatus.COMPLETED,
        T0,
        at(3),
        7,
    )
    assert pod_store.get_task_result("t1") == b"\x00arrow\xff"


@pytest.mark.parametrize("status", ["failed", "aborted", TaskRunStatus.FAILED])
def test_a_run_may_end_without_a_result(pod_store: PodStore, status: str) -> None:
    """Failed and aborted runs end without a result; the status may be given as text."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    assert pod_store.record_task_end("t1", status, None, at(1))
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert (run.status, run.result_size) == (TaskRunStatus(status), None)
    assert pod_store.get_task_result("t1") is None


def test_an_empty_result_is_kept_as_empty(pod_store: PodStore) -> None:
    """An empty result is a result of size 0, not a missing one."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    pod_store.record_task_end("t1", "completed", b"", at(1))
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert run.result_size == 0
    assert pod_store.get_task_result("t1") == b""


def test_a_task_id_starts_once(pod_store: PodStore) -> None:
    """Starting a known task id raises and leaves the first run as it was."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    with pytest.raises(AlreadyExistsError):
        pod_store.record_task_start("t1", "other", "bob", at(1))
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert (run.task_hash, run.modeller) == ("h", "alice")


def test_only_the_first_end_counts(pod_store: PodStore) -> None:
    """Ending an ended run, or an unknown one, returns False and changes nothing."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    assert pod_store.record_task_end("t1", "completed", b"first", at(1)) is True
    assert pod_store.record_task_end("t1", "failed", b"second", at(2)) is False
    assert pod_store.record_task_end("ghost", "completed", None, at(2)) is False
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert (run.status, run.ended_at) == (TaskRunStatus.COMPLETED, at(1))
    assert pod_store.get_task_result("t1") == b"first"
    assert pod_store.get_task_run("ghost") is None


@pytest.mark.parametrize("status", ["running", "done"])
def test_a_run_cannot_end_as_running_or_unknown(pod_store: PodStore, status: str) -> None:
    """An end status other than completed, failed or aborted is refused."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    with pytest.raises(ValueError, match="completed, failed or aborted"):
        pod_store.record_task_end("t1", status, None, at(1))
    run = pod_store.get_task_run("t1")
    assert run is not None
    assert run.status is TaskRunStatus.RUNNING


def test_runs_list_newest_first_with_ties_by_id(pod_store: PodStore) -> None:
    """Runs list by start time descending, then task id descending; filter and pages."""
    pod_store.record_task_start("a", "h1", "alice", at(1))
    pod_store.record_task_start("c", "h2", "alice", at(2))
    pod_store.record_task_start("b", "h1", "bob", at(2))
    pod_store.record_task_start("d", "h1", "bob", at(0))

    def ids(**kwargs: Any) -> list[str]:
        return [r.task_id for r in pod_store.list_task_runs(**kwargs)]

    assert ids() == ["c", "b", "a", "d"]
    assert ids(task_hash="h1") == ["b", "a", "d"]
    assert ids(task_hash="h1", limit=2, offset=1) == ["a", "d"]
    assert ids(limit=0) == []
    assert ids(task_hash="none") == []
    with pytest.raises(ValueError, match="negative"):
        pod_store.list_task_runs(limit=-1)


def test_times_come_back_in_utc(pod_store: PodStore) -> None:
    """A time given in another zone comes back as the same instant in UTC."""
    local = T0.astimezone(PLUS_TWO)
    run = pod_store.record_task_start("t1", "h", "alice", local)
    stored = pod_store.get_task_run("t1")
    assert stored is not None
    assert stored.started_at == T0
    assert stored.started_at.utcoffset() == timedelta(0)
    assert run.started_at.utcoffset() == timedelta(0)


# -- processed files -------------------------------------------------------------------


def test_processed_files_are_listed_by_path(pod_store: PodStore) -> None:
    """Marked files come back by path, with their mtime and processing time."""
    pod_store.mark_files_processed("h", "src", files("b", "a"), T0)
    done = pod_store.processed_files("h", "src")
    assert [(f.path, f.content_hash, f.mtime, f.processed_at) for f in done] == [
        ("/data/a.csv", "h-a", 1.5, T0),
        ("/data/b.csv", "h-b", 1.5, T0),
    ]


def test_marking_a_file_again_updates_it(pod_store: PodStore) -> None:
    """The same path and content marked again keeps one record with the new mtime."""
    pod_store.mark_files_processed("h", "src", files("a"), T0)
    pod_store.mark_files_processed("h", "src", files("a", mtime=9.0), at(5))
    done = pod_store.processed_files("h", "src")
    assert [(f.mtime, f.processed_at) for f in done] == [(9.0, at(5))]


def test_each_processed_version_of_a_path_is_kept(pod_store: PodStore) -> None:
    """New content at a path is a second record, so both versions count as processed."""
    pod_store.mark_files_processed("h", "src", [FileVersion("/f", "v1", 1.0)], T0)
    pod_store.mark_files_processed("h", "src", [FileVersion("/f", "v2", 2.0)], at(1))
    assert [f.content_hash for f in pod_store.processed_files("h", "src")] == ["v1", "v2"]


def test_new_files_are_those_whose_content_was_not_processed(pod_store: PodStore) -> None:
    """new_files keeps unprocessed content, in the order given; a renamed file is not new."""
    pod_store.mark_files_processed("h", "src", files("a", "b"), T0)
    candidates = [
        FileVersion("/data/z.csv", "h-z", 1.0),
        FileVersion("/data/renamed.csv", "h-a", 1.0),
        FileVersion("/data/b.csv", "h-b-edited", 2.0),
        FileVersion("/data/c.csv", "h-c", 1.0),
    ]
    new = pod_store.new_files("h", "src", candidates)
    assert new == [candidates[0], candidates[2], candidates[3]]


def test_processed_files_belong_to_one_task_hash_and_source(pod_store: PodStore) -> None:
    """Files processed for one task hash or source are new for another."""
    pod_store.mark_files_processed("h", "src", files("a"), T0)
    assert pod_store.new_files("other", "src", files("a")) == files("a")
    assert pod_store.new_files("h", "other", files("a")) == files("a")
    assert pod_store.processed_files("other", "src") == []
    assert pod_store.new_files("h", "src", files("a")) == []


def test_new_files_handles_many_candidates(pod_store: PodStore) -> None:
    """Thousands of candidates (past one query's parameter limit) are checked."""
    names = [f"f{i}" for i in range(1500)]
    pod_store.mark_files_processed("h", "src", files(*names[::2]), T0)
    new = pod_store.new_files("h", "src", files(*names))
    assert [f.content_hash for f in new] == [f"h-{n}" for n in names[1::2]]


def test_marking_no_files_is_a_no_op(pod_store: PodStore) -> None:
    """An empty batch stores nothing and raises nothing."""
    pod_store.mark_files_processed("h", "src", [], T0)
    assert pod_store.processed_files("h", "src") == []


@pytest.mark.parametrize(
    "bad",
    [
        FileVersion("/data/x.csv", "", 1.0),
        FileVersion("", "h-x", 1.0),
        FileVersion("/data/x.csv", "h-x", float("nan")),
        ("/data/x.csv", "h-x", 1.0),
    ],
    ids=["no-hash", "no-path", "nan-mtime", "tuple"],
)
def test_a_batch_with_a_bad_entry_stores_none(pod_store: PodStore, bad: Any) -> None:
    """One bad entry in the middle of a batch refuses the whole batch."""
    batch = [*files("a"), bad, *files("b")]
    with pytest.raises(ValueError, match="file #1"):
        pod_store.mark_files_processed("h", "src", batch, T0)
    assert pod_store.processed_files("h", "src") == []


# -- failed files ----------------------------------------------------------------------


def test_a_failed_file_counts_its_attempts(pod_store: PodStore) -> None:
    """The same content failing again adds an attempt, keeps the first time, takes the
    latest error."""
    first = pod_store.record_failed_file("h", "src", "/f", "v1", error="boom", now=T0)
    assert (first.attempts, first.first_failed_at, first.last_failed_at) == (1, T0, T0)
    again = pod_store.record_failed_file("h", "src", "/f", "v1", error="bang", now=at(5))
    assert (again.attempts, again.error, again.first_failed_at, again.last_failed_at) == (
        2,
        "bang",
        T0,
        at(5),
    )
    assert pod_store.failed_files("h", "src") == [again]


def test_new_content_at_a_failed_path_starts_counting_again(pod_store: PodStore) -> None:
    """A failure of new content at the same path replaces the old one with attempt 1."""
    pod_store.record_failed_file("h", "src", "/f", "v1", error="boom", now=T0)
    pod_store.record_failed_file("h", "src", "/f", "v1", error="boom", now=at(1))
    new = pod_store.record_failed_file("h", "src", "/f", "v2", error="other", now=at(2))
    assert (new.content_hash, new.attempts, new.first_failed_at) == ("v2", 1, at(2))
    assert pod_store.failed_files("h", "src") == [new]


def test_failed_files_are_listed_by_path_per_task_and_source(pod_store: PodStore) -> None:
    """Failures list by path and stay within their task hash and source."""
    pod_store.record_failed_file("h", "src", "/b", "x", error="e", now=T0)
    pod_store.record_failed_file("h", "src", "/a", "y", error="e", now=T0)
    pod_store.record_failed_file("h", "other", "/c", "z", error="e", now=T0)
    pod_store.record_failed_file("h2", "src", "/d", "w", error="e", now=T0)
    assert [f.path for f in pod_store.failed_files("h", "src")] == ["/a", "/b"]
    assert [f.path for f in pod_store.failed_files("h", "other")] == ["/c"]


def test_a_failure_is_cleared_once(pod_store: PodStore) -> None:
    """Clearing a failure forgets it; clearing again says there was none."""
    pod_store.record_failed_file("h", "src", "/a", "y", error="e", now=T0)
    pod_store.record_failed_file("h", "src", "/b", "y", error="e", now=T0)
    assert pod_store.clear_failed_file("h", "src", "/a") is True
    assert pod_store.clear_failed_file("h", "src", "/a") is False
    assert [f.path for f in pod_store.failed_files("h", "src")] == ["/b"]
    again = pod_store.record_failed_file("h", "src", "/a", "y", error="e", now=at(1))
    assert again.attempts == 1


# -- privacy ledger --------------------------------------------------------------------


def spend(store: PodStore, epsilon: float, delta: float = 0.0, **kwargs: Any) -> bool:
    """Alice spends on ``census`` with caps epsilon 1, delta 1e-5 unless told otherwise."""
    options: dict[str, Any] = {
        "task_id": "t",
        "now": T0,
        "cap_epsilon": 1.0,
        "cap_delta": 1e-5,
    }
    options.update(kwargs)
    modeller = options.pop("modeller", "alice")
    source = options.pop("source", "census")
    return store.spend_budget(modeller, source, epsilon, delta, **options)


def test_spends_within_the_caps_are_recorded(pod_store: PodStore) -> None:
    """Spends add up in the ledger, oldest first."""
    assert spend(pod_store, 0.25, 1e-6, task_id="t1", now=T0)
    assert spend(pod_store, 0.5, 2e-6, task_id="t2", now=at(1))
    assert pod_store.budget_spent("alice", "census") == pytest.approx((0.75, 3e-6))
    ledger = pod_store.budget_spends("alice", "census")
    assert [(s.epsilon, s.delta, s.task_id, s.spent_at) for s in ledger] == [
        (0.25, 1e-6, "t1", T0),
        (0.5, 2e-6, "t2", at(1)),
    ]
    assert ledger[0].spend_id < ledger[1].spend_id


@pytest.mark.parametrize(("epsilon", "delta"), [(0.75, 0.0), (0.1, 1e-5)])
def test_a_spend_past_a_cap_is_refused_and_not_recorded(
    pod_store: PodStore, epsilon: float, delta: float
) -> None:
    """A spend that would pass the epsilon or the delta cap returns False, spends nothing."""
    assert spend(pod_store, 0.5, 1e-6)
    assert spend(pod_store, epsilon, delta) is False
    assert pod_store.budget_spent("alice", "census") == (0.5, 1e-6)
    assert len(pod_store.budget_spends("alice", "census")) == 1


def test_spends_may_reach_a_cap_exactly(pod_store: PodStore) -> None:
    """Ten spends of 0.1 fit a cap of 1.0 (exact sums); the eleventh does not."""
    assert all(spend(pod_store, 0.1) for _ in range(10))
    assert spend(pod_store, 0.1) is False
    assert pod_store.budget_spent("alice", "census")[0] == 1.0


def test_no_cap_means_no_limit(pod_store: PodStore) -> None:
    """With no caps any spend is recorded."""
    assert spend(pod_store, 1e6, 0.5, cap_epsilon=None, cap_delta=None)
    assert spend(pod_store, 0.5, 0.5, cap_epsilon=2.0) is False
    assert pod_store.budget_spent("alice", "census") == (1e6, 0.5)


def test_budgets_are_per_modeller_and_source(pod_store: PodStore) -> None:
    """Each (modeller, source) has its own ledger."""
    assert spend(pod_store, 1.0)
    assert spend(pod_store, 1.0, modeller="bob")
    assert spend(pod_store, 1.0, source="other")
    assert spend(pod_store, 0.01) is False
    assert pod_store.budget_spent("bob", "census") == (1.0, 0.0)
    assert pod_store.budget_spent("carol", "census") == (0.0, 0.0)
    assert pod_store.budget_spends("carol", "census") == []


@pytest.mark.parametrize(
    "change",
    [
        {"epsilon": -0.1},
        {"epsilon": float("nan")},
        {"epsilon": float("inf")},
        {"delta": -1e-9},
        {"delta": float("nan")},
        {"cap_epsilon": -1.0},
        {"cap_delta": float("inf")},
        {"epsilon": True},
    ],
    ids=str,
)
def test_bad_amounts_are_refused(pod_store: PodStore, change: dict[str, Any]) -> None:
    """Negative, non-finite or non-numeric amounts and caps raise ValueError."""
    values: dict[str, Any] = {"epsilon": 0.1, "delta": 0.0}
    values.update(change)
    epsilon, delta = values.pop("epsilon"), values.pop("delta")
    with pytest.raises(ValueError, match=r"epsilon|delta"):
        spend(pod_store, epsilon, delta, **values)
    assert pod_store.budget_spends("alice", "census") == []


def test_racing_spends_take_exactly_what_the_cap_allows(pod_store: PodStore) -> None:
    """Eight threads racing to spend 0.25 of a cap of 1.0: exactly four succeed."""
    results = race(lambda: spend(pod_store, 0.25))
    assert results.count(True) == 4
    assert pod_store.budget_spent("alice", "census") == (1.0, 0.0)
    assert len(pod_store.budget_spends("alice", "census")) == 4


def test_racing_for_the_last_of_a_cap_lets_one_through(pod_store: PodStore) -> None:
    """With 0.9 of 1.0 spent, of eight threads spending 0.1 exactly one succeeds."""
    assert spend(pod_store, 0.9)
    results = race(lambda: spend(pod_store, 0.1))
    assert results.count(True) == 1
    assert pod_store.budget_spent("alice", "census")[0] == pytest.approx(1.0)


# -- audit log -------------------------------------------------------------------------


def event(action: str, **kwargs: Any) -> NewAuditEvent:
    """An audit event by the pod at ``T0``."""
    return NewAuditEvent(at=kwargs.pop("at", T0), actor="pod", action=action, **kwargs)


def test_audit_events_list_newest_first(pod_store: PodStore) -> None:
    """Events get increasing ids and list newest first."""
    first = pod_store.audit(event("job-accepted", task_id="t1", details={"pods": ["a"]}))
    second = pod_store.audit(event("job-rejected", task_id="t2", reason="no grant"))
    assert first.event_id < second.event_id
    assert pod_store.audit_events() == [second, first]
    assert (second.reason, second.details, first.details) == ("no grant", {}, {"pods": ["a"]})


def test_audit_events_page_backwards(pod_store: PodStore) -> None:
    """limit and before_id page through the log from the newest."""
    stored = [pod_store.audit(event(f"e{i}")) for i in range(5)]
    page = pod_store.audit_events(limit=2)
    assert [e.action for e in page] == ["e4", "e3"]
    older = pod_store.audit_events(limit=2, before_id=page[-1].event_id)
    assert [e.action for e in older] == ["e2", "e1"]
    assert pod_store.audit_events(before_id=stored[0].event_id) == []


def test_audit_details_come_back_as_json(pod_store: PodStore) -> None:
    """Details round-trip as JSON values; the time comes back in UTC."""
    stored = pod_store.audit(event("x", details={"t": (1, 2)}, at=T0.astimezone(PLUS_TWO)))
    [read] = pod_store.audit_events()
    assert read == stored
    assert (read.details, read.at, read.at.utcoffset()) == ({"t": [1, 2]}, T0, timedelta(0))


def test_audit_details_that_are_not_json_are_refused(pod_store: PodStore) -> None:
    """An event whose details JSON cannot hold raises and is not logged."""
    with pytest.raises(ValueError, match="details"):
        pod_store.audit(event("x", details={"key": b"bytes"}))
    assert pod_store.audit_events() == []


# -- nonces ----------------------------------------------------------------------------


def test_a_nonce_is_refused_the_second_time(pod_store: PodStore) -> None:
    """The first sight of a nonce is new; the second, within retention, is a replay."""
    registry: NonceRegistry = StoreNonceRegistry(pod_store)
    assert registry.seen_before(b"n1", T0) is False
    assert registry.seen_before(b"n1", at(60)) is True
    assert registry.seen_before(b"n2", at(60)) is False


def test_a_nonce_is_forgotten_after_its_retention(pod_store: PodStore) -> None:
    """After the retention (10 minutes by default) a nonce is forgotten."""
    registry = StoreNonceRegistry(pod_store)
    assert registry.retention == timedelta(minutes=10)
    registry.seen_before(b"n1", T0)
    assert registry.seen_before(b"n1", at(599)) is True
    assert registry.seen_before(b"n1", at(600)) is False
    assert registry.seen_before(b"n1", at(601)) is True


def test_racing_threads_see_a_nonce_new_exactly_once(pod_store: PodStore) -> None:
    """Of eight threads presenting one nonce at once, exactly one finds it new."""
    registry = StoreNonceRegistry(pod_store, retention=timedelta(seconds=30))
    results = race(lambda: registry.seen_before(b"same", T0))
    assert results.count(False) == 1


def test_a_nonce_must_be_bytes(pod_store: PodStore) -> None:
    """A nonce given as text is refused rather than stored under another type."""
    with pytest.raises(ValueError, match="bytes"):
        StoreNonceRegistry(pod_store).seen_before("n1", T0)  # type: ignore[arg-type]


def test_a_retention_must_be_positive(pod_store: PodStore) -> None:
    """A zero retention is refused."""
    with pytest.raises(ValueError, match="retention"):
        StoreNonceRegistry(pod_store, retention=timedelta(0))


# -- naive times -----------------------------------------------------------------------

NAIVE_CALLS: dict[str, Callable[[PodStore], object]] = {
    "save_task_definition": lambda s: s.save_task_definition("h", {}, NAIVE),
    "record_task_start": lambda s: s.record_task_start("t9", "h", "alice", NAIVE),
    "record_task_end": lambda s: s.record_task_end("t1", "completed", None, NAIVE),
    "mark_files_processed": lambda s: s.mark_files_processed("h", "src", files("a"), NAIVE),
    "record_failed_file": lambda s: s.record_failed_file("h", "s", "/f", "v", error="e", now=NAIVE),
    "spend_budget": lambda s: spend(s, 0.1, now=NAIVE),
    "audit": lambda s: s.audit(event("x", at=NAIVE)),
    "seen_before": lambda s: StoreNonceRegistry(s).seen_before(b"n", NAIVE),
    "remember_nonce": lambda s: s.remember_nonce(b"n", T0, NAIVE),
}


def everything(store: PodStore) -> tuple[object, ...]:
    """What the store holds, as far as the naive-time calls could have changed it."""
    return (
        store.get_task_definition("h"),
        store.list_task_runs(),
        store.processed_files("h", "src"),
        store.failed_files("h", "s"),
        store.budget_spends("alice", "census"),
        store.audit_events(),
    )


@pytest.mark.parametrize("call", NAIVE_CALLS.values(), ids=NAIVE_CALLS.keys())
def test_naive_times_are_refused(pod_store: PodStore, call: Callable[[PodStore], object]) -> None:
    """Every method that takes a time refuses a naive one and changes nothing."""
    pod_store.record_task_start("t1", "h", "alice", T0)
    with pytest.raises(ValueError, match="naive"):
        call(pod_store)
    assert everything(pod_store) == (
        None,
        [pod_store.get_task_run("t1")],
        [],
        [],
        [],
        [],
    )
    assert StoreNonceRegistry(pod_store).seen_before(b"n", T0) is False
