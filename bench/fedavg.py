"""Benchmark ``fedavg``: federated averaging's orchestration overhead against central training.

The federation is ``bench._federation``'s: the hub runs in a child process
(``bench._hub_process``) over SQLite, seeded with the modeller ``bob`` and the pod owners
``alice``, ``carol`` and ``dave``, each with an API key. Three pods (``<owner>/census``),
:class:`PodService` with :class:`TaskWorkers` over a :class:`DataFrameSource`, and the
:class:`Modeller` share this process and one event loop; every message between them goes
through the hub's relay over loopback. The pods train in worker threads of this process,
in parallel.

Data: the census-income rows (quick: a 6,000-row sample), split non-IID by ``race`` into
three shares with :func:`podium.data.splitting.split_frame`. Model: ``TabularMLP`` (hidden
``[64, 32]``, learning rate 0.003), one local epoch a round, 10 rounds (quick: 3).

Measured:

- **Overhead per round**: the round's wall time on the modeller (weights out to averaged
  weights back) minus the slowest pod's own training time for that round (measured on
  the pod: load the weights, train, serialise). Mean and max over the rounds.
- **Time to the first round**: from calling ``run_async`` to the first weights going out
  (``TrainingResult.first_round_started``): hub requests, task set-up, the pods' splits
  and moments, the modeller's plan. The task object is built before the clock starts
  (building the first one imports torch, about 1 s). A one-round warm-up task runs first
  on the same pods (first-use costs of the training code); its time to the first round
  is reported too, as the cold figure.
- **Central baseline**, in the same run: the same model (the federated result's features,
  the normalisation from the pooled training splits' moments, the same seed) trained on the
  pooled training rows for as many epochs as there were rounds, tested on the pooled test
  rows. Its accuracy against the federated test accuracy, and its wall time against the
  whole federated task's.

The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench._federation import MODELLER, PodSpec, bench_hub, podium_home, running_pods, verdict
from podium.algorithms.model_training import FederatedModelTraining
from podium.core.crypto import SigningKeyPair
from podium.data.census import CENSUS_CATEGORICAL, load_census
from podium.data.schema import infer_schema
from podium.data.sources.frame_source import DataFrameSource
from podium.data.splitting import split_frame
from podium.modeller import Modeller
from podium.pod.pod import registration
from podium.pod.tasks import TaskWorkers
from podium.protocols.fedavg import FederatedAveraging, RoundRecord, TrainingResult

KEY_NAME = "fedavg-bench"
OWNERS = ("alice", "carol", "dave")
POD_NAME = "census"
SEED = 3
SPLIT_BY = "race"
IDLE_TIMEOUT_S = 10.0
TARGET_OVERHEAD_MS = 50.0
TARGET_FIRST_ROUND_MS = 1000.0

STRUCTURE: dict[str, Any] = {"target": "TARGET", "ignore_cols": ["fnlwgt"]}
MODEL: dict[str, Any] = {
    "name": "TabularMLP",
    "hyperparameters": {"hidden": [64, 32], "learning_rate": 0.003},
}
FORCE_STYPES: dict[str, str] = dict.fromkeys(CENSUS_CATEGORICAL, "categorical")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much to run: rounds (one local epoch each) and the rows used (None: all)."""

    rounds: int
    sample_rows: int | None


FULL = Sizes(rounds=10, sample_rows=None)
QUICK = Sizes(rounds=3, sample_rows=6000)


# -- data ------------------------------------------------------------------------------


def census_shares(sizes: Sizes) -> list[pd.DataFrame]:
    """The census rows (or a seeded sample of them), split non-IID by race into one share
    per pod."""
    frame = load_census()
    if sizes.sample_rows is not None and sizes.sample_rows < len(frame):
        frame = frame.sample(sizes.sample_rows, random_state=SEED).reset_index(drop=True)
    return split_frame(frame, len(OWNERS), by=SPLIT_BY, seed=0)


def pod_ids() -> list[str]:
    """The pods' ids, one per owner."""
    return [f"{owner}/{POD_NAME}" for owner in OWNERS]


