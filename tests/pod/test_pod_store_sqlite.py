"""Facts of the SQLite pod DB that the in-memory twin has no counterpart for: the file,
its permissions, its schema version, reopening, and transactions cut short."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from podium.pod.store import (
    FileVersion,
    NewAuditEvent,
    PodStoreError,
    SchemaVersionError,
    SqlitePodStore,
    StoreNonceRegistry,
    TaskRunStatus,
    open_pod_store,
)
from podium.pod.store._tables import SCHEMA_VERSION
from tests.pod.conftest import T0, at

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def user_version(path: Path) -> int:
    """``PRAGMA user_version`` of the database at ``path``, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return version


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a fresh pod DB goes (its folder does not exist yet)."""
    return tmp_path / "pods" / "alpha" / "pod.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqlitePodStore]:
    """An open pod DB at ``db_path``."""
    opened = open_pod_store(db_path)
    try:
        yield opened
    finally:
        opened.close()


# -- the file --------------------------------------------------------------------------


def test_the_constructor_touches_nothing(db_path: Path) -> None:
    """Making a store creates no file; using it before open() says what to do."""
    store = SqlitePodStore(db_path)
    assert not db_path.parent.exists()
    with pytest.raises(PodStoreError, match=r"not open.*open\(\)"):
        store.get_task_run("t1")


def test_the_file_is_private_to_its_owner(store: SqlitePodStore, db_path: Path) -> None:
    """The DB file and its WAL are mode 0600, a folder the store made is 0700."""
    store.audit(NewAuditEvent(at=T0, actor="pod", action="job-accepted"))
    assert mode(db_path) == 0o600
    assert mode(db_path.parent) == 0o700
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists()
    assert mode(wal) == 0o600


def test_an_existing_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    """Opening a pod DB that others could read sets it to 0600."""
    path = tmp_path / "pod.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with open_pod_store(path):
        assert mode(path) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    """The store changes only folders it creates."""
    tmp_path.chmod(0o755)
    with open_pod_store(tmp_path / "pod.db"):
        assert mode(tmp_path) == 0o755


def test_the_schema_version_is_recorded(store: SqlitePodStore, db_path: Path) -> None:
    """A new DB carries the schema version this code writes."""
    assert user_version(db_path) == SCHEMA_VERSION >= 1


def test_a_db_from_a_newer_podium_is_refused(db_path: Path) -> None:
    """A user_version above ours is refused with a clear error, and the file left alone."""
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match=r"newer Podium.*upgrade Podium"):
        open_pod_store(db_path)
    assert user_version(db_path) == SCHEMA_VERSION + 1
    conn = sqlite3.connect(db_path)
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    conn.close()
    assert tables == []


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Pointing the store at some other file raises PodStoreError naming the path."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a database, just some text " * 100)
    with pytest.raises(PodStoreError, match="cannot open the pod DB"):
        open_pod_store(path)


def test_open_and_close_are_repeatable(db_path: Path) -> None:
    """open() twice is one open; close() twice is fine; a closed store reopens."""
    store = SqlitePodStore(db_path)
    assert store.open() is store.open()
    store.record_task_start("t1", "h", "alice", T0)
    store.close()
    store.close()
    with store:
        assert store.get_task_run("t1") is not None


# -- surviving a restart ---------------------------------------------------------------


def test_everything_survives_a_reopen(db_path: Path) -> None:
    """What one store wrote, a store opened later on the same file reads."""
    with open_pod_store(db_path) as first:
        first.save_task_definition("h", {"sql": "SELECT 1"}, T0)
        first.record_task_start("t1", "h", "alice", T0)
        first.record_task_end("t1", TaskRunStatus.COMPLETED, b"result", at(1))
        first.mark_files_processed("h", "src", [FileVersion("/a", "ha", 1.0)], T0)
        first.record_failed_file("h", "src", "/b", "hb", error="boom", now=T0)
        first.spend_budget(
            "alice", "src", 0.5, 0.0, task_id="t1", now=T0, cap_epsilon=1.0, cap_delta=None
        )
        first.audit(NewAuditEvent(at=T0, actor="pod", action="job-accepted", task_id="t1"))
        StoreNonceRegistry(first).seen_before(b"nonce", T0)
    with open_pod_store(db_path) as second:
        definition = second.get_task_definition("h")
        assert definition is not None
        assert definition.definition == {"sql": "SELECT 1"}
        assert second.get_task_result("t1") == b"result"
        assert second.new_files("h", "src", [FileVersion("/a", "ha", 1.0)]) == []
        assert [f.path for f in second.failed_files("h", "src")] == ["/b"]
        assert second.budget_spent("alice", "src") == (0.5, 0.0)
        assert [e.action for e in second.audit_events()] == ["job-accepted"]
        assert StoreNonceRegistry(second).seen_before(b"nonce", at(60)) is True


def test_two_stores_on_one_file_share_one_budget(db_path: Path) -> None:
    """Two stores (as two pod processes would) racing on one ledger never overspend."""
    with open_pod_store(db_path) as one, open_pod_store(db_path) as two:
        barrier = threading.Barrier(8, timeout=10)
        results: list[bool] = []
        lock = threading.Lock()

        def run(store: SqlitePodStore) -> None:
            barrier.wait()
            ok = store.spend_budget(
                "alice", "src", 0.3, 0.0, task_id="t", now=T0, cap_epsilon=1.0, cap_delta=None
            )
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=run, args=((one, two)[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert results.count(True) == 3
        assert one.budget_spent("alice", "src")[0] == pytest.approx(0.9)


# -- transactions cut short ------------------------------------------------------------


def mentions(parameters: Any, marker: str) -> bool:
    """Whether the parameters of one execute (or executemany) hold ``marker``."""
    rows = parameters if isinstance(parameters, list) else [parameters]
    return any(marker in (row.values() if isinstance(row, dict) else row) for row in rows)


def fail_on_insert_into(store: SqlitePodStore, table: str, marker: str | None = None) -> Any:
    """Make an INSERT into ``table`` (whose parameters hold ``marker``, if given) raise
    after it ran, inside its transaction."""

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith(f"INSERT INTO {table}") and (
            marker is None or mentions(parameters, marker)
        ):
            raise RuntimeError("disk on fire")

    sa.event.listen(store.engine, "after_cursor_execute", after)
    return after


def test_a_batch_that_fails_after_writing_leaves_nothing(store: SqlitePodStore) -> None:
    """When the database fails after the rows went in, the whole batch is rolled back."""
    store.mark_files_processed("h", "src", [FileVersion("/old", "h-old", 1.0)], T0)
    listener = fail_on_insert_into(store, "pod_processed_files", marker="/f3")
    batch = [FileVersion(f"/f{i}", f"h{i}", 1.0) for i in range(5)]
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.mark_files_processed("h", "src", batch, at(1))
    sa.event.remove(store.engine, "after_cursor_execute", listener)
    assert [f.path for f in store.processed_files("h", "src")] == ["/old"]
    assert store.new_files("h", "src", batch) == batch


def test_a_spend_that_fails_while_recording_is_not_counted(store: SqlitePodStore) -> None:
    """A spend whose insert fails leaves the ledger as it was, and the DB usable."""
    listener = fail_on_insert_into(store, "pod_budget_spends")
    with pytest.raises(RuntimeError):
        store.spend_budget(
            "alice", "src", 0.5, 0.0, task_id="t", now=T0, cap_epsilon=1.0, cap_delta=None
        )
    sa.event.remove(store.engine, "after_cursor_execute", listener)
    assert store.budget_spent("alice", "src") == (0.0, 0.0)
    assert store.spend_budget(
        "alice", "src", 1.0, 0.0, task_id="t", now=T0, cap_epsilon=1.0, cap_delta=None
    )


def test_racing_spends_with_a_slow_writer_never_overspend(store: SqlitePodStore) -> None:
    """Spends still serialise when each one lingers between its check and its insert."""

    def linger(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO pod_budget_spends"):
            time.sleep(0.02)  # widens the race window; not a synchronisation

    sa.event.listen(store.engine, "before_cursor_execute", linger)
    barrier = threading.Barrier(6, timeout=10)

    def run(_: int) -> bool:
        barrier.wait()
        return store.spend_budget(
            "alice", "src", 0.4, 0.0, task_id="t", now=T0, cap_epsilon=1.0, cap_delta=None
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(6)))
    assert results.count(True) == 2
    assert store.budget_spent("alice", "src")[0] == pytest.approx(0.8)


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    import sqlalchemy as sa
    from podium.pod.store import FileVersion, open_pod_store

    store = open_pod_store(sys.argv[1])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.mark_files_processed("h", "src", [FileVersion("/kept", "k", 1.0)], now)

    def crash(conn, cursor, statement, parameters, *args):
        rows = parameters if isinstance(parameters, list) else [parameters]
        if any("/f500" in row for row in rows):
            os._exit(17)  # the process dies with rows written, uncommitted

    sa.event.listen(store.engine, "after_cursor_execute", crash)
    files = [FileVersion(f"/f{i}", f"h{i}", 1.0) for i in range(1000)]
    store.mark_files_processed("h", "src", files, now)
    sys.exit(0)
    """
)


def test_a_process_that_dies_mid_write_leaves_nothing_half_written(db_path: Path) -> None:
    """A pod killed in the middle of a transaction leaves the DB as before it began."""
    result = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(db_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 17, result.stderr
    with open_pod_store(db_path) as store:
        assert [f.path for f in store.processed_files("h", "src")] == ["/kept"]
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
