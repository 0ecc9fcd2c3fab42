"""Benchmark ``data``: schema inference and a GROUP BY through podium.data vs plain DuckDB.

A census-like CSV (5 million rows; 500,000 with ``--quick``) is generated from the packaged
census-income data. Each measurement runs in a fresh child process, so its peak resident
memory is its own; the timed part excludes interpreter start and imports. Baseline and
Podium runs alternate and the median of the rounds is kept.

- schema: Podium's full schema (types, stypes, missing counts, categorical value sets,
  record count) via ``infer_schema(CSVSource(path))`` vs DuckDB's own profile of the file,
  ``SUMMARIZE SELECT * FROM read_csv(path)``.
- batches: every row as pandas frames of 50,000 rows, ``CSVSource.iter_batches`` vs a
  plain DuckDB Arrow reader converted batch by batch; memory stays bounded by the batch.
- groupby: the same aggregate through ``SQLEngine`` (sqlglot checks, restricted DuckDB,
  a view with ignore_cols applied) vs the same SQL on ``read_csv(path)`` in plain DuckDB.

Targets: schema and groupby ratios at most 1.2; Podium's peak RSS under 1 GiB.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from podium.data.census import CENSUS_CSV_PATH
from podium.data.schema import infer_schema
from podium.data.sources.csv_source import CSVSource
from podium.data.sql import SQLEngine

FULL_ROWS = 5_000_000
QUICK_ROWS = 500_000
OUT_DIR = Path(__file__).resolve().parent / "out"

GROUPBY_SQL = (
    'SELECT education, COUNT(*) AS n, AVG(age) AS mean_age, AVG("hours-per-week") AS mean_hours, '
    'SUM("capital-gain") AS gain FROM {table} GROUP BY education ORDER BY education'
)

MEASURES = ("schema", "groupby", "batches")
TASKS = tuple(f"{side}_{measure}" for measure in MEASURES for side in ("duckdb", "podium"))
TARGETED = ("schema", "groupby")  # the targets; batches are for information
BATCH_ROWS = 50_000


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def generate_csv(rows: int) -> Path:
    """Write (once) a census-like CSV of ``rows`` rows; numbers are perturbed per copy."""

    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"census_{rows}.csv"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.csv")
    con = _connect()
    copies = rows // 32_561 + 1
    con.execute(
        f"""
        COPY (
          SELECT c.age + (r.range % 7) - 3 AS age, c.workclass,
                 c.fnlwgt + r.range * 17 AS fnlwgt, c.education, c."marital-status",
                 c.occupation, c.relationship, c.race, c.gender,
                 c."capital-gain" + (r.range % 3) * 10 AS "capital-gain",
                 c."capital-loss", c."hours-per-week" + (r.range % 5) - 2 AS "hours-per-week",
                 c."native-country", c."TARGET"
          FROM read_csv('{CENSUS_CSV_PATH}') AS c CROSS JOIN range({copies}) AS r
          LIMIT {rows}
        ) TO '{tmp}' (HEADER, DELIMITER ',')
        """
    )
    con.close()
    tmp.replace(path)
    return path


def _work(task: str, path: Path) -> None:
    """Child process: do one task, print its seconds and peak RSS as JSON."""

    before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if task == "duckdb_schema":
        con = _connect()
        result: object = con.execute(f"SUMMARIZE SELECT * FROM read_csv('{path}')").fetchall()
    elif task == "podium_schema":
        result = infer_schema(CSVSource(path), name="census")
    elif task == "duckdb_groupby":
        con = _connect()
        table = f"read_csv('{path}')"
        result = con.execute(GROUPBY_SQL.format(table=table)).fetchall()
    elif task == "duckdb_batches":
        con = _connect()
        reader = con.sql(f"SELECT * FROM read_csv('{path}')").to_arrow_reader(BATCH_ROWS)
        result = sum(len(batch.to_pandas()) for batch in reader)
    elif task == "podium_batches":
        result = sum(len(frame) for frame in CSVSource(path).iter_batches(BATCH_ROWS))
    elif task == "podium_groupby":
        with SQLEngine({"census": CSVSource(path)}) as engine:
            result = engine.query(GROUPBY_SQL.format(table='"census"'))
    else:
        raise SystemExit(f"unknown task {task}")
    seconds = time.perf_counter() - start
    assert result is not None
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "task": task,
                "seconds": seconds,
                "peak_rss_mib": peak_mib,
                "import_rss_mib": before_mib,
            }
        )
    )


def _measure(task: str, path: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.data", "--worker", task, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    figures: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def run(*, quick: bool) -> int:
    """Run the benchmark and print its table and JSON line."""
    rows = QUICK_ROWS if quick else FULL_ROWS
    rounds = 2 if quick else 3
    print(f"generating a census-like CSV of {rows:,} rows ...", flush=True)
    path = generate_csv(rows)
    size_mib = path.stat().st_size / 2**20
    times: dict[str, list[float]] = {t: [] for t in TASKS}
    peaks: dict[str, float] = dict.fromkeys(TASKS, 0.0)
    import_rss = 0.0
    for round_no in range(rounds):
        for task in TASKS:
            figures = _measure(task, path)
            times[task].append(figures["seconds"])
            peaks[task] = max(peaks[task], figures["peak_rss_mib"])
            import_rss = max(import_rss, figures["import_rss_mib"])
        print(f"round {round_no + 1}/{rounds} done", flush=True)
    med = {t: statistics.median(v) for t, v in times.items()}
    ratios = {m: med[f"podium_{m}"] / med[f"duckdb_{m}"] for m in MEASURES}
    peak = max(peaks[f"podium_{m}"] for m in MEASURES)

    print(f"\nfile: {rows:,} rows, {size_mib:,.0f} MiB; median of {rounds} rounds\n")
    header = (
        f"{'measure':<10}{'plain DuckDB s':>16}{'podium.data s':>15}{'ratio':>8}"
        f"{'DuckDB MiB':>12}{'podium MiB':>12}  target"
    )
    print(header)
    print("-" * len(header))
    for m in MEASURES:
        base, ours = med[f"duckdb_{m}"], med[f"podium_{m}"]
        verdict = "" if m not in TARGETED else "<=1.2 " + ("ok" if ratios[m] <= 1.2 else "MISSED")
        print(
            f"{m:<10}{base:>16.3f}{ours:>15.3f}{ratios[m]:>8.2f}"
            f"{peaks[f'duckdb_{m}']:>12.0f}{peaks[f'podium_{m}']:>12.0f}  {verdict}"
        )
    print(
        f"\npeak RSS (MiB) is each child process's own; after imports, before any work, it "
        f"is {import_rss:.0f}. Target: podium under 1024 ({'ok' if peak < 1024 else 'MISSED'})."
    )
    summary: dict[str, object] = {"benchmark": "data", "rows": rows, "rounds": rounds}
    for m in MEASURES:
        summary[f"duckdb_{m}_s"] = round(med[f"duckdb_{m}"], 4)
        summary[f"podium_{m}_s"] = round(med[f"podium_{m}"], 4)
        summary[f"{m}_ratio"] = round(ratios[m], 3)
    summary["peak_rss_mib"] = round(peak, 1)
    summary["import_rss_mib"] = round(import_rss, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _work(sys.argv[2], Path(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m bench data [--quick]")
