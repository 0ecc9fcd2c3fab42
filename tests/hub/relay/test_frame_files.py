"""Large relay frames kept in files beside the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium.hub.config import HubConfig, RelaySettings
from podium.hub.relay import SqlMailboxStore
from podium.hub.relay.frame_files import FrameFiles
from podium.hub.services import HubServices
from podium.hub.store import _tables as t
from podium.hub.store.base import StoreError
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import upgrade_to_head
from tests.hub.store.conftest import SQL_KINDS, T0, at, database_url

TASK = "task/t1/modeller"
BIG = 1000


@pytest.fixture(params=SQL_KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    made = create_hub_engine(database_url(request.param, request, tmp_path))
    try:
        upgrade_to_head(made)
        yield made
    finally:
        made.dispose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "frames"


@pytest.fixture
def store(engine: sa.Engine, folder: Path) -> SqlMailboxStore:
    return SqlMailboxStore(engine, frame_dir=folder, file_threshold=BIG)


def put(store: SqlMailboxStore, seq: int, frame: bytes) -> int:
    stored = store.append(TASK, sender="pod", task_id="t1", seq=seq, frame=frame, now=T0)
    return stored.message_id


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def file_column(engine: sa.Engine) -> list[str | None]:
    c = t.relay_messages.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(c.frame_file).order_by(c.message_id)).scalars())


def test_only_frames_at_the_threshold_go_to_files(
    store: SqlMailboxStore, engine: sa.Engine, folder: Path
) -> None:
    small, big = b"s" * (BIG - 1), os.urandom(BIG)
    put(store, 0, small)
    put(store, 1, big)
    assert [m.frame for m in store.pending(TASK)] == [small, big]
    names = file_column(engine)
    assert names[0] is None
    assert names[1] is not None
    assert files(folder) == [names[1]]
    assert (folder / names[1]).read_bytes() == big


def test_files_are_private(store: SqlMailboxStore, folder: Path) -> None:
    put(store, 0, os.urandom(BIG))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (name,) = files(folder)
    assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600


def test_ack_deletes_the_file(store: SqlMailboxStore, folder: Path) -> None:
    first = put(store, 0, os.urandom(BIG))
    put(store, 1, os.urandom(BIG))
    assert store.ack(TASK, [first], at(1)) == 1
    assert len(files(folder)) == 1
    assert store.ack(TASK, [first], at(2)) == 0  # idempotent, nothing else touched
    assert len(files(folder)) == 1


def test_a_duplicate_append_leaves_no_second_file(store: SqlMailboxStore, folder: Path) -> None:
    frame = os.urandom(BIG)
    first = put(store, 0, frame)
    again = store.append(TASK, sender="pod", task_id="t1", seq=0, frame=frame, now=at(1))
    assert again.message_id == first
    assert again.frame == frame
    assert len(files(folder)) == 1


def test_a_duplicate_of_an_acknowledged_frame_comes_back_empty_and_acked(
    store: SqlMailboxStore, folder: Path
) -> None:
    frame = os.urandom(BIG)
    first = put(store, 0, frame)
    store.ack(TASK, [first], at(1))
    again = store.append(TASK, sender="pod", task_id="t1", seq=0, frame=frame, now=at(2))
    assert (again.message_id, again.frame, again.acked_at) == (first, b"", at(1))
    assert files(folder) == []


def test_sweep_deletes_old_orphans_only(store: SqlMailboxStore, folder: Path) -> None:
    put(store, 0, os.urandom(BIG))
    (kept,) = files(folder)
    orphans = FrameFiles(folder)
    old_orphan = orphans.write(b"left by a hub that died before its row")
    young_orphan = orphans.write(b"being written right now")
    partial = folder / "abc.frame.partial"
    partial.write_bytes(b"half")
    unrelated = folder / "notes.txt"
    unrelated.write_text("not ours")
    an_hour_ago = time.time() - 3600
    for name in (kept, old_orphan, partial.name, unrelated.name):
        os.utime(folder / name, (an_hour_ago, an_hour_ago))
    assert store.sweep_files(timedelta(minutes=30)) == 2
    assert files(folder) == sorted([kept, young_orphan, unrelated.name])


def test_a_lost_file_is_dropped_and_logged_not_blocking(
    store: SqlMailboxStore, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(store, 0, os.urandom(BIG))
    later = os.urandom(BIG)
    put(store, 1, later)
    (folder / file_name_of(store, 0)).unlink()
    restarted = SqlMailboxStore(store.engine, frame_dir=folder, file_threshold=BIG)
    with caplog.at_level(logging.ERROR, logger="podium.hub.relay"):
        pending = restarted.pending(TASK)
    assert [m.seq for m in pending] == [1]
    assert pending[0].frame == later
    assert "lost its frame file" in caplog.text
    assert restarted.count(TASK) == 1


def test_recent_frames_are_served_from_memory_within_a_bound(folder: Path) -> None:
    """The newest frames (up to cache_bytes) are read without touching their files."""
    frames = FrameFiles(folder, cache_bytes=10)
    first = frames.write(b"12345678")
    (folder / first).unlink()
    assert frames.read(first) == b"12345678"  # from memory
    second = frames.write(b"abcdefgh")  # pushes the first out
    assert frames.read(first) is None
    too_big = frames.write(b"x" * 11)  # never cached
    (folder / too_big).unlink()
    assert frames.read(too_big) is None
    frames.delete([second])
    assert frames.read(second) is None


def file_name_of(store: SqlMailboxStore, seq: int) -> str:
    c = t.relay_messages.c
    with store.engine.connect() as conn:
        name = conn.execute(sa.select(c.frame_file).where(c.seq == seq)).scalar_one()
    assert isinstance(name, str)
    return name


def test_a_store_without_a_frame_folder_says_so(store: SqlMailboxStore, engine: sa.Engine) -> None:
    put(store, 0, os.urandom(BIG))
    with pytest.raises(StoreError, match="no frame folder"):
        SqlMailboxStore(engine).pending(TASK)


def test_a_store_without_files_sweeps_nothing(engine: sa.Engine) -> None:
    assert SqlMailboxStore(engine).sweep_files(timedelta(0)) == 0


def test_file_threshold_must_be_positive(engine: sa.Engine, folder: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqlMailboxStore(engine, frame_dir=folder, file_threshold=0)


def test_frame_file_names_cannot_leave_the_folder(folder: Path) -> None:
    frames = FrameFiles(folder)
    for bad in ("../hub.db", "x/y.frame", ".frame", "hub.db"):
        with pytest.raises(ValueError, match="not a frame file name"):
            frames.read(bad)
    assert frames.read("0" * 32 + ".frame") is None
    assert frames.sweep(set(), 0) == 0  # the folder does not exist yet


def test_hub_config_places_frame_files(tmp_path: Path) -> None:
    """SQLite: under the data folder by default; PostgreSQL: in the database unless a
    (shared) folder is named."""
    assert HubConfig(data_dir=tmp_path).relay_frame_dir == tmp_path / "relay-frames"
    postgres = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert HubConfig(data_dir=tmp_path, db_url=postgres).relay_frame_dir is None
    shared = tmp_path / "shared"
    named = HubConfig(data_dir=tmp_path, db_url=postgres, relay=RelaySettings(frame_dir=shared))
    assert named.relay_frame_dir == shared


def test_an_opened_hub_keeps_large_frames_in_files(tmp_path: Path) -> None:
    config = HubConfig(data_dir=tmp_path / "hub")
    services = HubServices.open(config)
    try:
        frame = os.urandom(config.relay.file_threshold)
        services.mailboxes.append(TASK, sender="pod", task_id="t1", seq=0, frame=frame, now=T0)
        assert services.mailboxes.pending(TASK)[0].frame == frame
    finally:
        services.close()
    assert config.relay_frame_dir is not None
    assert len(files(config.relay_frame_dir)) == 1
