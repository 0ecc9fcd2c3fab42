"""The tutorials run as written against a live federation: a hub process, three
``podium run-pod`` processes on the census shares (non-IID by race), bob's API key in the
environment; each page's YAML task through ``podium run-task`` and each Python example."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from podium.data.census import write_census_pods
from tests.e2e.test_run_task import _grant, _pod
from tests.integration.test_hub_serve import _environ, running_hub
from tests.integration.test_run_pod import _seed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: Each page, the folder its YAML task writes, and what each Python example prints.
PAGES = {
    "tutorial-analytics.md": (
        "results/1-Statistics/combined.csv",
        ["alice/census-2", "32561", "alice/census-3 completed"],
    ),
    "tutorial-learning.md": ("model/model-card.json", ["test accuracy 0.8", "report rows"]),
}


def _blocks(page: Path, language: str) -> list[str]:
    pattern = re.compile(rf"^```{language}\n(.*?)^```", re.DOTALL | re.MULTILINE)
    return pattern.findall(page.read_text())


def _out_folder(command: str) -> str:
    """The ``--out`` folder of the page's run-task command."""
    match = re.search(r"podium run-task \S+ --out (\S+)", command)
    assert match is not None, "the page runs its task with --out"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_tutorial_runs_against_three_pods(tmp_path: Path, name: str) -> None:
    """The page's YAML task exits 0 and writes its files; every Python example exits 0
    and prints what the page says it prints."""
    page = REPO / "docs" / name
    written, shown = PAGES[name]
    keys = _seed(tmp_path / "hub")
    shares = write_census_pods(tmp_path / "pods", 3, by="race")
    pods = [f"alice/{share.name}" for share in shares]
    pod_env = {**_environ(tmp_path / "pod-home"), "PODIUM_API_KEY": keys["alice"]}
    (task_yaml,) = [block for block in _blocks(page, "yaml") if "identifiers:" in block]
    (command,) = [b for b in _blocks(page, "bash") if "podium run-task" in b]
    task = tmp_path / "task.yaml"
    task.write_text(task_yaml)
    hub_env = _environ(tmp_path / "hub-home")
    with running_hub(hub_env, "--data-dir", str(tmp_path / "hub")) as hub, ExitStack() as stack:
        for share in shares:
            stack.enter_context(_pod(pod_env, hub.url, share))
        asyncio.run(_grant(hub.url, keys["alice"], pods, "general-modeller"))
        bob_env = {
            **_environ(tmp_path / "bob-home"),
            "PODIUM_API_KEY": keys["bob"],
            "PODIUM_HUB": hub.url,
        }
        yaml_run = subprocess.run(
            [sys.executable, "-m", "podium", "run-task", str(task), "--out",
             _out_folder(command)],
            cwd=tmp_path, capture_output=True, text=True, env=bob_env, timeout=300, check=False,
        )  # fmt: skip
        assert yaml_run.returncode == 0, yaml_run.stderr
        assert (tmp_path / written).is_file()
        examples = _blocks(page, "python")
        assert len(examples) == len(shown)
        for number, (code, expected) in enumerate(zip(examples, shown, strict=True), start=1):
            result = subprocess.run(
                [sys.executable, "-c", code],
                cwd=REPO, capture_output=True, text=True, env=bob_env, timeout=300, check=False,
            )  # fmt: skip
            assert result.returncode == 0, f"example {number}:\n{result.stderr}"
            assert expected in result.stdout, f"example {number} printed:\n{result.stdout}"
