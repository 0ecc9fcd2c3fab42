"""End to end as a user runs it: ``podium hub serve``, three ``podium run-pod`` processes
on non-IID census shares, and ``podium run-task TASK.yaml`` in Bitfount's task format;
the numbers are checked against pandas on the same files, and each refusal path (no
grant, a wrong role, an offline pod with ``require_all_pods``) exits 7 saying why."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from podium.data.census import CensusPod, write_census_pods
from podium.hub.client import HubClient
from tests.integration.test_hub_serve import _environ, running_hub
from tests.integration.test_run_pod import _seed, running_pod

pytestmark = pytest.mark.integration

WAIT_S = 90.0
SQL = (
    'SELECT gender, COUNT(*) AS n, SUM(age) AS sum_age FROM "census" '
    "GROUP BY gender ORDER BY gender"
)


@contextmanager
def _pod(env: dict[str, str], hub_url: str, share: CensusPod) -> Iterator[subprocess.Popen[str]]:
    """``podium run-pod`` on one share until its ready line; Ctrl-C afterwards."""
    with running_pod(env, hub_url, share.config, f"alice/{share.name}") as process:
        yield process
    assert "Traceback" not in process.stderr_all  # type: ignore[attr-defined]


def _task_file(folder: Path, pods: list[str], *, require_all: bool = True) -> Path:
    task = {
        "pods": {"identifiers": pods},
        "task": {
            "protocol": {"name": "bitfount.ResultsOnly"},
            "algorithm": [
                {"name": "bitfount.SqlQuery", "arguments": {"query": SQL, "table": "census"}},
                {"name": "Statistics", "arguments": {"columns": ["age", "hours-per-week"]}},
            ],
        },
        "require_all_pods": require_all,
        "batched_execution": True,
    }
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    return path


def _run_task(
    env: dict[str, str], hub_url: str, task: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", "run-task", str(task), "--hub", hub_url, "--json",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=WAIT_S, check=False,
    )  # fmt: skip


async def _grant(url: str, key: str, pods: list[str], role: str) -> None:
    async with HubClient(url, token=key) as alice:
        for pod in pods:
            await alice.grant(pod, "bob", role)


async def _wait_offline(url: str, key: str, pod: str) -> None:
    deadline = time.monotonic() + 30
    async with HubClient(url, token=key) as alice:
        while (await alice.get_pod(pod)).status != "offline":
            assert time.monotonic() < deadline, f"{pod} still shows online"
            await asyncio.sleep(0.2)


@pytest.fixture
def shares(tmp_path: Path) -> list[CensusPod]:
    return write_census_pods(tmp_path / "pods", 3, by="race")


def test_run_task_on_three_pods_matches_pandas(tmp_path: Path, shares: list[CensusPod]) -> None:
    """SQL per pod and statistics over the pods, from Bitfount-style YAML, equal pandas."""
    keys = _seed(tmp_path / "hub")
    pod_env = {**_environ(tmp_path / "pod-home"), "PODIUM_API_KEY": keys["alice"]}
    bob_env = {**_environ(tmp_path / "bob-home"), "PODIUM_API_KEY": keys["bob"]}
    pods = [f"alice/{share.name}" for share in shares]
    with (
        running_hub(_environ(tmp_path / "hub-home"), "--data-dir", str(tmp_path / "hub")) as hub,
        ExitStack() as stack,
    ):
        for share in shares:
            stack.enter_context(_pod(pod_env, hub.url, share))
        asyncio.run(_grant(hub.url, keys["alice"], pods, "general-modeller"))
        result = _run_task(bob_env, hub.url, _task_file(tmp_path, pods), tmp_path / "out")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {pod: state["outcome"] for pod, state in document["pods"].items()} == dict.fromkeys(
        pods, "completed"
    )
    sql, stats = document["algorithms"]
    frames = {f"alice/{s.name}": pd.read_csv(s.csv) for s in shares}
    for pod, frame in frames.items():
        expected = frame.groupby("gender").agg(n=("age", "size"), sum_age=("age", "sum"))
        got = pd.DataFrame(sql["per_pod"][pod]).set_index("gender")
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    pooled = pd.concat(frames.values(), ignore_index=True)
    combined = {row["column"]: row for row in stats["combined"]}
    for column in ("age", "hours-per-week"):
        assert combined[column]["count"] == pooled[column].count()
        assert combined[column]["mean"] == pytest.approx(pooled[column].mean(), rel=1e-12)
        assert combined[column]["max"] == pooled[column].max()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["task_hash"] == document["task_hash"]
    assert pd.read_csv(tmp_path / "out" / "0-SqlQuery" / "combined.csv")["n"].sum() == len(pooled)


def test_refusals_exit_7_and_say_why(tmp_path: Path, shares: list[CensusPod]) -> None:
    """No grant, then a viewer's role, then an offline pod with require_all_pods."""
    keys = _seed(tmp_path / "hub")
    pod_env = {**_environ(tmp_path / "pod-home"), "PODIUM_API_KEY": keys["alice"]}
    bob_env = {**_environ(tmp_path / "bob-home"), "PODIUM_API_KEY": keys["bob"]}
    two = shares[:2]
    pods = [f"alice/{share.name}" for share in two]
    task = _task_file(tmp_path, pods)
    hub_home = _environ(tmp_path / "hub-home")
    options = ("--data-dir", str(tmp_path / "hub"), "--heartbeat-interval", "0.5")
    with running_hub(hub_home, *options) as hub, ExitStack() as stack:
        first = stack.enter_context(_pod(pod_env, hub.url, two[0]))
        with _pod(pod_env, hub.url, two[1]):
            no_grant = _run_task(bob_env, hub.url, task, tmp_path / "o1")
            asyncio.run(_grant(hub.url, keys["alice"], pods, "viewer"))
            viewer = _run_task(bob_env, hub.url, task, tmp_path / "o2")
            asyncio.run(_grant(hub.url, keys["alice"], pods, "general-modeller"))
        asyncio.run(_wait_offline(hub.url, keys["alice"], pods[1]))
        offline = _run_task(bob_env, hub.url, task, tmp_path / "o3")
        assert first.poll() is None
    assert no_grant.returncode == 7, no_grant.stderr
    assert "has not granted you a role" in no_grant.stderr
    assert viewer.returncode == 7, viewer.stderr
    assert "hub-refused: missing-role" in viewer.stderr
    assert offline.returncode == 7, offline.stderr
    assert "the pod is offline" in offline.stderr
    for result in (no_grant, viewer, offline):
        assert "Traceback" not in result.stderr


