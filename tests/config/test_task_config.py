"""Reading task YAML (Bitfount's modeller config): the task definition, run options, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.config.task import (
    NamedConfig,
    RunOptions,
    TaskConfig,
    load_task_config,
    normalise_name,
    task_config_from_dict,
)
from podium.core.crypto.encoding import canonical_bytes
from podium.core.errors import ConfigFileError, ConfigValidationError, UnsetVariableError
from podium.protocols.registry import protocol_from_definition

#: A modeller config in Bitfount's documented shape, with every option set.
BITFOUNT_TASK = """\
version: "2.0"
pods:
  identifiers:
    - alice/census-b
    - alice/census-a
modeller:
  username: bob
hub:
  url: http://127.0.0.1:8000/
project_id: proj-1
run_on_new_data_only: true
batched_execution: false
test_run: true
force_rerun_failed_files: false
require_all_pods: true
task:
  protocol:
    name: bitfount.ResultsOnly
  algorithm:
    - name: bitfount.SqlQuery
      arguments:
        query: SELECT COUNT(*) AS n FROM "census-income"
    - name: PrivateSqlQuery
      arguments:
        query: SELECT AVG(age) AS mean_age FROM "census-income"
        epsilon: 0.5
        column_ranges: {age: {lower: 17, upper: 90}}
  data_structure:
    table_config:
      table: census-income
    select:
      include: [age, TARGET]
  aggregator:
    secure: true
  model:
    name: TabularMLP
    hyperparameters: {epochs: 2}
"""

EXPECTED_DEFINITION: dict[str, Any] = {
    "protocol": {"name": "ResultsOnly", "arguments": {}},
    "algorithm": [
        {
            "name": "SqlQuery",
            "arguments": {"query": 'SELECT COUNT(*) AS n FROM "census-income"'},
        },
        {
            "name": "PrivateSqlQuery",
            "arguments": {
                "query": 'SELECT AVG(age) AS mean_age FROM "census-income"',
                "epsilon": 0.5,
                "column_ranges": {"age": {"lower": 17, "upper": 90}},
            },
        },
    ],
    "pods": ["alice/census-a", "alice/census-b"],
    "data_structure": {
        "table_config": {"table": "census-income"},
        "select": {"include": ["age", "TARGET"]},
    },
    "aggregator": {"secure": True},
    "model": {"name": "TabularMLP", "hyperparameters": {"epochs": 2}},
    "project_id": "proj-1",
}

#: The smallest task file: pods and a task with one algorithm given as a mapping.
MINIMAL_TASK = """\
pods:
  identifiers: [alice/census-income]
task:
  protocol:
    name: ResultsOnly
  algorithm:
    name: SqlQuery
    arguments:
      query: {query}
"""


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def minimal(**fields: Any) -> dict[str, Any]:
    """A minimal valid task config as data, with some top-level fields replaced."""
    data: dict[str, Any] = {
        "pods": {"identifiers": ["alice/census-income"]},
        "task": {
            "protocol": {"name": "ResultsOnly"},
            "algorithm": {"name": "SqlQuery", "arguments": {"query": "SELECT 1"}},
        },
    }
    data.update(fields)
    return data


def with_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    return minimal(
        task={
            "protocol": {"name": "ResultsOnly"},
            "algorithm": {"name": "SqlQuery", "arguments": arguments},
        }
    )


def problems_of(data: dict[str, Any]) -> str:
    """The message of the ConfigValidationError that validating ``data`` raises."""
    with pytest.raises(ConfigValidationError) as caught:
        task_config_from_dict(data)
    return str(caught.value)


# -- the happy path ---------------------------------------------------------------------


def test_bitfount_task_file_gives_the_expected_definition(tmp_path: Path) -> None:
    """A Bitfount-shaped task file becomes exactly Podium's canonical task definition."""
    config = load_task_config(write(tmp_path, BITFOUNT_TASK), environ={})

    definition = config.task_definition()

    assert definition == EXPECTED_DEFINITION
    assert json.loads(canonical_bytes(definition)) == EXPECTED_DEFINITION


