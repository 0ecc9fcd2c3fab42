"""Benchmark ``federated_sql``: federated SQL and task overheads against in-process baselines.

The federation is ``bench._federation``'s: the hub runs in a child process
(``bench._hub_process``) over SQLite, seeded with the modeller ``bob`` and the pod owners
``alice``, ``carol``, ``dave`` and ``erin``, each with an API key. The pods
(:class:`PodService` with :class:`TaskWorkers`) and the modeller (:class:`Modeller`) share
this process and one event loop; every message between them goes through the hub's relay
over loopback.

1. **Federated GROUP BY**: three pods (``alice/census``, ``carol/census``,
   ``dave/census``), each a :class:`ParquetSource` of census-like synthetic rows (5M each;
   quick 200k). The modeller runs one ``ResultsOnly(SqlQuery)`` task on the three and
   re-aggregates the pods' groups (sum of counts, count-weighted mean, sum of sums): the
   timed part ends there. Baseline in the same run: DuckDB running the same GROUP BY over
   ``read_parquet`` of the three files. The two answers must agree (else the benchmark
   fails). Best of N, interleaved; target ``federated / duckdb <= 1.3``.
2. **Task latency**: ``SELECT COUNT(*)`` on one pod of 1,000 rows (``erin/census``),
   submit to result, sequential after a warm-up; p50 and p99. Baseline: the same query on
   a fresh :class:`SQLEngine` over the same source in-process. Target: p50 under 100 ms.
3. **Per-batch overhead**: ``Statistics(columns=["hours"])`` on one pod
   (``erin/batches``) in batches of 100 rows (1,000 batches; quick 200), minus the same
   work done directly (``Summary.of_frame`` per batch of ``iter_batches``, merged, then
   thinned and put in wire form as the pod does), over the number of batches.

The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from bench._federation import MODELLER, PodSpec, bench_hub, podium_home, running_pods, verdict
from bench.heartbeats import percentile
from podium.algorithms.sql import SqlQuery
from podium.algorithms.statistics import Statistics, StatisticsResult
from podium.algorithms.summary import StatisticsSpec, Summary
from podium.core.crypto import SigningKeyPair
from podium.data.sources import ParquetSource
from podium.data.sql import SQLEngine
from podium.hub.schemas import PodIn
from podium.modeller import Modeller
from podium.pod.policy import PodPolicy
from podium.protocols.base import ProtocolFactory, RunOptions
from podium.protocols.coordinator import TaskOutcome
from podium.protocols.results_only import ResultsOnly, ResultsOnlyResult

KEY_NAME = "federated-sql-bench"
BIG_OWNERS = ("alice", "carol", "dave")
SMALL_OWNER = "erin"
TABLE = "census"
BATCH_POD = "batches"
SEED = 20261122
TARGET_RATIO = 1.3
TARGET_P50_MS = 100.0
WARMUP_TASKS = 2
KEYS = ("workclass", "education")
MEAN_RTOL = 1e-9

GROUP_BY = (
    "SELECT workclass, education, COUNT(*) AS n, AVG(hours) AS mean_hours, SUM(age) AS sum_age "
    "FROM {source} GROUP BY workclass, education"
)
COUNT_QUERY = f'SELECT COUNT(*) AS n FROM "{TABLE}"'

WORKCLASSES = (
    "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov",
    "Local-gov", "State-gov", "Without-pay", "Never-worked",
)  # fmt: skip
WORKCLASS_WEIGHTS = (0.70, 0.08, 0.04, 0.03, 0.06, 0.05, 0.02, 0.02)
EDUCATIONS = (
    "Preschool", "1st-4th", "5th-6th", "7th-8th", "9th", "10th", "11th", "12th",
    "HS-grad", "Some-college", "Assoc-voc", "Assoc-acdm", "Bachelors", "Masters",
    "Prof-school", "Doctorate",
)  # fmt: skip
INCOMES = ("<=50K", ">50K")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much of each part to run."""

    rows_per_pod: int
    repeats: int
    latency_runs: int
    latency_rows: int
    batches: int
    batch_rows: int

    @property
    def batch_pod_rows(self) -> int:
        """Rows of the batched pod: exactly ``batches`` batches of ``batch_rows``."""
        return self.batches * self.batch_rows


