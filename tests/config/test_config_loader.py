"""Reading pod config YAML: the seed's census config, ${VAR} expansion and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.config.loader import expand_variables, load_pod_config, load_yaml, validate_config
from podium.config.models import PodConfig
from podium.core.errors import (
    ConfigFileError,
    ConfigValidationError,
    UnknownDataSourceError,
    UnsetVariableError,
)
from podium.data.census import CENSUS_CATEGORICAL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: The census-income pod config of Bitfount's documentation, as in the seed, with only the
#: CSV path replaced by a placeholder.
SEED_CONFIG = """\
name: census-income
datasource: CSVSource
pod_details_config:
  display_name: Census income demo pod
  description: >
    This pod contains data from the census-income public dataset,
    which includes data related to individual adults, their circumstances,
    and income.
data_config:
  ignore_cols: ["fnlwgt"]
  force_stypes:
    census-income:
      categorical: ["TARGET", "workclass", "marital-status", "occupation", "relationship", "race", "native-country", "gender", "education"]
  datasource_args:
    path: {path}
    seed: 100
"""  # noqa: E501 - the seed's long line is kept verbatim

MULTI_CONFIG = """\
name: clinic
username: alice
pod_details_config:
  display_name: Clinic
datasources:
  - datasource: CSVSource
    name: patients
    datasource_details_config:
      display_name: Patients
      description: One row per patient.
    data_config:
      force_stypes:
        categorical: ["sex"]
      datasource_args:
        path: patients.csv
  - datasource: bitfount.DatabaseSource
    name: visits
    data_config:
      ignore_cols: ["notes"]
      datasource_args:
        url: ${DB_URL}
        table: visits
"""


def write(tmp_path: Path, text: str, name: str = "pod.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- accepted configs -------------------------------------------------------------------


def test_seed_census_config_loads_as_written(tmp_path: Path) -> None:
    """The seed's census-income config is accepted verbatim in the single-source form."""
    path = write(tmp_path, SEED_CONFIG.format(path="data/census.csv"))

    config = load_pod_config(path, environ={})

    assert config.name == "census-income"
    assert config.datasource == "CSVSource"
    assert config.pod_details_config is not None
    assert config.pod_details_config.display_name == "Census income demo pod"
    assert config.pod_details_config.description.startswith("This pod contains data")
    assert config.data_config is not None
    assert config.data_config.ignore_cols == ["fnlwgt"]
    assert config.data_config.datasource_args == {"path": "data/census.csv", "seed": 100}
    stypes = config.data_config.stypes_for("census-income")
    assert stypes == {"categorical": list(CENSUS_CATEGORICAL)}


def test_seed_config_becomes_one_datasource_named_after_the_pod(tmp_path: Path) -> None:
    """The single form normalises to one container named after the pod with its details."""
    config = load_pod_config(write(tmp_path, SEED_CONFIG.format(path="x.csv")), environ={})

    (container,) = config.containers()

    assert container.name == "census-income"
    assert container.datasource == "CSVSource"
    assert container.datasource_details_config == config.pod_details_config
    assert container.data_config == config.data_config


def test_multi_source_form_loads(tmp_path: Path) -> None:
    """The datasources: list form gives one container per entry, in order, expanded."""
    path = write(tmp_path, MULTI_CONFIG)

    config = load_pod_config(path, environ={"DB_URL": "sqlite:///visits.db"})

    containers = config.containers()
    assert [c.name for c in containers] == ["patients", "visits"]
    assert [c.datasource for c in containers] == ["CSVSource", "DatabaseSource"]
    assert containers[0].data_config.stypes_for("patients") == {"categorical": ["sex"]}
    assert containers[1].data_config.datasource_args["url"] == "sqlite:///visits.db"
    assert containers[1].data_config.ignore_cols == ["notes"]


def test_loaded_config_remembers_its_file(tmp_path: Path) -> None:
    """Relative paths in a loaded config resolve against the config file's folder."""
    path = write(tmp_path, SEED_CONFIG.format(path="x.csv"))

    config = load_pod_config(path, environ={})

    assert config.source_path == path.resolve()
    assert config.resolve_path("data/x.csv") == path.resolve().parent / "data" / "x.csv"
    assert config.resolve_path("/abs/x.csv") == Path("/abs/x.csv")


