"""The heartbeat benchmark's figures: percentiles, the table and the JSON line."""

from __future__ import annotations

import json
import math

from bench.heartbeats import (
    OWNER,
    BackendResult,
    PhaseResult,
    Sizes,
    format_table,
    health_load,
    heartbeat_load,
    percentile,
    summary,
)

SIZES = Sizes(pods=3, warmup_s=1.0, window_s=10.0)


def phase(latencies: list[float], *, errors: int = 0, hub_cpu_s: float = 1.0) -> PhaseResult:
    """A phase over a 10 s window with the given latencies."""
    return PhaseResult(tuple(latencies), errors, wall_s=10.0, hub_cpu_s=hub_cpu_s, client_cpu_s=0.5)


def test_percentile_interpolates_between_closest_ranks() -> None:
    """Percentiles match numpy's default (linear) method, whatever the input order."""
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 100) == 40.0
    assert math.isclose(percentile(values, 99), 39.7)


def test_percentile_of_one_value_and_of_none() -> None:
    """One value is every percentile; no values give NaN."""
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_phase_figures_count_errors_as_requests() -> None:
    """Rate and CPU share are over the window; errors count as sent requests."""
    result = phase([1.0, 2.0, 3.0], errors=1, hub_cpu_s=0.8)
    assert result.requests == 4
    assert result.rate == 0.4
    assert math.isclose(result.cpu_share, 0.08)
    assert result.p50_ms == 2.0


def test_backend_result_ratios_and_targets() -> None:
    """Ratios divide heartbeat by baseline; a target is missed by CPU, p99 or an error."""
    fast = BackendResult("sqlite", 3, phase([4.0, 6.0], hub_cpu_s=0.5), phase([2.0, 3.0]))
    assert math.isclose(fast.cpu_ratio, 0.5)
    assert math.isclose(fast.p99_ratio, 5.98 / 2.99)
    assert fast.met
    busy = BackendResult("sqlite", 3, phase([4.0], hub_cpu_s=1.0), phase([2.0]))
    slow = BackendResult("sqlite", 3, phase([4.0, 60.0], hub_cpu_s=0.5), phase([2.0]))
    failing = BackendResult("sqlite", 3, phase([4.0], errors=1, hub_cpu_s=0.5), phase([2.0]))
    assert not busy.met
    assert not slow.met
    assert not failing.met


def test_table_has_a_row_per_backend_with_its_verdict() -> None:
    """The table shows each backend's figures, formatted, and ok or MISSED."""
    results = [
        BackendResult("sqlite", 1000, phase([4.0, 6.0], hub_cpu_s=0.5), phase([2.0])),
        BackendResult("postgresql", 1000, phase([80.0], hub_cpu_s=2.5), phase([2.0])),
    ]
    lines = format_table(results).splitlines()
    assert lines[0].split()[:6] == ["backend", "pods", "req/s", "cpu_share", "p50_ms", "p99_ms"]
    assert len(lines) == 4
    assert lines[2].split() == [
        "sqlite", "1,000", "0.2", "0.050", "5.00", "5.98", "0",
        "0.100", "2.00", "0.50", "2.99", "ok",
    ]  # fmt: skip
    assert lines[3].startswith("postgresql")
    assert lines[3].endswith("MISSED")


def test_summary_reports_the_worst_backend_and_each_backends_figures() -> None:
    """The JSON line's cpu_share and p99_ms are the worst across backends."""
    results = [
        BackendResult("sqlite", 3, phase([4.0], hub_cpu_s=0.5), phase([2.0])),
        BackendResult("postgresql", 3, phase([9.0], hub_cpu_s=0.3), phase([1.0], errors=2)),
    ]
    figures = json.loads(json.dumps(summary(results, sizes=SIZES, skipped=[])))
    assert figures["pods"] == 3
    assert figures["cpu_share"] == 0.05
    assert figures["p99_ms"] == 9.0
    assert figures["errors"] == 2
    assert figures["target_met"] is None  # targets are for 1,000 pods
    assert figures["postgresql_base_errors"] == 2
    assert figures["sqlite_cpu_ratio"] == 0.5


def test_loads_give_each_pod_its_own_heartbeat_path() -> None:
    """Heartbeats go to each pod's own path with the API key; the baseline needs no key."""
    beats = heartbeat_load(3, "pdm_0123456789ab_secret")
    assert beats.method == "POST"
    assert len(set(beats.paths)) == 3
    assert beats.paths[0] == f"/api/v1/pods/{OWNER}/pod-00000/heartbeat"
    assert beats.headers == {"Authorization": "Bearer pdm_0123456789ab_secret"}
    base = health_load(3)
    assert base.paths == ("/api/v1/health",) * 3
    assert base.headers == {}


def test_targets_apply_to_full_size_runs_only() -> None:
    """A run of 1,000 pods gets a verdict; a quick run of fewer pods gets none."""
    full = BackendResult("sqlite", 1000, phase([4.0], hub_cpu_s=0.5), phase([2.0]))
    quick = BackendResult("sqlite", 200, phase([4.0], hub_cpu_s=0.5), phase([2.0]))
    assert summary([full], sizes=SIZES)["target_met"] is True
    assert summary([full, quick], sizes=SIZES)["target_met"] is None
    assert format_table([quick]).splitlines()[2].endswith(" -")