# -- figures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundFigures:
    """One round as the modeller saw it: its wall time and each pod's training time, s."""

    seconds: float
    train_seconds: Mapping[str, float]

    @classmethod
    def of(cls, record: RoundRecord) -> RoundFigures:
        """The figures of one round of a training result."""
        return cls(record.seconds, dict(record.train_seconds))

    @property
    def slowest_train_s(self) -> float:
        """The slowest pod's own training time (the pods train in parallel)."""
        return max(self.train_seconds.values(), default=0.0)

    @property
    def overhead_ms(self) -> float:
        """Round wall time minus the slowest pod's training time, in ms."""
        return (self.seconds - self.slowest_train_s) * 1000


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one run measured, times in seconds."""

    rounds: tuple[RoundFigures, ...]
    time_to_first_round_s: float
    cold_first_round_s: float
    total_s: float
    central_s: float
    central_train_s: float
    accuracy_federated: float
    accuracy_central: float
    rows: Mapping[str, int]

    def __post_init__(self) -> None:
        if not self.rounds:
            raise ValueError("Report: the federated run recorded no rounds")

    @property
    def overheads_ms(self) -> list[float]:
        """Each round's overhead, in ms."""
        return [r.overhead_ms for r in self.rounds]

    @property
    def overhead_ms_mean(self) -> float:
        """The mean overhead per round, in ms."""
        return sum(self.overheads_ms) / len(self.rounds)

    @property
    def overhead_ms_max(self) -> float:
        """The largest overhead of a round, in ms."""
        return max(self.overheads_ms)

    @property
    def train_s(self) -> float:
        """The pods' own training time, summed over rounds (slowest pod each round)."""
        return sum(r.slowest_train_s for r in self.rounds)

    @property
    def rounds_s(self) -> float:
        """The rounds' wall time, summed."""
        return sum(r.seconds for r in self.rounds)

    @property
    def total_overhead_s(self) -> float:
        """The whole task's time minus the pods' own training time."""
        return self.total_s - self.train_s

    @property
    def accuracy_gap_points(self) -> float:
        """Federated minus central test accuracy, in percentage points."""
        return (self.accuracy_federated - self.accuracy_central) * 100

    @property
    def ratio_vs_central(self) -> float:
        """The whole federated task's time over the central run's."""
        return self.total_s / self.central_s

    @property
    def target_met(self) -> bool:
        """Mean overhead under 50 ms a round and the first round within 1 s of submitting."""
        return (
            self.overhead_ms_mean < TARGET_OVERHEAD_MS
            and self.time_to_first_round_s * 1000 < TARGET_FIRST_ROUND_MS
        )


def format_table(report: Report) -> str:
    """The rounds and the totals as fixed-width text tables."""
    lines = [f"{'round':>5}{'wall_ms':>10}{'train_ms':>10}{'overhead_ms':>13}"]
    for number, figures in enumerate(report.rounds, start=1):
        lines.append(
            f"{number:>5}{figures.seconds * 1000:>10.1f}{figures.slowest_train_s * 1000:>10.1f}"
            f"{figures.overhead_ms:>13.1f}"
        )
    width = 40
    first_ms = report.time_to_first_round_s * 1000
    lines += [
        "",
        f"{'':<{width}}{'value':>12}{'target':>10}",
        f"{'overhead per round, mean (ms)':<{width}}{report.overhead_ms_mean:>12.1f}"
        f"{verdict(report.overhead_ms_mean < TARGET_OVERHEAD_MS):>10}",
        f"{'overhead per round, max (ms)':<{width}}{report.overhead_ms_max:>12.1f}{'-':>10}",
        f"{'submit to first round (ms)':<{width}}{first_ms:>12.1f}"
        f"{verdict(first_ms < TARGET_FIRST_ROUND_MS):>10}",
        f"{'  cold (first task in the process, ms)':<{width}}"
        f"{report.cold_first_round_s * 1000:>12.1f}{'-':>10}",
        f"{'federated task, submit to result (s)':<{width}}{report.total_s:>12.3f}{'-':>10}",
        f"{'  of which pods training (s)':<{width}}{report.train_s:>12.3f}{'-':>10}",
        f"{'  of which overhead (s)':<{width}}{report.total_overhead_s:>12.3f}{'-':>10}",
        f"{'central, same model (s)':<{width}}{report.central_s:>12.3f}{'-':>10}",
        f"{'  of which training (s)':<{width}}{report.central_train_s:>12.3f}{'-':>10}",
        f"{'federated / central time':<{width}}{report.ratio_vs_central:>12.2f}{'-':>10}",
        f"{'accuracy federated (test, pooled)':<{width}}{report.accuracy_federated:>12.4f}"
        f"{'-':>10}",
        f"{'accuracy central (test, pooled)':<{width}}{report.accuracy_central:>12.4f}{'-':>10}",
        f"{'gap (points, federated - central)':<{width}}{report.accuracy_gap_points:>+12.2f}"
        f"{'-':>10}",
    ]
    return "\n".join(lines)


