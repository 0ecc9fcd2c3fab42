"""Benchmark ``heartbeats``: 1,000 pods heartbeating every 10 s against one hub.

The hub runs in a child process (``bench._hub_process``: ``HubServices.open`` and
``create_app(services, web=False)`` under uvicorn on loopback), so its CPU time is its own:
``psutil`` reads it before and after the measurement window. This process seeds the
database first (one user, one API key, the pods) and then plays the pods with asyncio and
one ``httpx.AsyncClient`` (keep-alive, a pool as large as the number of pods): each pod
sends ``POST /api/v1/pods/{owner}/{name}/heartbeat`` with ``Authorization: Bearer <API
key>`` every 10 s, at a random (seeded) phase, through a warm-up and then the measurement
window. Sends follow the schedule whatever the answers (an open loop); a latency is
measured from the send to the whole answer, on the client, so it includes the client's
own share.

Baseline, in the same run and against the same hub process: the same load as
``GET /api/v1/health`` (no authentication, no database), so the ratios say what a
heartbeat costs over a no-op request on this machine.

Backends: SQLite (a file in a temporary folder) and PostgreSQL at
``PODIUM_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
in a schema of its own, dropped afterwards; PostgreSQL is skipped, with a note, when it is
not reachable.

Targets (issue 3): the hub under 10% of one core, p99 heartbeat latency under 50 ms.
``--quick``: 200 pods (still every 10 s), a 5 s warm-up and a 15 s window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from bench._hub_process import DB_URL_ENV
from podium.hub.config import HubConfig, PasswordCost
from podium.hub.models import Pod
from podium.hub.services import HubServices

PERIOD_S = 10.0
SEED = 20261122
OWNER = "bench"
TARGET_CPU_SHARE = 0.10
TARGET_P99_MS = 50.0
POSTGRES_ENV = "PODIUM_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent
#: Cheap argon2id for seeding the one user: heartbeats never hash a password.
SEED_PASSWORDS = PasswordCost(time_cost=1, memory_cost_kib=1024, parallelism=1)
REQUEST_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
API = "/api/v1"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many pods, and how long to warm up and to measure."""

    pods: int
    warmup_s: float
    window_s: float


FULL = Sizes(pods=1000, warmup_s=10.0, window_s=60.0)
QUICK = Sizes(pods=200, warmup_s=5.0, window_s=15.0)


