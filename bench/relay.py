"""Benchmark ``relay``: round trips, message rate and a bulk body through the hub's relay.

The hub runs in a child process (``bench._hub_process``, as for ``bench.heartbeats``),
seeded with a modeller and a pod owner, each with an API key. Clients are raw
``websockets`` connections speaking the frame protocol of :mod:`podium.core.messages`.

1. **Round trip**: the modeller sends a small ``JOB_REQUEST`` to ``pod/<owner>/<pod>``;
   the pod, on its delivery, answers ``JOB_ACCEPT`` on ``task/<task>/<modeller>``, then
   acknowledges; the modeller's clock stops at that delivery, and it acknowledges before
   the next request. Sequential; p50 and p99 after a short warm-up. Baseline in the same
   run: the same request frame echoed by a direct one-hop WebSocket server in this
   process (no hub). Target: p50 under 5 ms.
2. **Message rate**: the pod sends small envelopes to the modeller's task mailbox, at most
   ``in_flight`` unreceipted; the modeller acknowledges them in batches. Messages per
   second from the first send to the last delivery, on SQLite and on PostgreSQL
   (``PODIUM_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/
   test``, in a schema of its own, dropped afterwards; skipped with a note if unreachable).
3. **Bulk**: a body (1 GiB; quick 64 MiB) pod -> modeller in 4 MiB chunks, sealed with
   AES-256-GCM, as ``MODEL_PARAMETERS`` envelopes, the modeller opening each and checking
   a CRC-32 of the whole body (:mod:`bench._relay_peers`); baselines in the same run: a
   raw loopback TCP copy and a direct one-hop WebSocket copy of the same bytes (plain
   copies: their receivers count the bytes and check nothing). Sender and receiver are child
   processes of their own; their RSS and the hub's are sampled (``psutil``) and reported
   as the peak and the peak above idle (just before the copy starts). Targets: at least
   10% of raw TCP and 40% of one-hop WebSocket throughput; each process under 256 MiB
   above idle. MB are 10**6 bytes.

The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue as queue_module
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from bench._relay_peers import (
    WS_MAX_SIZE,
    Parties,
    PeerSpec,
    body_checksum,
    envelope_frame,
    hub_connect,
    peer_main,
    read_hub_frame,
    request_task,
)
from bench.heartbeats import (
    DEFAULT_POSTGRES_URL,
    POSTGRES_ENV,
    SEED_PASSWORDS,
    hub_process,
    percentile,
    postgres_schema,
)
from podium.core.crypto import SessionKey
from podium.core.messages import (
    Ack,
    Deliver,
    MessageType,
    Receipt,
    Subscribe,
    encode_control,
    new_task_id,
    pod_mailbox,
    task_mailbox,
)
from podium.hub.config import HubConfig
from podium.hub.services import HubServices

PARTIES = Parties(modeller="modeller", owner="owner", pod="pod1")
SMALL_BODY = bytes(range(100))
TARGET_P50_MS = 5.0
TARGET_RAW_TCP = 0.10
TARGET_ONE_HOP_WS = 0.40
TARGET_RSS_MIB = 256.0
MIB = 1024 * 1024
ACK_BATCH = 16
CHILD_TIMEOUT_S = 600.0
SAMPLE_S = 0.02
MODES = ("tcp", "ws", "hub")
MODE_NAMES = {"tcp": "raw TCP", "ws": "one-hop WebSocket", "hub": "hub, sealed"}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much of each part to run."""

    round_trips: int
    warmup: int
    messages: int
    in_flight: int
    bulk_bytes: int
    window: int


FULL = Sizes(
    round_trips=2000, warmup=100, messages=10_000, in_flight=64, bulk_bytes=1 << 30, window=8
)
QUICK = Sizes(
    round_trips=200, warmup=20, messages=1000, in_flight=64, bulk_bytes=64 * MIB, window=8
)