def test_bitfount_task_file_gives_its_run_options(tmp_path: Path) -> None:
    """Every run option in the file is read into RunOptions."""
    config = load_task_config(write(tmp_path, BITFOUNT_TASK), environ={})

    assert config.run_options() == RunOptions(
        require_all_pods=True,
        run_on_new_data_only=True,
        project_id="proj-1",
        batched_execution=False,
        test_run=True,
        force_rerun_failed_files=False,
    )
    assert config.modeller is not None
    assert config.modeller.username == "bob"
    assert config.hub is not None
    assert config.hub.url == "http://127.0.0.1:8000"


def test_run_options_default() -> None:
    """Without options in the file, the run options are the documented defaults."""
    options = task_config_from_dict(minimal()).run_options()

    assert options == RunOptions()
    assert (
        options.require_all_pods,
        options.run_on_new_data_only,
        options.project_id,
        options.batched_execution,
        options.test_run,
        options.force_rerun_failed_files,
    ) == (False, False, None, None, False, True)


def test_null_options_mean_the_defaults() -> None:
    """An option written as null (an empty YAML value) takes its default."""
    config = task_config_from_dict(minimal(force_rerun_failed_files=None, modeller=None))

    assert config.run_options().force_rerun_failed_files is True
    assert config.modeller is None


def test_minimal_definition_has_no_optional_parts() -> None:
    """Without data_structure, aggregator, model or project, the definition leaves them out."""
    definition = task_config_from_dict(minimal()).task_definition()

    assert definition == {
        "protocol": {"name": "ResultsOnly", "arguments": {}},
        "algorithm": [{"name": "SqlQuery", "arguments": {"query": "SELECT 1"}}],
        "pods": ["alice/census-income"],
    }


def test_single_algorithm_and_list_of_one_are_the_same() -> None:
    """One algorithm mapping reads the same as a list holding that mapping."""
    algorithm = {"name": "SqlQuery", "arguments": {"query": "SELECT 1"}}
    single = minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": algorithm})
    listed = minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": [algorithm]})

    one = task_config_from_dict(single)
    many = task_config_from_dict(listed)

    assert isinstance(one.task.algorithm, list)
    assert one.task.algorithm == many.task.algorithm
    assert one.task_definition() == many.task_definition()


def test_algorithm_order_is_kept() -> None:
    """Algorithms stay in the order the file gives them (they run in that order)."""
    algorithms = [{"name": "Second"}, {"name": "First"}]
    config = task_config_from_dict(
        minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": algorithms})
    )

    assert [a["name"] for a in config.task_definition()["algorithm"]] == ["Second", "First"]


def test_pods_project_id_is_the_project() -> None:
    """Bitfount's pods.project_id is read as the project id when the top level has none."""
    config = task_config_from_dict(
        minimal(pods={"identifiers": ["alice/census-income"], "project_id": "proj-9"})
    )

    assert config.run_options().project_id == "proj-9"
    assert config.task_definition()["project_id"] == "proj-9"


def test_two_different_project_ids_are_refused() -> None:
    """pods.project_id and project_id may not name different projects."""
    message = problems_of(
        minimal(project_id="proj-1", pods={"identifiers": ["a/b"], "project_id": "proj-2"})
    )

    assert "pods.project_id: pods.project_id is 'proj-2' but project_id is 'proj-1'" in message


def test_definition_is_a_copy() -> None:
    """Changing a returned task definition does not change the config."""
    config = task_config_from_dict(minimal())

    config.task_definition()["algorithm"][0]["arguments"]["query"] = "DROP TABLE x"

    assert config.task_definition()["algorithm"][0]["arguments"]["query"] == "SELECT 1"


def test_config_is_frozen() -> None:
    """A loaded config cannot be changed by assignment."""
    config = task_config_from_dict(minimal())

    with pytest.raises(ValueError, match="frozen"):
        config.test_run = True