FULL = Sizes(
    rows_per_pod=5_000_000, repeats=5, latency_runs=30, latency_rows=1000, batches=1000,
    batch_rows=100,
)  # fmt: skip
QUICK = Sizes(
    rows_per_pod=200_000, repeats=3, latency_runs=10, latency_rows=1000, batches=200,
    batch_rows=100,
)  # fmt: skip


# -- data ------------------------------------------------------------------------------


def census_frame(rows: int, seed: int) -> pd.DataFrame:
    """Census-like synthetic rows: age (int), workclass (8 values), education (16), hours
    (float) and income (2 values); the same ``seed`` gives the same rows."""
    if rows < 0:
        raise ValueError(f"census_frame: rows must be >= 0, got {rows}")
    rng = np.random.default_rng(seed)
    education = rng.integers(0, len(EDUCATIONS), rows)
    hours = np.clip(rng.normal(40.0, 12.0, rows), 1.0, 99.0).round(1)
    rich = rng.random(rows) < 0.08 + 0.02 * education + 0.002 * (hours - 40.0)
    return pd.DataFrame(
        {
            "age": rng.integers(17, 91, rows, dtype=np.int64),
            "workclass": _categorical(
                rng.choice(len(WORKCLASSES), rows, p=WORKCLASS_WEIGHTS), WORKCLASSES
            ),
            "education": _categorical(education, EDUCATIONS),
            "hours": hours,
            "income": _categorical(rich.astype(np.int8), INCOMES),
        }
    )


def _categorical(codes: npt.NDArray[np.integer[Any]], values: Sequence[str]) -> pd.Categorical[str]:
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(values)))


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as one Parquet file (categoricals dictionary-encoded); its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, engine="pyarrow")
    return path


def write_pods(folder: Path, sizes: Sizes) -> dict[str, Path]:
    """Each pod's Parquet file, by pod id (``owner/name``)."""
    files: dict[str, Path] = {}
    for index, owner in enumerate(BIG_OWNERS):
        frame = census_frame(sizes.rows_per_pod, SEED + index)
        files[f"{owner}/{TABLE}"] = write_parquet(frame, folder / owner / f"{TABLE}.parquet")
    small = census_frame(sizes.latency_rows, SEED + 10)
    files[f"{SMALL_OWNER}/{TABLE}"] = write_parquet(small, folder / "small" / "census.parquet")
    batch = census_frame(sizes.batch_pod_rows, SEED + 11)
    files[f"{SMALL_OWNER}/{BATCH_POD}"] = write_parquet(batch, folder / "batch" / "data.parquet")
    return files


# -- answers ---------------------------------------------------------------------------


def reaggregate(stacked: pd.DataFrame) -> pd.DataFrame:
    """The pods' GROUP BY answers (stacked) as one: counts and sums added, means weighted
    by count; sorted by the group keys."""
    weighted = stacked.assign(_hours=stacked["mean_hours"] * stacked["n"])
    grouped = weighted.groupby(list(KEYS), as_index=False, observed=True, sort=True)
    total = grouped[["n", "_hours", "sum_age"]].sum()
    total["mean_hours"] = total["_hours"] / total["n"]
    return _tidy(total[[*KEYS, "n", "mean_hours", "sum_age"]])


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    tidy = frame.astype({"workclass": str, "education": str, "n": np.int64, "sum_age": np.int64})
    tidy = tidy.astype({"mean_hours": np.float64})
    return tidy.sort_values(list(KEYS)).reset_index(drop=True)