# -- figures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latencies:
    """Round-trip times of one path, in milliseconds."""

    name: str
    ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        """Median."""
        return percentile(self.ms, 50)

    @property
    def p99(self) -> float:
        """99th percentile."""
        return percentile(self.ms, 99)


@dataclass(frozen=True, slots=True)
class Rate:
    """Messages through one hub in ``wall_s`` seconds."""

    backend: str
    messages: int
    wall_s: float

    @property
    def per_s(self) -> float:
        """Messages per second."""
        return self.messages / self.wall_s


@dataclass(frozen=True, slots=True)
class Copy:
    """One bulk copy: bytes, seconds, and each end's peak and idle RSS in bytes."""

    mode: str
    nbytes: int
    seconds: float
    peak_rss: Mapping[str, int] = field(default_factory=dict)
    idle_rss: Mapping[str, int] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB (10**6 bytes) per second."""
        return self.nbytes / self.seconds / 1e6

    def above_idle_mib(self, process: str) -> float:
        """How far ``process``'s peak RSS rose above its idle RSS, in MiB."""
        return (self.peak_rss[process] - self.idle_rss[process]) / MIB


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one run measured."""

    round_trips: tuple[Latencies, Latencies]  # hub, then one-hop baseline
    rates: tuple[Rate, ...]
    copies: Mapping[str, Copy]
    skipped: tuple[str, ...] = ()

    def ratio(self, mode: str) -> float:
        """The hub's bulk throughput over that of baseline ``mode``."""
        return self.copies["hub"].mb_per_s / self.copies[mode].mb_per_s

    @property
    def peak_rss_mib(self) -> float:
        """The largest peak RSS of any process of the hub copy, in MiB."""
        return max(self.copies["hub"].peak_rss.values()) / MIB

    @property
    def peak_above_idle_mib(self) -> float:
        """The largest rise above idle of any process of the hub copy, in MiB."""
        hub = self.copies["hub"]
        return max(hub.above_idle_mib(name) for name in hub.peak_rss)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def format_tables(report: Report) -> str:
    """The three parts as fixed-width text tables."""
    hub_rtt, base_rtt = report.round_trips
    lines = [
        f"{'round trip':<36}{'n':>7}{'p50_ms':>9}{'p99_ms':>9}{'target':>8}",
        f"{hub_rtt.name:<36}{len(hub_rtt.ms):>7,}{hub_rtt.p50:>9.2f}{hub_rtt.p99:>9.2f}"
        f"{_verdict(hub_rtt.p50 < TARGET_P50_MS):>8}",
        f"{base_rtt.name:<36}{len(base_rtt.ms):>7,}{base_rtt.p50:>9.2f}{base_rtt.p99:>9.2f}"
        f"{'-':>8}",
        "",
        f"{'message rate':<36}{'n':>7}{'msg/s':>9}",
    ]
    lines += [f"{r.backend:<36}{r.messages:>7,}{r.per_s:>9.0f}" for r in report.rates]
    lines += ["", f"{'bulk':<20}{'MiB':>7}{'MB/s':>9}{'hub_x':>7}"
              f"{'sender_MiB':>12}{'receiver_MiB':>14}{'hub_MiB':>9}"]  # fmt: skip
    hub = report.copies["hub"]
    for mode in MODES:
        copy = report.copies[mode]
        ratio = hub.mb_per_s / copy.mb_per_s
        peaks = [copy.peak_rss.get(name) for name in ("sender", "receiver", "hub")]
        cells = "".join(
            f"{'-' if peak is None else f'{peak / MIB:.0f}':>{width}}"
            for peak, width in zip(peaks, (12, 14, 9), strict=True)
        )
        lines.append(
            f"{MODE_NAMES[mode]:<20}{copy.nbytes / MIB:>7.0f}{copy.mb_per_s:>9.0f}"
            f"{ratio:>7.2f}{cells}"
        )
    rises = ", ".join(f"{name} {hub.above_idle_mib(name):.0f}" for name in sorted(hub.peak_rss))
    lines.append(f"hub copy, peak RSS above idle (MiB): {rises}")
    return "\n".join(lines)