def test_census_example_is_the_seed_config(census_csv: Path) -> None:
    """examples/census-income.yaml is the seed config pointing at the packaged census CSV."""
    path = EXAMPLES / "census-income.yaml"
    relative = "../src/podium/data/assets/census_income.csv.gz"

    assert path.read_text(encoding="utf-8") == SEED_CONFIG.format(path=relative)
    config = load_pod_config(path, environ={})
    assert config.data_config is not None
    assert config.resolve_path(config.data_config.datasource_args["path"]).resolve() == (
        census_csv.resolve()
    )


def test_multi_source_example_loads() -> None:
    """examples/multi-source.yaml has two datasources, the second with flat force_stypes."""
    config = load_pod_config(EXAMPLES / "multi-source.yaml", environ={})

    containers = config.containers()
    assert [c.name for c in containers] == ["census-income", "census-work"]
    assert containers[1].data_config.stypes_for("census-work")["continuous"] == [
        "age",
        "hours-per-week",
    ]
    assert containers[1].data_config.data_split is not None


def test_environ_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without environ=, ${VAR} is read from os.environ."""
    monkeypatch.setenv("PODIUM_TEST_CSV", "from-env.csv")
    path = write(tmp_path, SEED_CONFIG.format(path="${PODIUM_TEST_CSV}"))

    data = load_yaml(path)

    assert data["data_config"]["datasource_args"]["path"] == "from-env.csv"


# -- ${VAR} expansion -------------------------------------------------------------------


def test_expansion_replaces_variables_inside_text() -> None:
    """${VAR} is replaced wherever it appears in a string, any number of times."""
    environ = {"HOST": "db", "PORT": "5432"}

    assert expand_variables("pg://${HOST}:${PORT}/${HOST}", environ) == "pg://db:5432/db"


def test_default_is_used_when_unset_or_empty() -> None:
    """${VAR:-default} uses the default for an unset or empty variable, else the value."""
    assert expand_variables("${A:-x/y}", {}) == "x/y"
    assert expand_variables("${A:-x/y}", {"A": ""}) == "x/y"
    assert expand_variables("${A:-x/y}", {"A": "set"}) == "set"
    assert expand_variables("${A:-}", {}) == ""


def test_escape_gives_a_literal_reference() -> None:
    """$${ is a literal ${ and a lone $ stays as it is."""
    assert expand_variables("cost $5, $${HOME} stays", {"HOME": "/root"}) == (
        "cost $5, ${HOME} stays"
    )


def test_expanded_values_are_not_expanded_again() -> None:
    """A variable whose value holds ${...} is inserted literally, not scanned again."""
    assert expand_variables("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_unset_variable_error_names_file_line_and_field(tmp_path: Path) -> None:
    """An unset ${VAR} raises UnsetVariableError naming the file, line and field path."""
    path = write(tmp_path, SEED_CONFIG.format(path="${CENSUS_CSV}"))

    with pytest.raises(UnsetVariableError) as caught:
        load_pod_config(path, environ={"OTHER": "x"})

    message = str(caught.value)
    assert f"{path}:15: data_config.datasource_args.path" in message
    assert "CENSUS_CSV is not set" in message
    assert "${CENSUS_CSV:-default}" in message


def test_unset_variable_in_a_list_names_the_index(tmp_path: Path) -> None:
    """The field path of an unset variable inside a list carries the item's index."""
    path = write(tmp_path, MULTI_CONFIG.replace("name: visits", "name: ${VISITS_NAME}"))

    with pytest.raises(UnsetVariableError, match=r"datasources\[1\]\.name"):
        load_pod_config(path, environ={"DB_URL": "sqlite://"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("pre ${NAME", "without a closing"),
        ("${1ABC}", "not a variable reference"),
        ("${}", "not a variable reference"),
        ("${A-B}", "not a variable reference"),
    ],
)
def test_malformed_reference_is_a_validation_error(text: str, problem: str) -> None:
    """A ${ without } or with an invalid name is an error that says how to write it."""
    with pytest.raises(ConfigValidationError, match=problem) as caught:
        expand_variables(text, {"NAME": "x"}, where="pod.yaml:3: name")

    assert str(caught.value).startswith("pod.yaml:3: name:")
    assert "$${" in str(caught.value)


@given(st.text())
def test_escaping_every_reference_round_trips(text: str) -> None:
    """Any text with every ${ written as $${ expands back to itself."""
    assert expand_variables(text.replace("${", "$${"), {}) == text


@given(
    name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True),
    value=st.text(),
    before=st.text().filter(lambda t: "$" not in t),
    after=st.text().filter(lambda t: "$" not in t),
)
def test_a_reference_is_replaced_by_exactly_its_value(
    name: str, value: str, before: str, after: str
) -> None:
    """before + ${NAME} + after expands to before + value + after, whatever the value."""
    text = before + "${" + name + "}" + after

    assert expand_variables(text, {name: value}) == before + value + after


@given(
    name=st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True),
    default=st.text().filter(lambda t: "}" not in t),
)
def test_an_unset_reference_takes_its_default(name: str, default: str) -> None:
    """${NAME:-default} of an unset NAME expands to the default text exactly."""
    assert expand_variables("${" + name + ":-" + default + "}", {}) == default