def test_numeric_version_is_accepted() -> None:
    """An unquoted version number (version: 2) is accepted and kept as text."""
    assert task_config_from_dict(minimal(version=2)).version == "2"


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "bare"),
    [
        ("bitfount.SqlQuery", "SqlQuery"),
        ("SqlQuery", "SqlQuery"),
        ("Bitfount.ResultsOnly", "ResultsOnly"),
        ("  bitfount.FederatedAveraging ", "FederatedAveraging"),
        ("bitfountish", "bitfountish"),
    ],
)
def test_normalise_name_drops_the_bitfount_prefix(written: str, bare: str) -> None:
    """normalise_name drops a leading 'bitfount.' (any case) and surrounding spaces only."""
    assert normalise_name(written) == bare


def test_prefixes_are_dropped_in_protocol_and_algorithms() -> None:
    """Protocol and algorithm names are stored without their bitfount. prefix."""
    config = task_config_from_dict(
        minimal(
            task={
                "protocol": {"name": "bitfount.FederatedAveraging"},
                "algorithm": [{"name": "bitfount.ModelTrainingAndEvaluation"}],
            }
        )
    )

    assert config.task.protocol.name == "FederatedAveraging"
    assert config.task_definition()["algorithm"] == [
        {"name": "ModelTrainingAndEvaluation", "arguments": {}}
    ]


@pytest.mark.parametrize("name", ["Sql Query", "bitfount.", "9lives", "sql-query", ""])
def test_bad_names_are_refused(name: str) -> None:
    """A name that is empty or not letters, digits and underscores is refused at its field."""
    message = problems_of(
        minimal(task={"protocol": {"name": name}, "algorithm": {"name": "SqlQuery"}})
    )

    assert "task.protocol.name:" in message


@given(st.text(max_size=12))
def test_valid_names_are_identifier_words(name: str) -> None:
    """A NamedConfig accepts a name exactly when its bare form is an identifier-like word."""
    bare = normalise_name(name)
    expected = bare.isascii() and bare.isidentifier()
    try:
        NamedConfig(name=name)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted == expected


# -- bad input --------------------------------------------------------------------------


def test_missing_identifiers_are_named() -> None:
    """A pods mapping without identifiers says the key is missing under pods."""
    message = problems_of(minimal(pods={}))

    assert "pods.identifiers: required key 'identifiers' is missing; add it under pods" in message


def test_missing_pods_are_named() -> None:
    """A file without pods says the key is missing at the top level."""
    data = minimal()
    del data["pods"]

    assert "pods: required key 'pods' is missing; add it at the top level" in problems_of(data)


def test_empty_identifiers_are_refused() -> None:
    """An empty identifiers list is refused with what to write."""
    message = problems_of(minimal(pods={"identifiers": []}))

    assert "pods.identifiers: the list is empty; add the pods to ask" in message


def test_identifier_without_owner_is_refused() -> None:
    """'census' (no owner) is refused at its index with the <owner>/<pod> form."""
    message = problems_of(minimal(pods={"identifiers": ["alice/census-a", "census"]}))

    assert "pods.identifiers[1]: 'census' is not a pod identifier" in message
    assert "<owner>/census" in message


@pytest.mark.parametrize("identifier", ["Alice/census", "alice/census/x", "/census", "alice/"])
def test_malformed_identifiers_are_refused(identifier: str) -> None:
    """Identifiers that break the owner and pod name rules are refused."""
    message = problems_of(minimal(pods={"identifiers": [identifier]}))

    assert f"pods.identifiers[0]: {identifier!r} is not a pod identifier" in message


def test_duplicate_identifier_is_refused() -> None:
    """A pod listed twice is refused at its second place, naming the first."""
    message = problems_of(minimal(pods={"identifiers": ["alice/a", "alice/b", "alice/a"]}))

    assert "pods.identifiers[2]: 'alice/a' is already listed as pods.identifiers[0]" in message


def test_unknown_key_gets_a_suggestion(tmp_path: Path) -> None:
    """A misspelt key is refused with the closest known key and its file line."""
    text = MINIMAL_TASK.format(query="SELECT 1") + "run_on_new_data: true\n"
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError) as caught:
        load_task_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:10: run_on_new_data: unknown key 'run_on_new_data'." in message
    assert "Did you mean 'run_on_new_data_only'?" in message