def summary(report: Report, sizes: Sizes) -> dict[str, object]:
    """The JSON line."""
    hub_rtt, base_rtt = report.round_trips
    hub = report.copies["hub"]
    worst_rate = min(r.per_s for r in report.rates)
    met = (
        hub_rtt.p50 < TARGET_P50_MS
        and report.ratio("tcp") >= TARGET_RAW_TCP
        and report.ratio("ws") >= TARGET_ONE_HOP_WS
        and report.peak_above_idle_mib < TARGET_RSS_MIB
    )
    figures: dict[str, object] = {
        "benchmark": "relay",
        "round_trips": len(hub_rtt.ms),
        "rtt_p50_ms": round(hub_rtt.p50, 3),
        "rtt_p99_ms": round(hub_rtt.p99, 3),
        "one_hop_rtt_p50_ms": round(base_rtt.p50, 3),
        "one_hop_rtt_p99_ms": round(base_rtt.p99, 3),
        "msgs_per_s": round(worst_rate, 1),
        "bulk_bytes": hub.nbytes,
        "hub_mb_per_s": round(hub.mb_per_s, 1),
        "raw_tcp_mb_per_s": round(report.copies["tcp"].mb_per_s, 1),
        "one_hop_ws_mb_per_s": round(report.copies["ws"].mb_per_s, 1),
        "ratio_raw_tcp": round(report.ratio("tcp"), 4),
        "ratio_one_hop_ws": round(report.ratio("ws"), 4),
        "peak_rss_mib": round(report.peak_rss_mib, 1),
        "peak_rss_above_idle_mib": round(report.peak_above_idle_mib, 1),
        "skipped": list(report.skipped),
        "target_met": met if sizes.bulk_bytes >= FULL.bulk_bytes else None,
    }
    for rate in report.rates:
        figures[f"{rate.backend}_msgs_per_s"] = round(rate.per_s, 1)
    for name, peak in hub.peak_rss.items():
        figures[f"{name}_peak_rss_mib"] = round(peak / MIB, 1)
        figures[f"{name}_above_idle_mib"] = round(hub.above_idle_mib(name), 1)
    return figures


# -- the hub ---------------------------------------------------------------------------


def seed(config: HubConfig) -> dict[str, str]:
    """Create the modeller and the pod's owner, each with an API key; their keys."""
    services = HubServices.open(config)
    keys: dict[str, str] = {}
    try:
        now = services.now()
        for user in (PARTIES.modeller, PARTIES.owner):
            password = os.urandom(12).hex()
            services.accounts.create_user(user, password, is_admin=False, now=now)
            keys[user] = services.accounts.create_api_key(user, "relay-bench", now)[1]
    finally:
        services.close()
    return keys


@contextmanager
def relay_hub(db_url: str | None) -> Iterator[tuple[int, str, dict[str, str]]]:
    """A seeded hub in a child process (its files in a temporary folder): its pid, relay
    URL and the users' API keys."""
    with tempfile.TemporaryDirectory(prefix="podium-bench-relay-") as tmp:
        data_dir = Path(tmp) / "hub"
        config = HubConfig(data_dir=data_dir, db_url=db_url, password_cost=SEED_PASSWORDS)
        keys = seed(config)
        with hub_process(config.data_dir, db_url) as (pid, base_url):
            yield pid, base_url.replace("http://", "ws://", 1) + "/relay", keys


# -- 1. round trips --------------------------------------------------------------------


def _request(task_id: str, seq: int) -> bytes:
    recipient = pod_mailbox(PARTIES.owner, PARTIES.pod)
    kind = MessageType.JOB_REQUEST
    return envelope_frame(kind, task_id, PARTIES.modeller, recipient, seq, SMALL_BODY)