# -- file and YAML errors ---------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist raises ConfigFileError naming it."""
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigFileError, match="no such file") as caught:
        load_pod_config(path, environ={})

    assert str(path) in str(caught.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    """A folder where a file is expected raises ConfigFileError suggesting the file."""
    with pytest.raises(ConfigFileError, match="is a folder") as caught:
        load_pod_config(tmp_path, environ={})

    assert str(tmp_path / "config.yaml") in str(caught.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 raise ConfigFileError rather than UnicodeDecodeError."""
    path = tmp_path / "pod.yaml"
    path.write_bytes(b"name: caf\xe9\n")

    with pytest.raises(ConfigFileError, match="not UTF-8"):
        load_yaml(path, environ={})


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    """Invalid YAML raises ConfigFileError with file:line:column of the problem."""
    path = write(tmp_path, "name: census-income\ndatasource: CSVSource\n  bad: indent\n")

    with pytest.raises(ConfigFileError) as caught:
        load_pod_config(path, environ={})

    assert str(caught.value).startswith(f"{path}:3:6: invalid YAML")


def test_unclosed_quote_says_where_it_began(tmp_path: Path) -> None:
    """A quote left open reports where the scalar started as well as where parsing stopped."""
    path = write(tmp_path, 'name: "census\ndatasource: CSVSource\n')

    with pytest.raises(ConfigFileError, match=r"line 1, column 7"):
        load_yaml(path, environ={})


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just text\n", "a str"), ("", "an empty file")],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    """A document that is not a mapping raises ConfigFileError saying what it found."""
    path = write(tmp_path, text)

    with pytest.raises(ConfigFileError, match="top level must be a mapping") as caught:
        load_yaml(path, environ={})

    assert found in str(caught.value)


def test_duplicate_key_is_rejected(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error naming both lines, not silently lost."""
    path = write(tmp_path, "name: a\ndata_config:\n  ignore_cols: [x]\n  ignore_cols: [y]\n")

    with pytest.raises(ConfigFileError) as caught:
        load_yaml(path, environ={})

    assert f"{path}:4: data_config.ignore_cols is given twice (first on line 3)" in str(
        caught.value
    )


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    """YAML tags that would build Python objects are refused (safe loading only)."""
    path = write(tmp_path, "name: !!python/object/apply:os.getcwd []\n")

    with pytest.raises(ConfigFileError, match="invalid YAML"):
        load_yaml(path, environ={})


def test_self_referencing_alias_is_rejected(tmp_path: Path) -> None:
    """A YAML alias that contains itself raises ConfigFileError instead of recursing."""
    path = write(tmp_path, "name: a\nloop: &x [1, *x]\n")

    with pytest.raises(ConfigFileError, match="refers to itself"):
        load_yaml(path, environ={})


# -- validation errors ------------------------------------------------------------------


def test_wrong_type_names_file_line_and_path(tmp_path: Path) -> None:
    """A value of the wrong type raises ConfigValidationError at file:line: field path."""
    text = SEED_CONFIG.format(path="x.csv") + "update_schema: maybe\n"
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:17: update_schema: Input should be a valid boolean" in message
    assert "'maybe'" in message


def test_number_where_text_is_expected_suggests_quoting(tmp_path: Path) -> None:
    """A column name written as a number is rejected with a hint to quote it."""
    path = write(tmp_path, SEED_CONFIG.format(path="x.csv").replace('["fnlwgt"]', "[2020]"))

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    assert f"{path}:10: data_config.ignore_cols[0]" in str(caught.value)
    assert "Quote it in YAML" in str(caught.value)


def test_unknown_key_suggests_the_closest_and_lists_known_keys(tmp_path: Path) -> None:
    """An unknown key names its path, suggests the closest known key and lists them all."""
    text = SEED_CONFIG.format(path="x.csv").replace("pod_details_config:", "pod_detail_config:")
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:3: pod_detail_config: unknown key 'pod_detail_config'." in message
    assert "Did you mean 'pod_details_config'?" in message
    known = re.search(r"Known keys here: (.*)\.", message)
    assert known is not None
    listed = known.group(1).split(", ")
    assert "datasources" in listed
    assert listed == sorted(listed)


def test_unknown_key_in_a_list_entry_is_located(tmp_path: Path) -> None:
    """An unknown key inside datasources[i] is reported with that index and its own keys."""
    path = write(tmp_path, MULTI_CONFIG.replace("ignore_cols:", "ignore_col:"))

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={"DB_URL": "sqlite://"})

    message = str(caught.value)
    assert "datasources[1].data_config.ignore_col: unknown key" in message
    assert "Did you mean 'ignore_cols'?" in message
    assert "datasource_args, description" in message


def test_bitfount_only_key_explains_the_podium_way(tmp_path: Path) -> None:
    """Bitfount's access_manager key is rejected with what to use in Podium instead."""
    text = SEED_CONFIG.format(path="x.csv") + "access_manager:\n  url: https://am\n"
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError, match=r"set hub\.url only"):
        load_pod_config(path, environ={})


