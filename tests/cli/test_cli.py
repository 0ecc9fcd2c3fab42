"""The ``podium`` command, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium._version import __version__
from podium.core.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
CENSUS_EXAMPLE = REPO / "examples" / "census-income.yaml"


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m podium ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "podium", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


def _assert_clean_failure(result: subprocess.CompletedProcess[str], code: ExitCode) -> str:
    """The command failed with ``code``, printed one error line and no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "expected an error message on stderr"
    assert lines[0].startswith("error: ")
    return result.stderr


def test_version_prints_the_package_version() -> None:
    """``podium --version`` prints the version and exits 0."""
    result = podium("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"podium {__version__}"


def test_help_lists_the_commands() -> None:
    """``podium --help`` names run-pod and schema."""
    result = podium("--help")
    assert result.returncode == 0
    assert "run-pod" in result.stdout
    assert "schema" in result.stdout


def test_dry_run_prints_the_census_schema_as_json() -> None:
    """A dry run of the census example prints its schema: forced types, fnlwgt ignored."""
    result = podium("run-pod", str(CENSUS_EXAMPLE), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["pod"] == "census-income"
    (schema,) = payload["schemas"]
    columns = {c["name"]: c for c in schema["columns"]}
    assert "fnlwgt" not in columns
    assert columns["TARGET"]["stype"] == "categorical"
    assert columns["TARGET"]["values"] == ["<=50K", ">50K"]
    assert columns["age"]["stype"] == "continuous"
    assert schema["num_records"] == 32_561
    assert schema["level"] == "full"


def test_dry_run_prints_a_table_by_default() -> None:
    """Without --json the dry run prints a table naming the pod and its columns."""
    result = podium("run_pod", str(CENSUS_EXAMPLE), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "census-income" in result.stdout
    assert "categorical" in result.stdout
    assert "32,561" in result.stdout


def test_run_pod_without_an_api_key_says_how_to_get_one(tmp_path: Path) -> None:
    """A pod runs unattended, with an API key: without one the command says how to make
    one and where to put it."""
    env = {"PODIUM_API_KEY": "", "PODIUM_HOME": str(tmp_path)}
    result = podium("run-pod", str(CENSUS_EXAMPLE), "--hub", "http://127.0.0.1:9", env=env)
    stderr = _assert_clean_failure(result, ExitCode.CONFIG)
    assert "PODIUM_API_KEY" in stderr
    assert "podium api-key create" in stderr


def test_missing_config_file_is_a_one_line_error(tmp_path: Path) -> None:
    """A config path that does not exist exits 2 with a message naming the file."""
    missing = tmp_path / "nope.yaml"
    stderr = _assert_clean_failure(podium("run-pod", str(missing), "--dry-run"), ExitCode.CONFIG)
    assert "nope.yaml" in stderr


def test_unknown_key_names_the_field(tmp_path: Path) -> None:
    """An unknown key in the YAML exits 2 and names the key."""
    config = tmp_path / "pod.yaml"
    config.write_text("name: my-pod\ndatasource: CSVSource\nbogus_key: 1\n")
    stderr = _assert_clean_failure(podium("run-pod", str(config), "--dry-run"), ExitCode.CONFIG)
    assert "bogus_key" in stderr


def test_unset_variable_names_the_variable(tmp_path: Path) -> None:
    """A ${VAR} that is not set exits 2 and names the variable."""
    config = tmp_path / "pod.yaml"
    config.write_text(
        "name: my-pod\ndatasource: CSVSource\n"
        "data_config:\n  datasource_args:\n    path: ${PODIUM_TEST_SURELY_UNSET}/x.csv\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_TEST_SURELY_UNSET"}
    result = subprocess.run(
        [sys.executable, "-m", "podium", "run-pod", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    stderr = _assert_clean_failure(result, ExitCode.CONFIG)
    assert "PODIUM_TEST_SURELY_UNSET" in stderr


def test_unknown_datasource_type_lists_the_known_ones(tmp_path: Path) -> None:
    """An unknown datasource type exits 2 and lists the types Podium knows."""
    config = tmp_path / "pod.yaml"
    config.write_text("name: my-pod\ndatasource: NoSuchSource\n")
    stderr = _assert_clean_failure(podium("run-pod", str(config), "--dry-run"), ExitCode.CONFIG)
    assert "NoSuchSource" in stderr
    assert "CSVSource" in stderr


def test_malformed_csv_is_a_data_error(tmp_path: Path) -> None:
    """A CSV with ragged rows exits 3 and names the file."""
    data = tmp_path / "bad.csv"
    data.write_text('a,b\n1,2\n3,"unterminated\n4,5,6,7\n')
    config = tmp_path / "pod.yaml"
    config.write_text(
        "name: my-pod\ndatasource: CSVSource\ndata_config:\n  datasource_args:\n    path: bad.csv\n"
    )
    stderr = _assert_clean_failure(podium("run-pod", str(config), "--dry-run"), ExitCode.DATA)
    assert "bad.csv" in stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """With --debug an error shows its traceback."""
    result = podium("--debug", "run-pod", str(tmp_path / "nope.yaml"), "--dry-run")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_schema_command_infers_a_csv_schema(tmp_path: Path) -> None:
    """``podium schema FILE --json`` prints the inferred schema of a CSV file."""
    data = tmp_path / "people.csv"
    data.write_text("age,city\n30,Oslo\n41,Lima\n35,Oslo\n52,Oslo\n")
    result = podium("schema", str(data), "--json")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    stypes = {c["name"]: c["stype"] for c in schema["columns"]}
    assert schema["name"] == "people"
    assert stypes == {"age": "continuous", "city": "categorical"}
    assert schema["num_records"] == 4


@pytest.mark.parametrize("name", ["notes.txt", "archive.zip"])
def test_schema_command_refuses_unknown_file_types(tmp_path: Path, name: str) -> None:
    """A file whose type cannot be told from its name exits 2 and lists what is read."""
    path = tmp_path / name
    path.write_text("x")
    stderr = _assert_clean_failure(podium("schema", str(path)), ExitCode.CONFIG)
    assert ".parquet" in stderr


def test_errors_name_the_datasource_of_a_multi_source_pod(tmp_path: Path) -> None:
    """A schema error in one of several datasources names the file and that datasource."""
    config = tmp_path / "pod.yaml"
    census = REPO / "src" / "podium" / "data" / "assets" / "census_income.csv.gz"
    config.write_text(
        "name: my-pod\ndatasources:\n"
        f"  - {{datasource: CSVSource, name: good, data_config: {{datasource_args: "
        f"{{path: {census}}}}}}}\n"
        f"  - {{datasource: CSVSource, name: bad, data_config: {{datasource_args: "
        f"{{path: {census}}}, force_stypes: {{continuous: [workclass]}}}}}}\n"
    )
    stderr = _assert_clean_failure(podium("run-pod", str(config), "--dry-run"), ExitCode.DATA)
    assert "datasource 'bad'" in stderr
    assert "workclass" in stderr


def test_numbers_from_variables_reach_the_source(tmp_path: Path) -> None:
    """``batch_rows: ${ROWS}`` works: the expanded text is read as the number it is."""
    config = tmp_path / "pod.yaml"
    census = REPO / "src" / "podium" / "data" / "assets" / "census_income.csv.gz"
    config.write_text(
        "name: my-pod\ndatasource: CSVSource\ndata_config:\n  datasource_args:\n"
        f"    path: {census}\n    batch_rows: ${{PODIUM_TEST_ROWS}}\n"
    )
    result = podium("run-pod", str(config), "--dry-run", "--json", env={"PODIUM_TEST_ROWS": "512"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schemas"][0]["num_records"] == 32_561
    bad = podium("run-pod", str(config), "--dry-run", env={"PODIUM_TEST_ROWS": "many"})
    assert "batch_rows" in _assert_clean_failure(bad, ExitCode.CONFIG)


def test_schema_command_reports_a_missing_file(tmp_path: Path) -> None:
    """``podium schema`` on a missing file exits 3 naming the file."""
    stderr = _assert_clean_failure(podium("schema", str(tmp_path / "gone.csv")), ExitCode.DATA)
    assert "gone.csv" in stderr


def test_census_split_writes_pods_that_dry_run(tmp_path: Path) -> None:
    """``podium census split`` writes pods whose configs pass a dry run."""
    result = podium("census", "split", str(tmp_path), "--pods", "2", "--json")
    assert result.returncode == 0, result.stderr
    pods = json.loads(result.stdout)["pods"]
    assert [p["name"] for p in pods] == ["census-1", "census-2"]
    assert sum(p["rows"] for p in pods) == 32_561
    check = podium("run-pod", pods[1]["config"], "--dry-run", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["schemas"][0]["num_records"] == pods[1]["rows"]