def test_federated_training_from_bitfount_style_yaml(
    tmp_path: Path, shares: list[CensusPod]
) -> None:
    """A FederatedAveraging task file (model and data structure at the task level, as
    Bitfount writes them) trains across three run-pod processes; the model, its card and
    the plot are written, and the test accuracy is reported. Then task files naming the
    saved model's card evaluate it on every pod and write predictions into a CSV report on
    each pod."""
    keys = _seed(tmp_path / "hub")
    pod_env = {**_environ(tmp_path / "pod-home"), "PODIUM_API_KEY": keys["alice"]}
    bob_env = {**_environ(tmp_path / "bob-home"), "PODIUM_API_KEY": keys["bob"]}
    pods = [f"alice/{share.name}" for share in shares]
    task = {
        "pods": {"identifiers": pods},
        "task": {
            "protocol": {
                "name": "bitfount.FederatedAveraging",
                "arguments": {"rounds": 3, "epochs_between_parameter_updates": 1},
            },
            "algorithm": {"name": "bitfount.FederatedModelTraining"},
            "model": {"name": "TabularMLP", "hyperparameters": {"hidden": [32]}},
            "data_structure": {
                "table_config": {"table": "census"},
                "assign": {"target": "TARGET"},
                "data_split": {"data_splitter": "percentage", "args": {"test_percentage": 20}},
            },
        },
        "require_all_pods": True,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(task))
    with (
        running_hub(_environ(tmp_path / "hub-home"), "--data-dir", str(tmp_path / "hub")) as hub,
        ExitStack() as stack,
    ):
        for share in shares:
            stack.enter_context(_pod(pod_env, hub.url, share))
        asyncio.run(_grant(hub.url, keys["alice"], pods, "general-modeller"))
        result = _run_task(bob_env, hub.url, path, tmp_path / "model")
        evaluation, report = _evaluate_and_report(bob_env, hub.url, pods, tmp_path)
    assert result.returncode == 0, result.stderr
    assert evaluation.returncode == 0, evaluation.stderr
    scores = json.loads(evaluation.stdout)["algorithms"][0]
    assert scores["name"] == "ModelEvaluation"
    assert scores["combined"][0]["accuracy"] > 0.78
    assert set(scores["per_pod"]) == set(pods)
    assert report.returncode == 0, report.stderr
    summaries = json.loads(report.stdout)["algorithms"][1]["per_pod"]
    assert sum(row[0]["rows"] for row in summaries.values()) == sum(s.rows for s in shares)
    for share in shares:
        written = tmp_path / "pod-home" / "pods" / "alice" / share.name / "outputs" / "scored.csv"
        assert len(pd.read_csv(written)) == share.rows
    document = json.loads(result.stdout)
    assert [r["round"] for r in document["training"]["rounds"]] == [1, 2, 3]
    assert document["training"]["test_combined"]["accuracy"] > 0.78
    card = json.loads((tmp_path / "model" / "model-card.json").read_text())
    assert card["model"]["name"] == "TabularMLP"
    assert sorted(card["pods"]) == pods
    assert (tmp_path / "model" / "model.safetensors").stat().st_size > 1000
    assert (tmp_path / "model" / "metrics.png").stat().st_size > 1000


def _evaluate_and_report(
    env: dict[str, str], hub_url: str, pods: list[str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Task files naming the saved model's card: an evaluation, an inference report."""
    saved = {"card": "model/model-card.json"}
    evaluation = {
        "pods": {"identifiers": pods},
        "task": {
            "protocol": {"name": "ResultsOnly"},
            "algorithm": {"name": "ModelEvaluation"},
            "model": saved,
            "data_structure": {"target": "TARGET"},
        },
    }
    report = {
        "pods": {"identifiers": pods},
        "task": {
            "protocol": {"name": "InferenceAndCSVReport"},
            "algorithm": [
                {"name": "ModelInference"},
                {"name": "CSVReportAlgorithm", "arguments": {"filename": "scored.csv"}},
            ],
            "model": saved,
        },
        "batched_execution": True,
    }
    results = []
    for name, task in (("evaluate", evaluation), ("report", report)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(task))
        results.append(_run_task(env, hub_url, path, tmp_path / f"out-{name}"))
    return results[0], results[1]