def test_missing_required_key(tmp_path: Path) -> None:
    """A missing required key is named with the mapping it belongs under."""
    path = write(tmp_path, SEED_CONFIG.format(path="x").replace("  display_name: Census", "  x:"))

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    message = str(caught.value)
    assert "pod_details_config.display_name: required key 'display_name' is missing" in message
    assert "under pod_details_config" in message


def test_unknown_datasource_type(tmp_path: Path) -> None:
    """An unknown datasource type raises UnknownDataSourceError with a suggestion."""
    path = write(tmp_path, SEED_CONFIG.format(path="x").replace(": CSVSource", ": CSVSorce"))

    with pytest.raises(UnknownDataSourceError) as caught:
        load_pod_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:2: datasource: unknown datasource type 'CSVSorce'" in message
    assert "Did you mean 'CSVSource'?" in message
    assert "ParquetSource" in message


def test_underscore_in_pod_name(tmp_path: Path) -> None:
    """A pod name with an underscore is rejected with a valid name to use instead."""
    path = write(
        tmp_path, SEED_CONFIG.format(path="x").replace("census-income\n", "Census_Income\n", 1)
    )

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    message = str(caught.value)
    assert f"{path}:1: name: 'Census_Income' is not a valid pod name" in message
    assert "Try 'census-income'" in message


def test_every_problem_is_listed_in_line_order(tmp_path: Path) -> None:
    """Several problems come back in one error, one line each, sorted by line."""
    text = "name: a\nupdate_schema: maybe\ndatasource: CSVSource\nversion: [1]\nbogus: 1\n"
    path = write(tmp_path, text)

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 3 problems in the PodConfig:"
    assert [line.split(": ")[0].strip() for line in lines[1:]] == [
        f"{path}:2",
        f"{path}:4",
        f"{path}:5",
    ]


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    """A wrongly typed secret is reported without echoing its value."""
    text = SEED_CONFIG.format(path="x") + "username: alice\nsecrets:\n  access_key_id: k\n"
    path = write(tmp_path, text + "  access_key: [s3cr3t-value]\n")

    with pytest.raises(ConfigValidationError) as caught:
        load_pod_config(path, environ={})

    assert "secrets.access_key" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_validate_config_without_a_file_names_only_the_path() -> None:
    """Validating plain data reports field paths without a file name."""
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(PodConfig, {"name": "a", "datasource": "CSVSource", "hub": {"url": 1}})

    assert str(caught.value).splitlines()[1].startswith("  hub.url: ")
