"""``podium demo``: a hub, three census pods and a modeller's tasks, as real as a user's."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from podium.hub.config import HubConfig
from podium.hub.server import open_services

pytestmark = pytest.mark.integration


def test_the_demo_runs_a_federation_and_its_numbers_are_right(tmp_path: Path) -> None:
    """Three pods online; bob refused before his grant, then SQL and statistics complete on
    every pod; the numbers equal pandas on the shares; keys are 0600; results on disk."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("podium")),
            "demo",
            "--json",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    pods = ["alice/census-1", "alice/census-2", "alice/census-3"]
    assert figures["pods"] == pods
    assert figures["statuses"] == dict.fromkeys(pods, "online")
    assert figures["refused_before_grant"] is True
    assert figures["sql_completed"] == pods
    assert figures["statistics_completed"] == pods
    assert figures["statistics_match_pandas"] is True
    shares = {p: pd.read_csv(tmp_path / "pods" / f"{p.split('/')[1]}.csv") for p in pods}
    assert figures["sql_people"] == sum(len(f) for f in shares.values()) == 32561
    assert figures["statistics_count"]["age"] == 32561
    sql_per_pod = pd.read_csv(tmp_path / "results" / "sql" / "0-SqlQuery" / "alice__census-2.csv")
    expected = shares["alice/census-2"].groupby(["gender", "TARGET"]).size()
    assert sql_per_pod.set_index(["gender", "TARGET"])["people"].to_dict() == expected.to_dict()
    assert json.loads(Path(figures["sql_manifest"]).read_text())["pods"][pods[0]]["outcome"] == (
        "completed"
    )
    assert "Hub listening on http://127.0.0.1:" in result.stderr
    for key in ("signing-key.pem", "encryption-key.pem"):
        mode = stat.S_IMODE((tmp_path / "pod-keys" / "census-1" / key).stat().st_mode)
        assert mode == 0o600, key
    with open_services(HubConfig(data_dir=tmp_path / "hub")) as services:
        pod = services.store.get_pod("alice", "census-1")
        assert pod is not None
        assert pod.number_of_records == len(shares["alice/census-1"])
        assert "fnlwgt" not in {c["name"] for c in pod.schema["columns"]}


def test_the_demo_trains_a_model_with_train(tmp_path: Path) -> None:
    """--train adds federated averaging on the three pods: five rounds, a test accuracy
    near the census baseline, the model and its card on disk."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("podium")), "demo", "--train", "--json",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["training_rounds"] == 5
    assert figures["training_accuracy"] > 0.8
    assert "round 5/5" in result.stderr
    card = json.loads((tmp_path / "results" / "training" / "model-card.json").read_text())
    assert card["rounds"] == 5