async def _pod_answers(ws: ClientConnection, task_id: str) -> None:
    """The pod: answer each delivered request on the modeller's task mailbox, then ack."""
    recipient = task_mailbox(task_id, PARTIES.modeller)
    while True:
        frame = read_hub_frame(await ws.recv(decode=False))
        if isinstance(frame, Deliver):
            seq = frame.envelope.seq
            kind = MessageType.JOB_ACCEPT
            answer = envelope_frame(kind, task_id, PARTIES.pod_party, recipient, seq, SMALL_BODY)
            await ws.send(answer)
            await ws.send(encode_control(Ack((frame.id,))))


async def _await_delivery(ws: ClientConnection, seq: int) -> Deliver:
    while True:
        frame = read_hub_frame(await ws.recv(decode=False))
        if isinstance(frame, Deliver) and frame.envelope.seq == seq:
            return frame


async def hub_round_trips(url: str, keys: Mapping[str, str], sizes: Sizes) -> list[float]:
    """Sequential round trips modeller -> pod -> modeller through the hub, in ms."""
    task_id = new_task_id()
    latencies: list[float] = []
    async with (
        hub_connect(url, keys[PARTIES.modeller]) as modeller,
        hub_connect(url, keys[PARTIES.owner]) as pod,
    ):
        await pod.send(encode_control(Subscribe((pod_mailbox(PARTIES.owner, PARTIES.pod),))))
        inbox = task_mailbox(task_id, PARTIES.modeller)
        await modeller.send(encode_control(Subscribe((inbox,))))
        answering = asyncio.create_task(_pod_answers(pod, task_id))
        try:
            for seq in range(sizes.warmup + sizes.round_trips):
                began = time.perf_counter()
                await modeller.send(_request(task_id, seq))
                frame = await asyncio.wait_for(_await_delivery(modeller, seq), 30)
                if seq >= sizes.warmup:
                    latencies.append((time.perf_counter() - began) * 1000)
                await modeller.send(encode_control(Ack((frame.id,))))
        finally:
            answering.cancel()
    return latencies


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def direct_round_trips(sizes: Sizes) -> list[float]:
    """The baseline: the same request frame echoed by a one-hop WebSocket server, in ms."""
    task_id = new_task_id()
    latencies: list[float] = []
    async with serve(_echo, "127.0.0.1", 0, compression=None, max_size=WS_MAX_SIZE) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            for seq in range(sizes.warmup + sizes.round_trips):
                began = time.perf_counter()
                await ws.send(_request(task_id, seq))
                await ws.recv(decode=False)
                if seq >= sizes.warmup:
                    latencies.append((time.perf_counter() - began) * 1000)
    return latencies


# -- 2. message rate -------------------------------------------------------------------


async def _receive_all(ws: ClientConnection, count: int) -> float:
    """Acknowledge deliveries in batches until ``count`` distinct ones came; when."""
    seen: set[int] = set()
    pending: list[int] = []
    while len(seen) < count:
        frame = read_hub_frame(await ws.recv(decode=False))
        if isinstance(frame, Deliver):
            seen.add(frame.envelope.seq)
            pending.append(frame.id)
            if len(pending) >= ACK_BATCH or len(seen) == count:
                await ws.send(encode_control(Ack(tuple(pending))))
                pending.clear()
    return time.perf_counter()