def check_same_answer(federated: pd.DataFrame, baseline: pd.DataFrame) -> None:
    """Raise AssertionError, saying where, unless the two answers have the same groups,
    counts and sums, and means within ``MEAN_RTOL``."""
    fed, base = _tidy(federated), _tidy(baseline)
    if list(fed[list(KEYS)].itertuples(index=False)) != list(
        base[list(KEYS)].itertuples(index=False)
    ):
        raise AssertionError(
            f"federated answer has {len(fed)} groups, DuckDB's {len(base)}, and they differ"
        )
    for column in ("n", "sum_age"):
        got, want = fed[column].to_numpy(), base[column].to_numpy()
        wrong = np.flatnonzero(got != want)
        if wrong.size:
            row = int(wrong[0])
            group = tuple(fed[list(KEYS)].iloc[row].tolist())
            raise AssertionError(
                f"federated {column} differs from DuckDB's in group {group}: "
                f"{got[row]} != {want[row]}"
            )
    if not np.allclose(fed["mean_hours"], base["mean_hours"], rtol=MEAN_RTOL, atol=0.0):
        gap = float(np.max(np.abs(fed["mean_hours"] - base["mean_hours"])))
        raise AssertionError(f"federated mean_hours differs from DuckDB's by up to {gap}")


# -- figures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one run measured, times in seconds."""

    federated_s: tuple[float, ...]
    duckdb_s: tuple[float, ...]
    groups: int
    task_s: tuple[float, ...]
    engine_s: tuple[float, ...]
    batched_s: tuple[float, ...]
    direct_s: tuple[float, ...]
    batches: int

    @property
    def ratio_vs_duckdb(self) -> float:
        """Best federated time over best DuckDB time."""
        return min(self.federated_s) / min(self.duckdb_s)

    def task_ms(self, q: float) -> float:
        """Percentile ``q`` of the task latency, in ms."""
        return percentile([s * 1000 for s in self.task_s], q)

    def engine_ms(self, q: float) -> float:
        """Percentile ``q`` of the in-process SQLEngine latency, in ms."""
        return percentile([s * 1000 for s in self.engine_s], q)

    @property
    def per_batch_overhead_ms(self) -> float:
        """(best batched task - best direct work) / batches, in ms."""
        return (min(self.batched_s) - min(self.direct_s)) / self.batches * 1000