def test_unknown_key_inside_the_task_gets_a_suggestion() -> None:
    """An unknown key inside an algorithm is located there and gets a suggestion."""
    message = problems_of(
        minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": {"name": "X", "args": {}}})
    )

    assert "task.algorithm[0].args: unknown key 'args'. Did you mean 'arguments'?" in message


def test_algorithm_without_name_is_refused() -> None:
    """An algorithm with only arguments is refused: its name is missing."""
    message = problems_of(
        minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": [{"arguments": {}}]})
    )

    assert "task.algorithm[0].name: required key 'name' is missing" in message


def test_empty_algorithm_list_is_refused() -> None:
    """An empty algorithm list is refused."""
    message = problems_of(minimal(task={"protocol": {"name": "ResultsOnly"}, "algorithm": []}))

    assert "task.algorithm: the list is empty; add at least one algorithm" in message


def test_nan_argument_is_refused() -> None:
    """A NaN argument is refused at its path: the definition is signed as JSON."""
    message = problems_of(with_arguments({"clip": {"low": float("nan")}}))

    assert "task.algorithm[0].arguments.clip.low: nan cannot go into a task" in message


def test_infinite_argument_in_a_file_is_refused(tmp_path: Path) -> None:
    """YAML's .inf in an argument is refused with the file line."""
    path = write(tmp_path, MINIMAL_TASK.format(query="SELECT 1") + "      epsilon: .inf\n")

    with pytest.raises(ConfigValidationError) as caught:
        load_task_config(path, environ={})

    assert f"{path}:10: task.algorithm[0].arguments.epsilon: inf cannot go" in str(caught.value)


def test_date_argument_is_refused_with_a_quote_hint(tmp_path: Path) -> None:
    """An unquoted YAML date in an argument is refused with the advice to quote it."""
    path = write(tmp_path, MINIMAL_TASK.format(query="SELECT 1") + "      since: 2024-01-31\n")

    with pytest.raises(ConfigValidationError) as caught:
        load_task_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:10: task.algorithm[0].arguments.since: 2024-01-31 was read as a date" in message
    assert "quote it to send text: '2024-01-31'" in message


def test_binary_value_in_the_model_is_refused() -> None:
    """A value JSON cannot hold (bytes) inside model is refused at its path."""
    message = problems_of(
        minimal(
            task={
                "protocol": {"name": "ResultsOnly"},
                "algorithm": {"name": "SqlQuery"},
                "model": {"weights": [b"\x00"]},
            }
        )
    )

    assert "task.model.weights[0]: a bytes cannot go into a task" in message


def test_non_text_key_in_arguments_is_refused() -> None:
    """A nested mapping key that is not text is refused (JSON keys are text)."""
    message = problems_of(with_arguments({"bins": {1: "low"}}))

    assert "task.algorithm[0].arguments.bins.1: the key 1 is not text" in message


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_json_like_arguments_survive_unchanged(value: Any) -> None:
    """Any JSON-like argument value is accepted and comes back unchanged and encodable."""
    config = task_config_from_dict(with_arguments({"value": value}))

    definition = config.task_definition()

    assert definition["algorithm"][0]["arguments"] == {"value": value}
    canonical_bytes(definition)


# -- Bitfount-only keys -----------------------------------------------------------------


def test_message_service_is_refused_with_the_podium_way() -> None:
    """Bitfount's message_service key is refused, saying the hub relays messages."""
    message = problems_of(minimal(message_service={"url": "messaging.bitfount.com"}))

    assert "message_service: unknown key 'message_service'." in message
    assert "set hub.url only" in message


@pytest.mark.parametrize("key", ["identity_verification_method", "private_key_file"])
def test_bitfount_modeller_keys_are_refused(key: str) -> None:
    """Bitfount's identity settings under modeller are refused with a note on Podium's keys."""
    message = problems_of(minimal(modeller={"username": "bob", key: "x"}))

    assert f"modeller.{key}: unknown key {key!r}: it belongs to Bitfount's service." in message
    assert "remove it" in message