async def message_rate(url: str, keys: Mapping[str, str], sizes: Sizes) -> float:
    """Seconds to move ``sizes.messages`` small messages pod -> modeller."""
    task_id = new_task_id()
    sender = PARTIES.pod_party
    recipient = task_mailbox(task_id, PARTIES.modeller)
    room = asyncio.Semaphore(sizes.in_flight)

    async def receipts(ws: ClientConnection) -> None:
        try:
            for _ in range(sizes.messages):
                while not isinstance(read_hub_frame(await ws.recv(decode=False)), Receipt):
                    pass
                room.release()
        except BaseException:
            room.release()  # wake the sender, which then raises this
            raise

    async with (
        hub_connect(url, keys[PARTIES.modeller]) as modeller,
        hub_connect(url, keys[PARTIES.owner]) as pod,
    ):
        await request_task(modeller, PARTIES, task_id)
        await modeller.send(encode_control(Subscribe((recipient,))))
        receiving = asyncio.create_task(_receive_all(modeller, sizes.messages))
        reading = asyncio.create_task(receipts(pod))
        began = time.perf_counter()
        for seq in range(sizes.messages):
            await room.acquire()
            if reading.done():  # failed early: raise its error
                await reading
            kind = MessageType.TRAINING_UPDATE
            await pod.send(envelope_frame(kind, task_id, sender, recipient, seq, SMALL_BODY))
        ended = await asyncio.wait_for(receiving, 120)
        await asyncio.wait_for(reading, 30)
    return ended - began


# -- 3. bulk ---------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of named processes on a thread; keeps each one's peak."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def now(self) -> dict[str, int]:
        """Each process's RSS now (0 once gone)."""
        return {name: self._rss(proc) for name, proc in self._processes.items()}

    @staticmethod
    def _rss(process: psutil.Process) -> int:
        try:
            return int(process.memory_info().rss)
        except psutil.Error:
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, rss in self.now().items():
                self.peak[name] = max(self.peak[name], rss)
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _next(reports: Any, kind: str) -> tuple[str, dict[str, Any]]:
    try:
        got, role, figures = reports.get(timeout=CHILD_TIMEOUT_S)
    except queue_module.Empty:
        raise RuntimeError("a bulk peer did not report in time") from None
    if got == "error":
        raise RuntimeError(f"the bulk {role} failed:\n{figures['traceback']}")
    if got != kind:
        raise RuntimeError(f"expected {kind!r} from a bulk peer, got {got!r} from the {role}")
    return role, figures


def bulk_copy(
    spec: PeerSpec, hub_pid: int | None, expected: str, keys: Mapping[str, str] | None = None
) -> Copy:
    """Copy the body with ``spec.mode`` between two child processes (each role with its
    API key in ``keys``, for the hub); check its digest."""
    keys = keys or {}
    ctx = multiprocessing.get_context("spawn")
    reports = ctx.Queue()
    go = ctx.Event()
    children = []
    try:
        spec = replace(spec, api_key=keys.get("receiver", ""))
        receiver = ctx.Process(target=peer_main, args=("receiver", spec, reports, go))
        receiver.start()
        children.append(receiver)
        port = _next(reports, "ready")[1].get("port", 0)
        spec = replace(spec, port=port, api_key=keys.get("sender", ""))
        sender = ctx.Process(target=peer_main, args=("sender", spec, reports, go))
        sender.start()
        children.append(sender)
        _next(reports, "ready")
        pids = {"sender": sender.pid, "receiver": receiver.pid}
        if hub_pid is not None:
            pids["hub"] = hub_pid
        with RssSampler({name: pid for name, pid in pids.items() if pid is not None}) as rss:
            time.sleep(0.2)
            idle = rss.now()
            go.set()
            done = dict(_next(reports, "done") for _ in range(2))
        for child in children:
            child.join(30)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
    if done["receiver"]["bytes"] != spec.total:
        raise RuntimeError(f"the {spec.mode} copy brought {done['receiver']['bytes']} bytes")
    if spec.digest and done["receiver"]["digest"] != expected:
        raise RuntimeError(f"the {spec.mode} copy arrived changed: its CRC-32 differs")
    seconds = done["receiver"]["finished"] - done["sender"]["started"]
    return Copy(spec.mode, spec.total, seconds, rss.peak, idle)


