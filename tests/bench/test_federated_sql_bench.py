"""The federated_sql benchmark's pure parts: data, re-aggregation, the answer check, the
table and the JSON line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from bench.federated_sql import (
    EDUCATIONS,
    FULL,
    GROUP_BY,
    INCOMES,
    QUICK,
    WORKCLASSES,
    Report,
    census_frame,
    check_same_answer,
    direct_statistics,
    duckdb_group_by,
    format_tables,
    reaggregate,
    summary,
    write_parquet,
)


def _report(**changes: object) -> Report:
    figures: dict[str, object] = {
        "federated_s": (0.5, 0.4, 0.6),
        "duckdb_s": (0.3, 0.2, 0.25),
        "groups": 128,
        "task_s": tuple(i / 1000 for i in range(50, 60)),
        "engine_s": (0.01,) * 10,
        "batched_s": (3.0, 2.5),
        "direct_s": (1.0, 0.5),
        "batches": 1000,
    }
    figures.update(changes)
    return Report(**figures)  # type: ignore[arg-type]


def _group_by(frame: pd.DataFrame) -> pd.DataFrame:
    with duckdb.connect() as conn:
        conn.register("data", frame)
        answer: pd.DataFrame = conn.execute(GROUP_BY.format(source="data")).df()
    return answer


def test_census_frame_has_the_census_like_shape() -> None:
    """Rows as asked, the five columns with their types and value sets, ages in 17..90."""
    frame = census_frame(5000, seed=1)
    assert list(frame.columns) == ["age", "workclass", "education", "hours", "income"]
    assert len(frame) == 5000
    assert frame["age"].dtype == np.int64
    assert frame["age"].between(17, 90).all()
    assert frame["hours"].dtype == np.float64
    assert frame["hours"].between(1, 99).all()
    assert set(frame["workclass"].unique()) <= set(WORKCLASSES)
    assert frame["education"].nunique() == len(EDUCATIONS) == 16
    assert set(frame["income"].unique()) == set(INCOMES)
    assert not frame.isna().any().any()


def test_census_frame_is_seeded() -> None:
    """The same seed gives the same rows; another seed other rows; zero rows is empty."""
    pd.testing.assert_frame_equal(census_frame(300, seed=7), census_frame(300, seed=7))
    assert not census_frame(300, seed=7).equals(census_frame(300, seed=8))
    assert len(census_frame(0, seed=7)) == 0
    with pytest.raises(ValueError, match="rows"):
        census_frame(-1, seed=7)


def test_parquet_round_trip_keeps_the_rows(tmp_path: Path) -> None:
    """What is written reads back the same (categoricals as their values)."""
    frame = census_frame(400, seed=2)
    path = write_parquet(frame, tmp_path / "a" / "census.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back.astype(str), frame.astype(str))


def test_reaggregated_pod_answers_equal_one_group_by_of_all_rows(tmp_path: Path) -> None:
    """Per-pod GROUP BYs re-aggregated equal DuckDB over the pods' files together."""
    frames = [census_frame(3000, seed=s) for s in (1, 2, 3)]
    stacked = pd.concat(
        [_group_by(f).assign(pod=f"p{i}") for i, f in enumerate(frames)], ignore_index=True
    )
    files = [write_parquet(f, tmp_path / f"{i}.parquet") for i, f in enumerate(frames)]
    federated = reaggregate(stacked)
    baseline = duckdb_group_by(files)
    check_same_answer(federated, baseline)
    assert int(federated["n"].sum()) == 9000


def test_reaggregate_weights_means_by_count() -> None:
    """A group seen on two pods gets summed counts and sums and the count-weighted mean."""
    stacked = pd.DataFrame(
        {
            "pod": ["a", "b"],
            "workclass": ["Private", "Private"],
            "education": ["9th", "9th"],
            "n": [1, 3],
            "mean_hours": [10.0, 30.0],
            "sum_age": [20, 90],
        }
    )
    answer = reaggregate(stacked)
    assert answer.to_dict("records") == [
        {"workclass": "Private", "education": "9th", "n": 4, "mean_hours": 25.0, "sum_age": 110}
    ]


def test_check_same_answer_fails_loudly_on_a_wrong_answer() -> None:
    """A changed count, sum, mean or a missing group raises, naming what differs."""
    good = _group_by(census_frame(2000, seed=4))
    check_same_answer(good.sample(frac=1.0, random_state=0), good)  # order does not matter
    for column, change in (("n", 1), ("sum_age", 1), ("mean_hours", 1e-3)):
        bad = good.copy()
        values = bad[column].to_numpy(copy=True)
        values[0] += change
        bad[column] = values
        with pytest.raises(AssertionError, match=column):
            check_same_answer(bad, good)
    with pytest.raises(AssertionError, match="groups"):
        check_same_answer(good.iloc[1:], good)


def test_direct_statistics_counts_batches_and_rows(tmp_path: Path) -> None:
    """The per-batch baseline sees rows / batch_rows batches and counts every row."""
    path = write_parquet(census_frame(1000, seed=5), tmp_path / "b.parquet")
    assert direct_statistics(path, 100) == (10, 1000)


def test_sizes_keep_the_quick_run_small() -> None:
    """Quick sizes are below the full ones; the batched pod holds exactly its batches."""
    assert QUICK.rows_per_pod < FULL.rows_per_pod
    assert QUICK.repeats <= FULL.repeats
    assert FULL.batches == 1000
    assert FULL.batch_pod_rows == 100_000
    assert QUICK.batch_pod_rows == QUICK.batches * QUICK.batch_rows


def test_report_figures() -> None:
    """The ratio is best over best; the overhead is the best gap over the batches."""
    report = _report()
    assert report.ratio_vs_duckdb == pytest.approx(2.0)
    assert report.per_batch_overhead_ms == pytest.approx(2.0)
    assert report.task_ms(50) == pytest.approx(54.5)
    assert report.engine_ms(99) == pytest.approx(10.0)


def test_summary_is_one_json_line_with_the_figures() -> None:
    """The JSON line has the headline figures, the sizes and quick, and judges targets."""
    line = json.dumps(summary(_report(), QUICK, quick=True))
    assert "\n" not in line
    figures = json.loads(line)
    assert figures["ratio_vs_duckdb"] == 2.0
    assert figures["task_p50_ms"] == 54.5
    assert math.isclose(figures["task_p99_ms"], 58.91)
    assert figures["per_batch_overhead_ms"] == 2.0
    assert figures["rows_per_pod"] == QUICK.rows_per_pod
    assert figures["batches"] == 1000
    assert figures["quick"] is True
    assert figures["target_met"] is False  # 2.0x DuckDB misses 1.3
    met = summary(_report(federated_s=(0.25,)), FULL, quick=False)
    assert met["target_met"] is True
    assert met["quick"] is False


def test_format_tables_shows_each_part_and_verdict() -> None:
    """The table names the three parts, their baselines and the verdicts."""
    text = format_tables(_report(), QUICK)
    assert "1. GROUP BY, 3 pods x 200,000 rows" in text
    for baseline in ("DuckDB", "SQLEngine", "direct"):
        assert baseline in text
    assert "MISSED" in text  # the ratio
    assert " ok" in text  # the latency
    assert "per-batch overhead of the engine: 2.000 ms" in text
    assert "128 groups" in text
