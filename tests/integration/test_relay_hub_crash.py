"""A hub killed with SIGKILL in the middle of a 500 MiB body and started again.

``podium hub serve`` runs as a real process on a fixed loopback port over a SQLite data
folder. The pod (bob's census pod) sends a sealed body to the modeller (alice) with
:func:`send_body`; the modeller takes it with :func:`receive_body`. Once the hub has
stored about 40% of the body and the modeller has begun reading it, the hub is killed (no
chance to flush or say goodbye) and a new hub process is started on the same port and data
folder. Both connections reconnect by themselves; the body must then arrive whole and each
chunk must reach the application exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from bench._relay_peers import body_chunks, body_digest

from podium.core.crypto import SessionKey, SessionOpener, SessionSealer
from podium.core.messages import Envelope, MessageType, new_task_id, pod_mailbox, task_mailbox
from podium.hub.config import HubConfig
from podium.hub.services import HubServices
from podium.transport import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_WINDOW,
    Backoff,
    BodySummary,
    ConnectionOptions,
    WebSocketTransport,
    receive_body,
    send_body,
)
from tests.hub.conftest import FAST_PASSWORDS, PASSWORD
from tests.integration.test_hub_serve import _environ, _wait_ready

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
TOTAL = 500 * MIB
CHUNK = DEFAULT_CHUNK_BYTES
CHUNKS = -(-TOTAL // CHUNK)
SEED = 20260
#: The share of the body the hub has stored when it is killed.
KILL_AT = 0.4
#: Bounds the whole copy, restart included (it takes well under a minute here).
COPY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
MODELLER, OWNER, POD_NAME = "alice", "bob", "census"
POD = f"{OWNER}.{POD_NAME}"


def _options(*, inbox_size: int = 256) -> ConnectionOptions:
    """Quick reconnects: the restarted hub is back within a few seconds."""
    return ConnectionOptions(backoff=Backoff(initial=0.05, maximum=0.5), inbox_size=inbox_size)


def _seed(data_dir: Path) -> dict[str, str]:
    """Create the modeller and the pod's owner, each with an API key (the hub is not
    running yet); their keys by user."""
    services = HubServices.open(HubConfig(data_dir=data_dir, password_cost=FAST_PASSWORDS))
    keys: dict[str, str] = {}
    try:
        now = services.now()
        for user in (MODELLER, OWNER):
            services.accounts.create_user(user, PASSWORD, is_admin=False, now=now)
            keys[user] = services.accounts.create_api_key(user, "crash-test", now)[1]
    finally:
        services.close()
    return keys


def _free_port() -> int:
    """A loopback port nothing listens on now (both hub processes are given it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Hubs:
    """The hub processes of one test, one after the other on the same port and data."""

    env: dict[str, str]
    port: int
    data_dir: Path
    log: Path
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def frame_dir(self) -> Path:
        """Where the hub keeps large frames (a folder of its own, by option)."""
        return self.data_dir.parent / "frames"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start a hub and wait for its ready line (blocking)."""
        command = [sys.executable, "-m", "podium", "hub", "serve"]
        options = ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        options += ["--relay-frame-dir", str(self.frame_dir)]
        with self.log.open("a") as stderr:
            process = subprocess.Popen(
                [*command, *options],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=self.env,
            )
        self.processes.append(process)
        assert _wait_ready(process) == self.url

    async def crash_and_restart(self) -> None:
        """SIGKILL the running hub, wait for it to be gone, start a new one."""
        running = self.processes[-1]
        running.send_signal(signal.SIGKILL)
        await asyncio.to_thread(running.wait, STOP_TIMEOUT_S)
        await asyncio.to_thread(self.start)

    def stop(self) -> None:
        """Stop whatever still runs: Ctrl-C (SIGINT) first, SIGKILL if that hangs."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()

    def stderr(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def hubs_on(tmp_path: Path) -> Iterator[Hubs]:
    """The hubs of one test (their data in ``tmp_path``), stopped afterwards whatever
    happened."""
    data_dir = tmp_path / "hub"
    hubs = Hubs(_environ(tmp_path / "home"), _free_port(), data_dir, tmp_path / "hub.log")
    try:
        yield hubs
    finally:
        hubs.stop()


@dataclass
class Progress:
    """Plaintext bytes the hub receipted to the pod and the modeller handled, so far."""

    stored: int = 0
    received: int = 0

    def mid_transfer(self) -> bool:
        """The hub holds ``KILL_AT`` of the body and the modeller has begun reading it."""
        return self.stored >= KILL_AT * TOTAL and self.received > 0


@dataclass
class CopyOutcome:
    """What both ends reported, and how far each was when the hub was killed."""

    sent: BodySummary
    received: BodySummary
    at_kill: Progress


def _job_request(task_id: str) -> Envelope:
    """The modeller's request that makes it and the pod participants of ``task_id``."""
    return Envelope(
        type=MessageType.JOB_REQUEST,
        task_id=task_id,
        sender=MODELLER,
        recipient=pod_mailbox(OWNER, POD_NAME),
        seq=0,
        sent_at=time.time(),
        body=b"sealed request",
    )


async def _copy_through_a_crash(hubs: Hubs, keys: dict[str, str], task_id: str) -> CopyOutcome:
    """Send the body pod -> modeller, killing and restarting the hub at ``KILL_AT``."""
    key = SessionKey.generate()
    inbox = task_mailbox(task_id, MODELLER)
    expected = body_chunks(TOTAL, CHUNK, SEED)
    progress = Progress()
    crash = asyncio.Event()
    at_kill: list[Progress] = []

    def write(plain: bytes) -> None:
        # each chunk reaches the application once and in order: it is the next one made
        chunk = progress.received // CHUNK
        assert plain == next(expected), f"chunk {chunk} is not the one expected"
        progress.received += len(plain)
        if progress.mid_transfer():
            crash.set()

    def stored(size: int) -> None:
        progress.stored += size
        if progress.mid_transfer():
            crash.set()

    async def supervise() -> None:
        await crash.wait()
        at_kill.append(replace(progress))  # no await until the signal is sent
        await hubs.crash_and_restart()

    modeller = WebSocketTransport(hubs.url, keys[MODELLER])
    pod = WebSocketTransport(hubs.url, keys[OWNER])
    async with (
        # a small inbox keeps the 4 MiB chunks waiting here few
        modeller.connect([inbox], options=_options(inbox_size=8)) as me,
        pod.connect([task_mailbox(task_id, POD)], options=_options()) as them,
    ):
        await me.send(_job_request(task_id))
        async with asyncio.TaskGroup() as group:
            group.create_task(supervise())
            receiving = group.create_task(receive_body(me, SessionOpener(key, task_id, POD), write))
            sending = group.create_task(
                send_body(
                    them,
                    SessionSealer(key, task_id, POD),
                    recipient=inbox,
                    chunks=body_chunks(TOTAL, CHUNK, SEED),
                    chunk_bytes=CHUNK,
                    window=DEFAULT_WINDOW,
                    progress=stored,
                )
            )
    return CopyOutcome(sending.result(), receiving.result(), at_kill[0])


def _messages_in(data_dir: Path, mailbox: str) -> tuple[int, int, int]:
    """Rows, distinct seqs and unacknowledged rows the hub's database holds for
    ``mailbox`` (read after the hub stopped)."""
    query = (
        "SELECT count(*), count(DISTINCT seq), count(*) - count(acked_at) "
        "FROM hub_relay_messages WHERE mailbox = ?"
    )
    with contextlib.closing(sqlite3.connect(data_dir / "hub.db")) as db:
        rows, seqs, pending = db.execute(query, (mailbox,)).fetchone()
    return int(rows), int(seqs), int(pending)


async def test_body_survives_a_hub_killed_mid_transfer(tmp_path: Path) -> None:
    """SIGKILL the hub with 40% of a 500 MiB body stored and start it again on the same
    port and data: the body arrives intact, every chunk handed over once, none pending."""
    expected_sha256 = await asyncio.to_thread(body_digest, TOTAL, CHUNK, SEED)
    task_id = new_task_id()
    with hubs_on(tmp_path) as hubs:
        keys = _seed(hubs.data_dir)
        await asyncio.to_thread(hubs.start)
        try:
            async with asyncio.timeout(COPY_TIMEOUT_S):
                outcome = await _copy_through_a_crash(hubs, keys, task_id)
        except BaseException:
            print(f"hub stderr:\n{hubs.stderr()}", file=sys.stderr)
            raise
    first, second = hubs.processes
    assert first.returncode == -signal.SIGKILL, "the first hub was killed"
    assert second.pid != first.pid
    assert second.returncode == 0, hubs.stderr()
    assert "Traceback" not in hubs.stderr()
    # the kill came in the middle: neither end was done
    assert 0 < outcome.at_kill.received < TOTAL
    assert KILL_AT * TOTAL <= outcome.at_kill.stored < TOTAL
    assert outcome.sent == outcome.received == BodySummary(TOTAL, CHUNKS, expected_sha256)
    # the hub stored each chunk once and the modeller acknowledged every one
    assert _messages_in(hubs.data_dir, task_mailbox(task_id, MODELLER)) == (CHUNKS, CHUNKS, 0)
    # acknowledged frames' files are gone; at most the frames in flight at the kill are
    # left as orphans (written, row never committed) for housekeeping to sweep
    assert not (hubs.data_dir / "relay-frames").exists()  # --relay-frame-dir was used
    assert len(list(hubs.frame_dir.iterdir())) <= DEFAULT_WINDOW