def test_bitfount_secrets_are_refused_without_echoing_them() -> None:
    """secrets are refused with a note on the saved login, and the key is never shown."""
    message = problems_of(
        minimal(secrets={"bitfount": {"access_key_id": "id", "access_key": "s3cr3t-k3y"}})
    )

    assert "secrets: unknown key 'secrets'" in message
    assert "podium login" in message
    assert "s3cr3t-k3y" not in message


@pytest.mark.parametrize("url", ["https://hub.bitfount.com", "https://am.hub.bitfount.com/x"])
def test_bitfount_hub_url_is_refused(url: str) -> None:
    """hub.url pointing at Bitfount's hub is refused with what to set instead."""
    message = problems_of(minimal(hub={"url": url}))

    assert "hub.url:" in message
    assert "is Bitfount's hub; Podium needs a Podium hub" in message


def test_bad_hub_url_is_refused() -> None:
    """hub.url must be an http(s) URL, as in the pod config."""
    assert "hub.url: 'hub.example.org' is not an http(s) URL" in problems_of(
        minimal(hub={"url": "hub.example.org"})
    )


# -- the file ---------------------------------------------------------------------------


def test_variables_are_expanded_in_a_query(tmp_path: Path) -> None:
    """${VAR} in an argument is replaced from the environment given."""
    path = write(tmp_path, MINIMAL_TASK.format(query='SELECT COUNT(*) FROM "${TABLE}"'))

    config = load_task_config(path, environ={"TABLE": "census-income"})

    assert config.task.algorithm[0].arguments == {"query": 'SELECT COUNT(*) FROM "census-income"'}


def test_unset_variable_names_file_line_and_field(tmp_path: Path) -> None:
    """An unset ${VAR} is an error naming the file, line and field."""
    path = write(tmp_path, MINIMAL_TASK.format(query="SELECT * FROM ${TABLE}"))

    with pytest.raises(UnsetVariableError) as caught:
        load_task_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:9: task.algorithm.arguments.query" in message
    assert "TABLE is not set" in message


def test_error_names_file_and_line(tmp_path: Path) -> None:
    """A validation error starts with the file and points at the line of the bad value."""
    text = MINIMAL_TASK.format(query="SELECT 1").replace(
        "[alice/census-income]", "\n    - alice/census-income\n    - census"
    )
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError) as caught:
        load_task_config(path, environ={})

    message = str(caught.value)
    assert message.startswith(f"{path}: 1 problem in the TaskConfig:")
    assert f"{path}:4: pods.identifiers[1]: 'census' is not a pod identifier" in message


def test_missing_file_is_a_file_error(tmp_path: Path) -> None:
    """A task file that is not there is a ConfigFileError naming the path."""
    with pytest.raises(ConfigFileError, match="no such file"):
        load_task_config(tmp_path / "absent.yaml", environ={})


def test_not_a_mapping_is_a_file_error(tmp_path: Path) -> None:
    """A task file whose top level is a list is refused as a file error."""
    with pytest.raises(ConfigFileError, match="top level must be a mapping"):
        load_task_config(write(tmp_path, "- a\n- b\n"), environ={})


def test_dict_errors_name_the_source() -> None:
    """task_config_from_dict's errors start with the source name given."""
    with pytest.raises(ConfigValidationError, match=r"^notebook: 1 problem in the TaskConfig"):
        task_config_from_dict(minimal(pods={"identifiers": []}), source="notebook")


def test_loaded_config_is_a_task_config(tmp_path: Path) -> None:
    """load_task_config returns a TaskConfig equal to validating the same data directly."""
    path = write(tmp_path, MINIMAL_TASK.format(query="SELECT 1"))

    loaded = load_task_config(path, environ={})

    assert isinstance(loaded, TaskConfig)
    assert loaded == task_config_from_dict(minimal())


def test_the_example_task_file_builds_a_task_podium_can_run() -> None:
    """examples/census-task.yaml loads and rebuilds from the registries."""
    path = Path(__file__).resolve().parents[2] / "examples" / "census-task.yaml"
    config = load_task_config(path)
    factory = protocol_from_definition(config.task_definition())
    assert [a.name for a in factory.algorithms] == ["SqlQuery", "Statistics"]
    assert config.pods.identifiers == ["alice/census-income"]
    assert config.run_options().require_all_pods is True