def format_tables(report: Report, sizes: Sizes) -> str:
    """The three parts as fixed-width text tables."""
    ratio = report.ratio_vs_duckdb
    p50, p99 = report.task_ms(50), report.task_ms(99)
    e50, e99 = report.engine_ms(50), report.engine_ms(99)
    width = 44
    lines = [
        f"{'1. GROUP BY, 3 pods x ' + f'{sizes.rows_per_pod:,} rows':<{width}}"
        f"{'n':>4}{'best_s':>9}{'median_s':>10}{'x':>7}{'target':>8}",
        f"{'federated (1 task, re-aggregated)':<{width}}{len(report.federated_s):>4}"
        f"{min(report.federated_s):>9.3f}{_median(report.federated_s):>10.3f}{ratio:>7.2f}"
        f"{verdict(ratio <= TARGET_RATIO):>8}",
        f"{'DuckDB, read_parquet of the 3 files':<{width}}{len(report.duckdb_s):>4}"
        f"{min(report.duckdb_s):>9.3f}{_median(report.duckdb_s):>10.3f}{1.0:>7.2f}{'-':>8}",
        f"{report.groups} groups; the federated answer equals DuckDB's",
        "",
        f"{'2. task latency, COUNT(*) on ' + f'{sizes.latency_rows:,} rows':<{width}}"
        f"{'n':>4}{'p50_ms':>9}{'p99_ms':>10}{'x':>7}{'target':>8}",
        f"{'federated task, submit to result':<{width}}{len(report.task_s):>4}{p50:>9.1f}"
        f"{p99:>10.1f}{p50 / e50:>7.1f}{verdict(p50 < TARGET_P50_MS):>8}",
        f"{'SQLEngine in-process':<{width}}{len(report.engine_s):>4}{e50:>9.1f}{e99:>10.1f}"
        f"{1.0:>7.1f}{'-':>8}",
        "",
        f"{'3. Statistics, ' + f'{report.batches:,} batches x {sizes.batch_rows} rows':<{width}}"
        f"{'n':>4}{'best_s':>9}{'median_s':>10}{'ms/batch':>10}",
        f"{'federated task, batched':<{width}}{len(report.batched_s):>4}"
        f"{min(report.batched_s):>9.3f}{_median(report.batched_s):>10.3f}"
        f"{min(report.batched_s) / report.batches * 1000:>10.3f}",
        f"{'direct: of_frame per batch + merge':<{width}}{len(report.direct_s):>4}"
        f"{min(report.direct_s):>9.3f}{_median(report.direct_s):>10.3f}"
        f"{min(report.direct_s) / report.batches * 1000:>10.3f}",
        f"per-batch overhead of the engine: {report.per_batch_overhead_ms:.3f} ms",
    ]
    return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def summary(report: Report, sizes: Sizes, *, quick: bool) -> dict[str, object]:
    """The JSON line."""
    ratio = report.ratio_vs_duckdb
    p50 = report.task_ms(50)
    return {
        "benchmark": "federated_sql",
        "quick": quick,
        "pods": len(BIG_OWNERS),
        "rows_per_pod": sizes.rows_per_pod,
        "repeats": sizes.repeats,
        "groups": report.groups,
        "federated_s": round(min(report.federated_s), 4),
        "duckdb_s": round(min(report.duckdb_s), 4),
        "ratio_vs_duckdb": round(ratio, 3),
        "latency_rows": sizes.latency_rows,
        "latency_runs": len(report.task_s),
        "task_p50_ms": round(p50, 2),
        "task_p99_ms": round(report.task_ms(99), 2),
        "sqlengine_p50_ms": round(report.engine_ms(50), 3),
        "task_p50_vs_sqlengine": round(p50 / report.engine_ms(50), 1),
        "batches": report.batches,
        "batch_rows": sizes.batch_rows,
        "batched_task_s": round(min(report.batched_s), 4),
        "direct_s": round(min(report.direct_s), 4),
        "per_batch_overhead_ms": round(report.per_batch_overhead_ms, 3),
        "answer_checked": True,
        "in_process": "pods and modeller share one process; hub in its own",
        "target_met": ratio <= TARGET_RATIO and p50 < TARGET_P50_MS,
    }


# -- the federation --------------------------------------------------------------------


def pod_specs(files: Mapping[str, Path]) -> dict[str, PodSpec]:
    """A pod per Parquet file (by pod id): a ParquetSource, registered by its name."""
    return {
        pod: PodSpec(
            source=ParquetSource(path),
            registration=PodIn(
                display_name=pod.partition("/")[2], description="federated_sql benchmark pod"
            ),
        )
        for pod, path in files.items()
    }


async def run_task(
    modeller: Modeller,
    factory: ProtocolFactory,
    pods: Sequence[str],
    *,
    options: RunOptions | None = None,
) -> ResultsOnlyResult:
    """Run one task; its result, or RuntimeError naming the pods that did not complete."""
    outcome: TaskOutcome = await modeller.run_async(factory, pods, options=options)
    failed = {p: s.reason for p, s in outcome.pods.items() if s.outcome != "completed"}
    if failed or not isinstance(outcome.result, ResultsOnlyResult):
        raise RuntimeError(f"the benchmark task did not complete on every pod: {failed}")
    return outcome.result


# -- 1. federated GROUP BY -------------------------------------------------------------


async def federated_group_by(modeller: Modeller, pods: Sequence[str]) -> pd.DataFrame:
    """One ResultsOnly(SqlQuery) task on ``pods``, re-aggregated on the modeller."""
    query = GROUP_BY.format(source=f'"{TABLE}"')
    result = await run_task(modeller, ResultsOnly(algorithm=SqlQuery(query=query)), pods)
    return await asyncio.to_thread(reaggregate, result.combined[0].combined)