# -- figures ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), interpolating linearly between the closest
    ranks (numpy's default); NaN when there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one load did over the measurement window."""

    latencies_ms: tuple[float, ...]
    errors: int
    wall_s: float
    hub_cpu_s: float
    client_cpu_s: float

    @property
    def requests(self) -> int:
        """Requests sent in the window, answered or not."""
        return len(self.latencies_ms) + self.errors

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.wall_s

    @property
    def cpu_share(self) -> float:
        """The hub's CPU time over wall time: 1.0 is one core busy."""
        return self.hub_cpu_s / self.wall_s

    @property
    def client_cpu_share(self) -> float:
        """This process's (the simulated pods') CPU time over wall time."""
        return self.client_cpu_s / self.wall_s

    @property
    def p50_ms(self) -> float:
        """Median latency of the answered requests."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        """99th-percentile latency of the answered requests."""
        return percentile(self.latencies_ms, 99)


@dataclass(frozen=True, slots=True)
class BackendResult:
    """Heartbeats and the baseline on one database."""

    backend: str
    pods: int
    heartbeat: PhaseResult
    baseline: PhaseResult

    @property
    def cpu_ratio(self) -> float:
        """Hub CPU per heartbeat over hub CPU per no-op request."""
        return self.heartbeat.cpu_share / self.baseline.cpu_share

    @property
    def p99_ratio(self) -> float:
        """p99 latency of heartbeats over that of no-op requests."""
        return self.heartbeat.p99_ms / self.baseline.p99_ms

    @property
    def targeted(self) -> bool:
        """Whether the targets apply: they are set for 1,000 pods, not a quick run's 200."""
        return self.pods >= FULL.pods

    @property
    def met(self) -> bool:
        """Whether the heartbeats met both targets without an error."""
        beat = self.heartbeat
        return beat.cpu_share < TARGET_CPU_SHARE and beat.p99_ms < TARGET_P99_MS and not beat.errors


_COLUMNS = (
    ("backend", "<10", "{}"),
    ("pods", ">6", "{:,}"),
    ("req/s", ">7", "{:.1f}"),
    ("cpu_share", ">10", "{:.3f}"),
    ("p50_ms", ">8", "{:.2f}"),
    ("p99_ms", ">8", "{:.2f}"),
    ("errors", ">7", "{}"),
    ("base_cpu", ">9", "{:.3f}"),
    ("base_p99", ">9", "{:.2f}"),
    ("cpu_x", ">7", "{:.2f}"),
    ("p99_x", ">7", "{:.2f}"),
    ("target", ">8", "{}"),
)


def _cells(result: BackendResult) -> tuple[object, ...]:
    beat, base = result.heartbeat, result.baseline
    return (
        result.backend,
        result.pods,
        beat.rate,
        beat.cpu_share,
        beat.p50_ms,
        beat.p99_ms,
        beat.errors + base.errors,
        base.cpu_share,
        base.p99_ms,
        result.cpu_ratio,
        result.p99_ratio,
        ("ok" if result.met else "MISSED") if result.targeted else "-",
    )


def format_table(results: Sequence[BackendResult]) -> str:
    """The results as a fixed-width text table, one row per backend."""
    header = "".join(f"{name:{spec}}" for name, spec, _ in _COLUMNS)
    lines = [header, "-" * len(header)]
    for result in results:
        cells = (
            f"{fmt.format(value):{spec}}"
            for (_, spec, fmt), value in zip(_COLUMNS, _cells(result), strict=True)
        )
        lines.append("".join(cells))
    return "\n".join(lines)


def _phase_figures(prefix: str, phase: PhaseResult) -> dict[str, object]:
    return {
        f"{prefix}requests": phase.requests,
        f"{prefix}req_per_s": round(phase.rate, 2),
        f"{prefix}cpu_share": round(phase.cpu_share, 4),
        f"{prefix}p50_ms": round(phase.p50_ms, 3),
        f"{prefix}p99_ms": round(phase.p99_ms, 3),
        f"{prefix}errors": phase.errors,
        f"{prefix}client_cpu_share": round(phase.client_cpu_share, 4),
    }


def summary(
    results: Sequence[BackendResult], *, sizes: Sizes, skipped: Sequence[str] = ()
) -> dict[str, object]:
    """The JSON line: the worst ``cpu_share`` and ``p99_ms`` across backends, then each
    backend's figures under its name (``sqlite_p99_ms``, ``postgresql_base_cpu_share``)."""
    figures: dict[str, object] = {
        "benchmark": "heartbeats",
        "pods": sizes.pods,
        "period_s": PERIOD_S,
        "window_s": sizes.window_s,
        "backends": [r.backend for r in results],
        "skipped": list(skipped),
        "cpu_share": round(max(r.heartbeat.cpu_share for r in results), 4),
        "p99_ms": round(max(r.heartbeat.p99_ms for r in results), 3),
        "errors": sum(r.heartbeat.errors + r.baseline.errors for r in results),
        "target_met": all(r.met for r in results) if all(r.targeted for r in results) else None,
    }
    for r in results:
        figures.update(_phase_figures(f"{r.backend}_", r.heartbeat))
        figures.update(_phase_figures(f"{r.backend}_base_", r.baseline))
        figures[f"{r.backend}_cpu_ratio"] = round(r.cpu_ratio, 3)
        figures[f"{r.backend}_p99_ratio"] = round(r.p99_ratio, 3)
    return figures


# -- the hub ---------------------------------------------------------------------------


def pod_name(index: int) -> str:
    """The name of simulated pod ``index``."""
    return f"pod-{index:05d}"


def seed(config: HubConfig, pods: int) -> str:
    """Create the owner, an API key and ``pods`` pods; return the full API key."""
    services = HubServices.open(config)
    try:
        now = services.now()
        password = secrets.token_urlsafe(16)
        services.accounts.create_user(OWNER, password, is_admin=False, now=now)
        _, api_key = services.accounts.create_api_key(OWNER, "heartbeats", now)
        for index in range(pods):
            name = pod_name(index)
            pod = Pod(owner=OWNER, name=name, display_name=name, created_at=now, updated_at=now)
            services.store.save_pod(pod)
    finally:
        services.close()
    return api_key


def _log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}:\n{_log_tail(log_path)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}{API}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the hub did not answer within {START_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def hub_process(data_dir: Path, db_url: str | None) -> Iterator[tuple[int, str]]:
    """Serve the seeded hub in a child process; yield its pid and base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=pythonpath)
    env.pop(DB_URL_ENV, None)
    if db_url is not None:
        env[DB_URL_ENV] = db_url
    fd = listener.fileno()
    command = [sys.executable, "-m", "bench._hub_process", "--data-dir", str(data_dir)]
    log_path = data_dir / "hub-process.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--fd", str(fd)], pass_fds=(fd,), stdout=log, stderr=log, env=env, cwd=ROOT
        )
    listener.close()
    try:
        _wait_healthy(proc, base_url, log_path)
        yield proc.pid, base_url
    finally:
        _stop(proc)


# -- the pods --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """The request each simulated pod sends every period: one path per pod."""

    method: str
    paths: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)


def heartbeat_load(pods: int, api_key: str) -> Load:
    """Each pod's own heartbeat, with the owner's API key."""
    paths = tuple(f"{API}/pods/{OWNER}/{pod_name(i)}/heartbeat" for i in range(pods))
    return Load("POST", paths, {"Authorization": f"Bearer {api_key}"})


def health_load(pods: int) -> Load:
    """The baseline: every pod asks for the health check instead."""
    return Load("GET", (f"{API}/health",) * pods)


@dataclass(slots=True)
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _sleep_until(at: float) -> None:
    delay = at - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _meter(hub_pid: int, window: tuple[float, float]) -> tuple[float, float, float]:
    """Wall seconds, hub CPU seconds and this process's CPU seconds over ``window``."""
    hub, me = psutil.Process(hub_pid), psutil.Process()
    await _sleep_until(window[0])
    hub0, me0, wall0 = _cpu_s(hub), _cpu_s(me), time.perf_counter()
    await _sleep_until(window[1])
    return time.perf_counter() - wall0, _cpu_s(hub) - hub0, _cpu_s(me) - me0


async def _pod(
    client: httpx.AsyncClient,
    load: Load,
    path: str,
    first: float,
    window: tuple[float, float],
    tally: _Tally,
) -> None:
    """One pod: a request every period from ``first`` until the window closes."""
    at = first
    while at < window[1]:
        await _sleep_until(at)
        began = time.perf_counter()
        try:
            response = await client.request(load.method, path, headers=load.headers)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        if at >= window[0]:
            if ok:
                tally.latencies_ms.append((time.perf_counter() - began) * 1000)
            else:
                tally.errors += 1
        at += PERIOD_S


async def drive(base_url: str, load: Load, sizes: Sizes, hub_pid: int) -> PhaseResult:
    """Play every pod's schedule through a warm-up and the measurement window."""
    rng = random.Random(SEED)
    pods = len(load.paths)
    limits = httpx.Limits(max_connections=pods, max_keepalive_connections=pods)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        t0 = asyncio.get_running_loop().time() + 0.2
        window = (t0 + sizes.warmup_s, t0 + sizes.warmup_s + sizes.window_s)
        tally = _Tally()
        meter = asyncio.create_task(_meter(hub_pid, window))
        await asyncio.gather(
            *(
                _pod(client, load, path, t0 + rng.uniform(0, PERIOD_S), window, tally)
                for path in load.paths
            )
        )
        wall_s, hub_cpu_s, client_cpu_s = await meter
    return PhaseResult(tuple(tally.latencies_ms), tally.errors, wall_s, hub_cpu_s, client_cpu_s)


# -- backends --------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str | None]:
    """A URL on ``url``'s server whose ``search_path`` is a fresh schema, dropped with
    everything in it afterwards; None (with a note) when the server is not reachable."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    schema = f"podium_bench_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        print(f"note: PostgreSQL skipped, not reachable at {engine.url!r} ({exc.orig})")
        yield None
        return
    try:
        hub_url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield hub_url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def measure_backend(backend: str, db_url: str | None, sizes: Sizes) -> BackendResult:
    """Seed a fresh hub on the database, serve it, run the baseline, then heartbeats."""
    with tempfile.TemporaryDirectory(prefix="podium-bench-hub-") as tmp:
        config = HubConfig(data_dir=Path(tmp) / "hub", db_url=db_url, password_cost=SEED_PASSWORDS)
        print(f"{backend}: seeding {sizes.pods:,} pods ...", flush=True)
        api_key = seed(config, sizes.pods)
        with hub_process(config.data_dir, db_url) as (pid, base_url):
            span = f"{sizes.warmup_s:.0f} s warm-up + {sizes.window_s:.0f} s"
            print(f"{backend}: baseline, GET /health ({span}) ...", flush=True)
            baseline = asyncio.run(drive(base_url, health_load(sizes.pods), sizes, pid))
            print(f"{backend}: heartbeats ({span}) ...", flush=True)
            heartbeat = asyncio.run(
                drive(base_url, heartbeat_load(sizes.pods, api_key), sizes, pid)
            )
    return BackendResult(backend, sizes.pods, heartbeat, baseline)


def run(*, quick: bool) -> int:
    """Run the benchmark and print its table and JSON line."""
    sizes = QUICK if quick else FULL
    results = [measure_backend("sqlite", None, sizes)]
    skipped: list[str] = []
    with postgres_schema(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL) as pg_url:
        if pg_url is None:
            skipped.append("postgresql")
        else:
            results.append(measure_backend("postgresql", pg_url, sizes))
    print(
        f"\n{sizes.pods:,} pods, one heartbeat each every {PERIOD_S:.0f} s; "
        f"{sizes.window_s:.0f} s measured after {sizes.warmup_s:.0f} s of warm-up\n"
    )
    print(format_table(results))
    print(
        "\ncpu_share: the hub process's CPU seconds over wall seconds (1.0 = one core busy); "
        "latency: send to whole answer, on the client; errors: failed requests in either load. "
        "base_*: the same load as GET /health; cpu_x, p99_x: heartbeat over base. "
        f"Targets: cpu_share < {TARGET_CPU_SHARE}, "
        f"p99_ms < {TARGET_P99_MS:.0f}, no errors."
    )
    if quick:
        print(f"(the targets are for {FULL.pods:,} pods: a quick run only shows that it works)")
    print(json.dumps(summary(results, sizes=sizes, skipped=skipped)))
    return 0


if __name__ == "__main__":
    raise SystemExit("usage: python -m bench heartbeats [--quick]")
