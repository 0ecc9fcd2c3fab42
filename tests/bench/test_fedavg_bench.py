"""The fedavg benchmark's pure parts: the sizes, the per-round overhead, the table and the
JSON line."""

from __future__ import annotations

import json
import math

import pytest
from bench.fedavg import (
    FULL,
    QUICK,
    TARGET_FIRST_ROUND_MS,
    TARGET_OVERHEAD_MS,
    Report,
    RoundFigures,
    Sizes,
    format_table,
    pod_ids,
    summary,
)

from podium.protocols.fedavg import RoundRecord

PODS = ("alice/census", "carol/census", "dave/census")


def _round(seconds: float, *trains: float) -> RoundFigures:
    return RoundFigures(seconds, dict(zip(PODS, trains, strict=False)))


def _report(**changes: object) -> Report:
    figures: dict[str, object] = {
        "rounds": (_round(0.100, 0.080, 0.050, 0.010), _round(0.060, 0.020, 0.050, 0.030)),
        "time_to_first_round_s": 0.2,
        "cold_first_round_s": 1.4,
        "total_s": 0.5,
        "central_s": 0.25,
        "central_train_s": 0.2,
        "accuracy_federated": 0.84,
        "accuracy_central": 0.8475,
        "rows": {"alice/census": 100, "carol/census": 20, "dave/census": 10},
    }
    figures.update(changes)
    return Report(**figures)  # type: ignore[arg-type]


def test_sizes_are_the_issue_s() -> None:
    """Full: 10 rounds on every row; quick: 3 rounds on a 6,000-row sample; three pods."""
    assert Sizes(rounds=10, sample_rows=None) == FULL
    assert Sizes(rounds=3, sample_rows=6000) == QUICK
    assert pod_ids() == list(PODS)


def test_round_overhead_is_wall_time_minus_the_slowest_pod() -> None:
    """The pods train in parallel: the overhead subtracts the slowest pod's time only."""
    figures = _round(0.100, 0.080, 0.050, 0.010)
    assert figures.slowest_train_s == pytest.approx(0.080)
    assert figures.overhead_ms == pytest.approx(20.0)
    assert _round(0.030).overhead_ms == pytest.approx(30.0)


def test_round_figures_come_from_a_round_record() -> None:
    """A RoundRecord's seconds and train_seconds are carried over as they are."""
    record = RoundRecord(
        round=0, samples={}, train_loss={}, metrics={}, combined={}, seconds=0.25,
        train_seconds={"alice/census": 0.2, "carol/census": 0.1},
    )  # fmt: skip
    figures = RoundFigures.of(record)
    assert figures.seconds == 0.25
    assert dict(figures.train_seconds) == {"alice/census": 0.2, "carol/census": 0.1}
    assert figures.overhead_ms == pytest.approx(50.0)


def test_report_figures() -> None:
    """Mean and max overhead, training summed over rounds, the rest of the task as
    overhead, the accuracy gap in points and the time ratio."""
    report = _report()
    assert report.overheads_ms == pytest.approx([20.0, 10.0])
    assert report.overhead_ms_mean == pytest.approx(15.0)
    assert report.overhead_ms_max == pytest.approx(20.0)
    assert report.train_s == pytest.approx(0.130)
    assert report.rounds_s == pytest.approx(0.160)
    assert report.total_overhead_s == pytest.approx(0.370)
    assert report.accuracy_gap_points == pytest.approx(-0.75)
    assert report.ratio_vs_central == pytest.approx(2.0)


def test_a_report_without_rounds_is_refused() -> None:
    """No rounds: a ValueError saying so (a mean over nothing would be meaningless)."""
    with pytest.raises(ValueError, match="no rounds"):
        _report(rounds=())


@pytest.mark.parametrize(
    ("overhead_s", "first_s", "met"),
    [
        (0.010, 0.2, True),
        (TARGET_OVERHEAD_MS / 1000 + 0.001, 0.2, False),
        (0.010, TARGET_FIRST_ROUND_MS / 1000 + 0.001, False),
    ],
)
def test_target_needs_both_the_overhead_and_the_first_round(
    overhead_s: float, first_s: float, met: bool
) -> None:
    """The target is met only when the mean overhead and the time to the first round are
    both under their limits (the cold figure does not count)."""
    report = _report(rounds=(_round(0.1 + overhead_s, 0.1),), time_to_first_round_s=first_s)
    assert report.target_met is met


def test_table_lists_every_round_and_the_verdicts() -> None:
    """One line per round with its overhead, the totals, and MISSED where a target is."""
    report = _report(time_to_first_round_s=1.5)
    table = format_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["round", "wall_ms", "train_ms", "overhead_ms"]
    assert lines[1].split() == ["1", "100.0", "80.0", "20.0"]
    assert lines[2].split() == ["2", "60.0", "50.0", "10.0"]
    mean_line = next(line for line in lines if line.startswith("overhead per round, mean"))
    assert mean_line.split()[-2:] == ["15.0", "ok"]
    first_line = next(line for line in lines if line.startswith("submit to first round"))
    assert first_line.split()[-2:] == ["1500.0", "MISSED"]
    assert "-0.75" in table
    assert "0.8475" in table


def test_summary_is_one_json_line_with_the_issue_s_keys() -> None:
    """The JSON line holds the keys the issue asks for, with the report's values."""
    line = json.dumps(summary(_report(), QUICK, quick=True))
    assert "\n" not in line
    data = json.loads(line)
    assert data["overhead_ms_per_round"] == 15.0
    assert data["overhead_ms_max"] == 20.0
    assert data["time_to_first_round_ms"] == 200.0
    assert data["time_to_first_round_cold_ms"] == 1400.0
    assert data["total_s"] == 0.5
    assert data["central_s"] == 0.25
    assert data["accuracy_federated"] == 0.84
    assert data["accuracy_central"] == 0.8475
    assert math.isclose(data["accuracy_gap_points"], -0.75)
    assert data["rounds"] == 2
    assert data["rounds_asked"] == QUICK.rounds
    assert data["quick"] is True
    assert data["target_met"] is True
    assert data["rows"] == {"alice/census": 100, "carol/census": 20, "dave/census": 10}


def test_summary_reports_a_missed_target() -> None:
    """A mean overhead over the limit: target_met is false in the JSON line."""
    report = _report(rounds=(_round(0.2, 0.1),))
    data = summary(report, FULL, quick=False)
    assert data["overhead_ms_per_round"] == 100.0
    assert data["quick"] is False
    assert data["target_met"] is False