def summary(report: Report, sizes: Sizes, *, quick: bool) -> dict[str, object]:
    """The JSON line."""
    return {
        "benchmark": "fedavg",
        "quick": quick,
        "pods": len(OWNERS),
        "split": f"non-IID by {SPLIT_BY}",
        "rows": dict(report.rows),
        "rounds": len(report.rounds),
        "rounds_asked": sizes.rounds,
        "overhead_ms_per_round": round(report.overhead_ms_mean, 2),
        "overhead_ms_max": round(report.overhead_ms_max, 2),
        "overhead_ms_rounds": [round(v, 2) for v in report.overheads_ms],
        "time_to_first_round_ms": round(report.time_to_first_round_s * 1000, 1),
        "time_to_first_round_cold_ms": round(report.cold_first_round_s * 1000, 1),
        "total_s": round(report.total_s, 3),
        "train_s": round(report.train_s, 3),
        "total_overhead_s": round(report.total_overhead_s, 3),
        "central_s": round(report.central_s, 3),
        "central_train_s": round(report.central_train_s, 3),
        "federated_vs_central": round(report.ratio_vs_central, 2),
        "accuracy_federated": round(report.accuracy_federated, 4),
        "accuracy_central": round(report.accuracy_central, 4),
        "accuracy_gap_points": round(report.accuracy_gap_points, 2),
        "in_process": "pods (parallel threads) and modeller share one process; hub in its own",
        "target_met": report.target_met,
    }


# -- the central baseline --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Central:
    """The central run's test accuracy and times, s."""

    accuracy: float
    seconds: float
    train_seconds: float


def central_baseline(
    shares: Sequence[pd.DataFrame], result: TrainingResult, epochs: int
) -> Central:
    """The same model trained on the pooled training rows (each pod's own split), with the
    federated result's features and the pooled training rows' normalisation, for
    ``epochs`` epochs; tested on the pooled test rows."""
    from podium.models.data_structure import DataStructure  # noqa: PLC0415 - needs torch
    from podium.models.features import (  # noqa: PLC0415
        Normalisation,
        TabularEncoder,
        TabularFeatures,
        moments_of,
    )
    from podium.models.registry import build_model  # noqa: PLC0415
    from podium.models.training import TabularTensors, evaluate, train  # noqa: PLC0415

    began = time.perf_counter()
    structure = DataStructure.from_definition(STRUCTURE)
    splits = [structure.split(share, seed=SEED) for share in shares]
    features = TabularFeatures.from_definition(result.features)
    pooled_train = pd.concat([s.train for s in splits], ignore_index=True)
    pooled_test = pd.concat([s.test for s in splits], ignore_index=True)
    moments = moments_of(pooled_train, list(features.continuous))
    encoder = TabularEncoder(features, Normalisation.from_moments(moments))
    model = build_model(
        MODEL["name"],
        MODEL["hyperparameters"],
        cardinalities=encoder.cardinalities,
        n_continuous=encoder.n_continuous,
        n_outputs=len(features.classes),
        seed=SEED,
    )
    tensors = TabularTensors.from_encoded(encoder.encode(pooled_train))
    train_began = time.perf_counter()
    train(model, tensors, epochs=epochs, seed=SEED, task="classification")
    train_seconds = time.perf_counter() - train_began
    test = TabularTensors.from_encoded(encoder.encode(pooled_test))
    metrics = evaluate(model, test, task="classification")
    return Central(float(metrics["accuracy"]), time.perf_counter() - began, train_seconds)


# -- the federation --------------------------------------------------------------------


def pod_specs(shares: Sequence[pd.DataFrame]) -> dict[str, PodSpec]:
    """A pod per share (by pod id): a DataFrameSource, registered with its inferred schema."""
    specs: dict[str, PodSpec] = {}
    for pod, frame in zip(pod_ids(), shares, strict=True):
        source = DataFrameSource(frame)
        schema = infer_schema(source, name=POD_NAME, force_stypes=FORCE_STYPES)
        specs[pod] = PodSpec(source=source, registration=registration(POD_NAME, None, schema))
    return specs


