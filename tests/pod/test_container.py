"""The Docker image's entrypoint (``podium.pod.container``) and the facts of the Dockerfile.

No Docker engine runs here: the entrypoint is tested as functions and as the process the
image starts, and the Dockerfile as text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from podium.core.errors import ConfigError
from podium.pod.container import DEFAULT_CONFIG, command, resolve_config

REPO = Path(__file__).resolve().parents[2]
CENSUS_CONFIG = REPO / "examples" / "census-income.yaml"
DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file (its content is not read by the entrypoint)."""
    path = tmp_path / "config.yaml"
    path.write_text("name: a-pod\n")
    return path


def _entrypoint(
    tmp_path: Path, config: Path, *args: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m podium.pod.container ARGS`` as the image does, with this venv's
    ``podium`` on PATH (unless ``path`` replaces it) and ``PODIUM_POD_CONFIG`` set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PODIUM_POLICY", "PODIUM_HUB", "PODIUM_API_KEY"}
    }
    default_path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PATH"] = default_path if path is None else path
    env["PODIUM_POD_CONFIG"] = str(config)
    env["PODIUM_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "podium.pod.container", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# resolve_config


def test_default_config_is_under_mount_config() -> None:
    """The image reads /mount/config/config.yaml unless told otherwise."""
    assert Path("/mount/config/config.yaml") == DEFAULT_CONFIG


def test_resolve_config_without_override_tries_the_default() -> None:
    """With no PODIUM_POD_CONFIG the default path is the one tried (absent here)."""
    if DEFAULT_CONFIG.is_file():  # pragma: no cover - only inside the image
        assert resolve_config({}) == DEFAULT_CONFIG
        return
    with pytest.raises(ConfigError, match=re.escape(str(DEFAULT_CONFIG))):
        resolve_config({})


def test_resolve_config_override(config: Path) -> None:
    """PODIUM_POD_CONFIG names the config file to use."""
    assert resolve_config({"PODIUM_POD_CONFIG": str(config)}) == config


def test_blank_override_falls_back_to_the_default() -> None:
    """A blank PODIUM_POD_CONFIG counts as unset."""
    if DEFAULT_CONFIG.is_file():  # pragma: no cover - only inside the image
        assert resolve_config({"PODIUM_POD_CONFIG": "  "}) == DEFAULT_CONFIG
        return
    with pytest.raises(ConfigError, match=re.escape(str(DEFAULT_CONFIG))):
        resolve_config({"PODIUM_POD_CONFIG": "  "})


def test_missing_config_says_where_and_how_to_mount_it(tmp_path: Path) -> None:
    """A missing config names the path, the mount to add and the variable to set."""
    missing = tmp_path / "nowhere" / "config.yaml"
    with pytest.raises(ConfigError) as caught:
        resolve_config({"PODIUM_POD_CONFIG": str(missing)})
    message = str(caught.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "-v HOST_DIR:/mount/config:ro" in message
    assert "PODIUM_POD_CONFIG" in message


def test_config_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    """A folder mounted where the config file should be is an error, not a crash later."""
    with pytest.raises(ConfigError, match="is a folder, not a file") as caught:
        resolve_config({"PODIUM_POD_CONFIG": str(tmp_path)})
    assert str(tmp_path) in str(caught.value)


# command


def test_command_runs_the_pod_on_its_config(config: Path) -> None:
    """With no arguments the container runs `podium run-pod CONFIG`."""
    assert command({"PODIUM_POD_CONFIG": str(config)}, []) == ["podium", "run-pod", str(config)]


def test_command_passes_container_arguments_on(config: Path) -> None:
    """Arguments given to the container follow the config, in order."""
    args = ["--hub", "http://hub:8700", "--policy", "/mount/config/policy.yaml"]
    assert command({"PODIUM_POD_CONFIG": str(config)}, args) == [
        "podium",
        "run-pod",
        str(config),
        *args,
    ]


def test_podium_policy_adds_the_policy_option(config: Path) -> None:
    """PODIUM_POLICY becomes --policy when the arguments have none."""
    environ = {"PODIUM_POD_CONFIG": str(config), "PODIUM_POLICY": "/mount/config/policy.yaml"}
    assert command(environ, ["--hub", "http://hub:8700"]) == [
        "podium",
        "run-pod",
        str(config),
        "--hub",
        "http://hub:8700",
        "--policy",
        "/mount/config/policy.yaml",
    ]


@pytest.mark.parametrize("given", [["--policy", "/x/p.yaml"], ["--policy=/x/p.yaml"]])
def test_policy_argument_wins_over_podium_policy(config: Path, given: list[str]) -> None:
    """An explicit --policy argument is kept and PODIUM_POLICY is not added."""
    environ = {"PODIUM_POD_CONFIG": str(config), "PODIUM_POLICY": "/mount/config/policy.yaml"}
    assert command(environ, given) == ["podium", "run-pod", str(config), *given]


def test_podium_hub_is_left_to_run_pod(config: Path) -> None:
    """PODIUM_HUB is read by run-pod itself, so the command does not repeat it as --hub."""
    environ = {"PODIUM_POD_CONFIG": str(config), "PODIUM_HUB": "http://hub:8700"}
    assert command(environ, []) == ["podium", "run-pod", str(config)]


def test_command_raises_on_a_missing_config(tmp_path: Path) -> None:
    """No command is built without a config."""
    with pytest.raises(ConfigError):
        command({"PODIUM_POD_CONFIG": str(tmp_path / "absent.yaml")}, ["--dry-run"])


# main, as the process the image starts


def test_entrypoint_on_a_missing_config_exits_2_with_one_line(tmp_path: Path) -> None:
    """A missing config exits 2 with one line on stderr naming the path, no traceback."""
    missing = tmp_path / "nowhere" / "config.yaml"
    result = _entrypoint(tmp_path, missing)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0]
    assert "/mount/config" in lines[0]
    assert result.stdout == ""


def test_entrypoint_execs_run_pod_on_the_config(tmp_path: Path) -> None:
    """With a valid config the entrypoint becomes `podium run-pod CONFIG ARGS` (here
    --dry-run, which prints the census schema and exits 0)."""
    result = _entrypoint(tmp_path, CENSUS_CONFIG, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Pod census-income: config is valid, 1 source(s)." in result.stdout
    assert "32,561 records" in result.stdout
    assert "workclass" in result.stdout


def test_entrypoint_passes_run_pod_errors_through(tmp_path: Path, config: Path) -> None:
    """Once exec'd, run-pod's own checks and exit codes apply (an invalid config exits 2)."""
    result = _entrypoint(tmp_path, config, "--dry-run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr


def test_entrypoint_without_podium_on_path_exits_127_with_one_line(
    tmp_path: Path, config: Path
) -> None:
    """If the `podium` command cannot be found the entrypoint says so in one line (127)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = _entrypoint(tmp_path, config, path=str(empty))
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "cannot start 'podium'" in result.stderr


# the Dockerfile, as text


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def _all(keyword: str) -> list[str]:
    return [rest for key, rest in _instructions() if key == keyword]


def test_dockerfile_base_is_python_311_slim() -> None:
    """The image is built on python:3.11-slim, in one stage."""
    assert _all("FROM") == ["python:3.11-slim"]


def test_dockerfile_entrypoint_runs_the_container_module() -> None:
    """The entrypoint is `python -m podium.pod.container` in exec form, with no default args."""
    assert _all("ENTRYPOINT") == ['["python", "-m", "podium.pod.container"]']
    assert _all("CMD") == ["[]"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    """The last USER is the podium user (uid 10001), created in the image, not root."""
    users = _all("USER")
    assert users, "no USER instruction: the pod would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "podium"
    assert any("useradd" in run and "--uid 10001" in run for run in _all("RUN"))


def test_dockerfile_podium_home_is_a_volume() -> None:
    """PODIUM_HOME is /var/lib/podium, a volume owned by the podium user."""
    assert any(re.search(r"\bPODIUM_HOME=/var/lib/podium\b", env) for env in _all("ENV"))
    assert any("/var/lib/podium" in volume for volume in _all("VOLUME"))
    assert any("chown podium:podium /var/lib/podium" in run for run in _all("RUN"))
    keywords = [key for key, _ in _instructions()]
    # Changes to a volume's folder after VOLUME are discarded: chown it first.
    assert keywords.index("VOLUME") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_dockerfile_installs_the_core_package_without_a_registry_override() -> None:
    """pip installs the repository itself (no extras, so no torch) and names no index."""
    runs = " ".join(_all("RUN"))
    assert "pip install --no-cache-dir ." in runs
    assert "[ml]" not in runs
    assert "torch" not in runs
    text = DOCKERFILE.read_text()
    assert "--index-url" not in text
    assert "--extra-index-url" not in text
    assert "PIP_INDEX_URL" not in text