def bulk_copies(url: str, keys: Mapping[str, str], hub_pid: int, sizes: Sizes) -> dict[str, Copy]:
    """The hub copy and both baselines, of the same body."""
    base = PeerSpec(mode="tcp", total=sizes.bulk_bytes, seed=20261122)
    print(f"bulk: CRC-32 of the {sizes.bulk_bytes / MIB:,.0f} MiB body ...", flush=True)
    expected = body_checksum(base.total, base.chunk, base.seed)
    copies: dict[str, Copy] = {}
    for mode in MODES:
        print(f"bulk: {MODE_NAMES[mode]} ...", flush=True)
        spec = replace(base, mode=mode)
        if mode == "hub":
            spec = replace(
                spec,
                hub_url=url,
                parties=PARTIES,
                task_id=new_task_id(),
                session_key=SessionKey.generate().secret,
                window=sizes.window,
            )
            # the receiver is the modeller, the sender the pod's owner
            role_keys = {"receiver": keys[PARTIES.modeller], "sender": keys[PARTIES.owner]}
            copies[mode] = bulk_copy(spec, hub_pid, expected, role_keys)
        else:  # a plain copy: the receiver counts the bytes, hashes nothing
            copies[mode] = bulk_copy(replace(spec, digest=False), None, expected)
    return copies


# -- the run ---------------------------------------------------------------------------


def _rate_on(backend: str, db_url: str | None, sizes: Sizes) -> Rate:
    with relay_hub(db_url) as (_, url, keys):
        print(f"{backend}: {sizes.messages:,} messages ...", flush=True)
        seconds = asyncio.run(message_rate(url, keys, sizes))
    return Rate(backend, sizes.messages, seconds)


def measure(sizes: Sizes) -> Report:
    """Run the three parts (PostgreSQL for the message rate only)."""
    rates: list[Rate] = []
    skipped: list[str] = []
    with relay_hub(None) as (pid, url, keys):
        print(f"sqlite: {sizes.round_trips:,} round trips ...", flush=True)
        hub_ms = asyncio.run(hub_round_trips(url, keys, sizes))
        direct_ms = asyncio.run(direct_round_trips(sizes))
        print(f"sqlite: {sizes.messages:,} messages ...", flush=True)
        rates.append(Rate("sqlite", sizes.messages, asyncio.run(message_rate(url, keys, sizes))))
        copies = bulk_copies(url, keys, pid, sizes)
    with postgres_schema(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL) as pg_url:
        if pg_url is None:
            skipped.append("postgresql")
        else:
            rates.append(_rate_on("postgresql", pg_url, sizes))
    round_trips = (
        Latencies("hub: modeller -> pod -> modeller", tuple(hub_ms)),
        Latencies("one-hop WebSocket echo (baseline)", tuple(direct_ms)),
    )
    return Report(round_trips, tuple(rates), copies, tuple(skipped))


def run(*, quick: bool) -> int:
    """Run the benchmark and print its tables and JSON line."""
    sizes = QUICK if quick else FULL
    report = measure(sizes)
    print()
    print(format_tables(report))
    print(
        f"\nround trips sequential after {sizes.warmup} warm-up; message rate: "
        f"{sizes.in_flight} in flight, acks every {ACK_BATCH}; bulk: 4 MiB chunks, "
        f"{sizes.window} unreceipted at most through the hub; hub_x: hub MB/s over that row's. "
        f"Targets: p50 < {TARGET_P50_MS:.0f} ms, hub >= {TARGET_RAW_TCP:.0%} of raw TCP and "
        f">= {TARGET_ONE_HOP_WS:.0%} of one-hop WebSocket, RSS < {TARGET_RSS_MIB:.0f} MiB "
        "above idle per process."
    )
    if quick:
        print("(the bulk targets are for a 1 GiB body: a quick run only shows that it works)")
    print(json.dumps(summary(report, sizes)))
    return 0


if __name__ == "__main__":
    raise SystemExit("usage: python -m bench relay [--quick]")