async def pods_idle(workers: Sequence[TaskWorkers]) -> None:
    """Wait (up to ``IDLE_TIMEOUT_S``) until no pod runs a task: a pod finishes its side
    (recording the task's end) just after the modeller has the result."""
    async with asyncio.timeout(IDLE_TIMEOUT_S):
        while any(w.running for w in workers):
            await asyncio.sleep(0.01)


def fedavg_task(rounds: int) -> FederatedAveraging:
    """The benchmark's task: TabularMLP, one local epoch a round, ``rounds`` rounds."""
    training = FederatedModelTraining(model=MODEL, data_structure=STRUCTURE, seed=SEED)
    return FederatedAveraging(algorithm=training, rounds=rounds, epochs_between_parameter_updates=1)


async def train_federated(
    modeller: Modeller, pods: Sequence[str], rounds: int
) -> tuple[TrainingResult, float, float]:
    """Run the training task; its result, the time to the first round and the total, s
    (from submitting the task: building it, which imports torch, comes before)."""
    task = fedavg_task(rounds)
    submitted = time.monotonic()
    outcome = await modeller.run_async(task, pods)
    total = time.monotonic() - submitted
    failed = {p: s.reason for p, s in outcome.pods.items() if s.outcome != "completed"}
    result = outcome.result
    if failed or not isinstance(result, TrainingResult):
        raise RuntimeError(f"the training task did not complete on every pod: {failed}")
    return result, result.first_round_started - submitted, total


async def measure_async(
    hub: str, keys: Mapping[str, str], shares: Sequence[pd.DataFrame], tmp: Path, sizes: Sizes
) -> Report:
    """Start the pods, train federated, then the central baseline."""
    pods = pod_ids()
    modeller = Modeller(hub, token=keys[MODELLER], signing=SigningKeyPair.generate())
    print(f"starting {len(pods)} pods ...", flush=True)
    async with running_pods(pod_specs(shares), hub, keys, tmp) as workers:
        print("warm-up: one round ...", flush=True)
        _, cold_s, _ = await train_federated(modeller, pods, 1)
        await pods_idle(workers)
        print(f"federated training, {sizes.rounds} rounds ...", flush=True)
        result, first_s, total_s = await train_federated(modeller, pods, sizes.rounds)
        await pods_idle(workers)
    print(f"central training, {sizes.rounds} epochs ...", flush=True)
    central = central_baseline(shares, result, len(result.history))
    return Report(
        rounds=tuple(RoundFigures.of(r) for r in result.history),
        time_to_first_round_s=first_s,
        cold_first_round_s=cold_s,
        total_s=total_s,
        central_s=central.seconds,
        central_train_s=central.train_seconds,
        accuracy_federated=float(result.test_combined["accuracy"]),
        accuracy_central=central.accuracy,
        rows={pod: len(frame) for pod, frame in zip(pods, shares, strict=True)},
    )


def measure(sizes: Sizes) -> Report:
    """Load and split the data, start the hub, and measure."""
    shares = census_shares(sizes)
    with tempfile.TemporaryDirectory(prefix="podium-bench-fedavg-") as name:
        tmp = Path(name)
        with podium_home(tmp / "home"), bench_hub(tmp, OWNERS, key_name=KEY_NAME) as (hub, keys):
            return asyncio.run(measure_async(hub, keys, shares, tmp, sizes))


def run(*, quick: bool) -> int:
    """Run the benchmark and print its tables and JSON line."""
    sizes = QUICK if quick else FULL
    report = measure(sizes)
    print()
    print(format_table(report))
    print(
        f"\nThe hub runs in a child process (SQLite); the 3 pods and the modeller share one "
        f"process and event loop, messages through the hub's relay on loopback; the pods "
        f"train in parallel threads of that process ({os.cpu_count()} CPUs). Overhead of a "
        f"round: its wall time minus the slowest pod's own training time (which covers "
        f"loading the weights, training and serialising; the pod's validation pass after "
        f"it counts as overhead). Central: the same model, features and normalisation on "
        f"the pooled rows, in this process. Targets: overhead < {TARGET_OVERHEAD_MS:.0f} ms "
        f"a round (mean), first round < {TARGET_FIRST_ROUND_MS:.0f} ms after submitting "
        f"(measured after a one-round warm-up task; cold: the warm-up's)."
    )
    print(json.dumps(summary(report, sizes, quick=quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit("usage: python -m bench fedavg [--quick]")