def duckdb_group_by(files: Sequence[Path]) -> pd.DataFrame:
    """The baseline: the same GROUP BY in DuckDB over the three Parquet files."""
    listed = ", ".join(f"'{path.resolve()}'" for path in files)
    with duckdb.connect() as conn:
        frame: pd.DataFrame = conn.execute(GROUP_BY.format(source=f"read_parquet([{listed}])")).df()
    return frame


async def _timed(make: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    value = await make()
    return time.perf_counter() - began, value


async def measure_group_by(
    modeller: Modeller, files: Mapping[str, Path], sizes: Sizes
) -> tuple[list[float], list[float], int]:
    """Best-of timings of the federated GROUP BY and of DuckDB, interleaved; each
    federated answer is checked against DuckDB's."""
    pods = [f"{owner}/{TABLE}" for owner in BIG_OWNERS]
    parquet = [files[pod] for pod in pods]
    federated: list[float] = []
    baseline: list[float] = []
    groups = 0
    for repeat in range(sizes.repeats):
        print(f"group by: repeat {repeat + 1}/{sizes.repeats} ...", flush=True)
        base_s, expected = await _timed(lambda: asyncio.to_thread(duckdb_group_by, parquet))
        fed_s, answer = await _timed(lambda: federated_group_by(modeller, pods))
        check_same_answer(answer, expected)
        baseline.append(base_s)
        federated.append(fed_s)
        groups = len(expected)
    return federated, baseline, groups


# -- 2. task latency -------------------------------------------------------------------


def engine_count(path: Path) -> int:
    """The baseline: COUNT(*) on a fresh SQLEngine over the pod's source."""
    with SQLEngine({TABLE: ParquetSource(path)}) as engine:
        return int(engine.query(COUNT_QUERY)["n"].iloc[0])


async def measure_latency(
    modeller: Modeller, files: Mapping[str, Path], sizes: Sizes
) -> tuple[list[float], list[float]]:
    """Submit-to-result times of COUNT(*) tasks and of the in-process engine, in s."""
    pod = f"{SMALL_OWNER}/{TABLE}"
    factory = ResultsOnly(algorithm=SqlQuery(query=COUNT_QUERY))
    print(f"latency: {sizes.latency_runs} tasks ...", flush=True)
    tasks: list[float] = []
    for run in range(WARMUP_TASKS + sizes.latency_runs):
        seconds, result = await _timed(lambda: run_task(modeller, factory, [pod]))
        count = int(result.combined[0].per_pod[pod]["n"].iloc[0])
        if count != sizes.latency_rows:
            raise AssertionError(f"COUNT(*) on {pod} gave {count}, not {sizes.latency_rows}")
        if run >= WARMUP_TASKS:
            tasks.append(seconds)
    engine: list[float] = []
    for run in range(WARMUP_TASKS + sizes.latency_runs):
        began = time.perf_counter()
        engine_count(files[pod])
        if run >= WARMUP_TASKS:
            engine.append(time.perf_counter() - began)
    return tasks, engine


# -- 3. per-batch overhead -------------------------------------------------------------


def direct_statistics(path: Path, batch_rows: int) -> tuple[int, int]:
    """The baseline: what the pod's Statistics worker does, without the engine around it
    (batches, one summary each, merged; thinned and put in wire form); (batches, count)."""
    spec = StatisticsSpec(columns=("hours",))
    merged = Summary.empty(spec)
    batches = 0
    for frame in ParquetSource(path).iter_batches(batch_rows):
        merged = merged.merge(Summary.of_frame(frame, spec))
        batches += 1
    kept, _ = merged.suppress_small_groups(PodPolicy().min_group_size)
    kept.to_wire()
    return batches, int(kept.table()["count"].iloc[0])


async def measure_batches(
    modeller: Modeller, files: Mapping[str, Path], sizes: Sizes
) -> tuple[list[float], list[float]]:
    """Best-of timings of the batched Statistics task and of the direct work, in s."""
    pod = f"{SMALL_OWNER}/{BATCH_POD}"
    factory = ResultsOnly(algorithm=Statistics(columns=["hours"]))
    options = RunOptions(batched_execution=True, batch_rows=sizes.batch_rows)
    task_s: list[float] = []
    direct_s: list[float] = []
    for repeat in range(sizes.repeats):
        print(f"batches: repeat {repeat + 1}/{sizes.repeats} ...", flush=True)
        seconds, result = await _timed(lambda: run_task(modeller, factory, [pod], options=options))
        combined = result.combined[0]
        assert isinstance(combined, StatisticsResult)
        count = int(combined.combined["count"].iloc[0])
        if count != sizes.batch_pod_rows:
            raise AssertionError(f"Statistics on {pod} counted {count}, not {sizes.batch_pod_rows}")
        task_s.append(seconds)
        began = time.perf_counter()
        batches, direct_count = await asyncio.to_thread(
            direct_statistics, files[pod], sizes.batch_rows
        )
        direct_s.append(time.perf_counter() - began)
        if (batches, direct_count) != (sizes.batches, sizes.batch_pod_rows):
            raise AssertionError(f"the direct baseline saw {batches} batches, {direct_count} rows")
    return task_s, direct_s


# -- the run ---------------------------------------------------------------------------


async def measure_async(hub: str, keys: Mapping[str, str], files: Mapping[str, Path],
                        tmp: Path, sizes: Sizes) -> Report:  # fmt: skip
    """Start the pods and run the three parts."""
    modeller = Modeller(hub, token=keys[MODELLER], signing=SigningKeyPair.generate())
    async with AsyncExitStack() as stack:
        print(f"starting {len(files)} pods ...", flush=True)
        await stack.enter_async_context(running_pods(pod_specs(files), hub, keys, tmp))
        federated, baseline, groups = await measure_group_by(modeller, files, sizes)
        task_s, engine_s = await measure_latency(modeller, files, sizes)
        batched, direct = await measure_batches(modeller, files, sizes)
    return Report(
        federated_s=tuple(federated),
        duckdb_s=tuple(baseline),
        groups=groups,
        task_s=tuple(task_s),
        engine_s=tuple(engine_s),
        batched_s=tuple(batched),
        direct_s=tuple(direct),
        batches=sizes.batches,
    )


def measure(sizes: Sizes) -> Report:
    """Write the data, start the hub, and measure."""
    with tempfile.TemporaryDirectory(prefix="podium-bench-fsql-") as name:
        tmp = Path(name)
        began = time.perf_counter()
        print(f"writing {len(BIG_OWNERS)} x {sizes.rows_per_pod:,} rows of Parquet ...", flush=True)
        files = write_pods(tmp / "data", sizes)
        print(f"  {time.perf_counter() - began:.1f} s", flush=True)
        owners = (*BIG_OWNERS, SMALL_OWNER)
        with podium_home(tmp / "home"), bench_hub(tmp, owners, key_name=KEY_NAME) as (hub, keys):
            return asyncio.run(measure_async(hub, keys, files, tmp, sizes))


def run(*, quick: bool) -> int:
    """Run the benchmark and print its tables and JSON line; 1 if an answer was wrong."""
    sizes = QUICK if quick else FULL
    try:
        report = measure(sizes)
    except AssertionError as error:
        print(f"FAILED: {error}", flush=True)
        return 1
    print()
    print(format_tables(report, sizes))
    print(
        f"\nThe hub runs in a child process (SQLite); pods and modeller share one process "
        f"and event loop, messages through the hub's relay on loopback. {os.cpu_count()} "
        f"CPUs. Best of {sizes.repeats} for parts 1 and 3 (interleaved with the baseline); "
        f"part 2 after {WARMUP_TASKS} warm-up tasks. x: over the baseline. Targets: "
        f"federated <= {TARGET_RATIO}x DuckDB, task p50 < {TARGET_P50_MS:.0f} ms."
    )
    print(json.dumps(summary(report, sizes, quick=quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit("usage: python -m bench federated_sql [--quick]")
