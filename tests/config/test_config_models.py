"""The pod config models: both config forms, force_stypes, splits, DP and cross-field rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.config.loader import validate_config
from podium.config.models import (
    POD_NAME_PATTERN,
    DataSplitConfig,
    DPPodConfig,
    PodConfig,
    PodDataConfig,
)
from podium.core.errors import ConfigValidationError, UnknownDataSourceError
from podium.data.sources.base import Modifier


def pod(**fields: Any) -> dict[str, Any]:
    """A minimal valid single-source pod config with some fields replaced."""
    data: dict[str, Any] = {"name": "demo", "datasource": "CSVSource"}
    data.update(fields)
    return data


def problems_of(data: dict[str, Any]) -> str:
    """The message of the ConfigValidationError that validating ``data`` raises."""
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(PodConfig, data)
    return str(caught.value)


def entry(name: str, **fields: Any) -> dict[str, Any]:
    return {"datasource": "CSVSource", "name": name, **fields}


# -- names and forms --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["census-income", "pod1", "a", "x-1-y"])
def test_valid_pod_names(name: str) -> None:
    """Lower-case letters and digits joined by single hyphens are valid pod names."""
    assert validate_config(PodConfig, pod(name=name)).name == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("census_income", "census-income"),
        ("Census", "census"),
        ("-lead", "lead"),
        ("a--b", "a-b"),
        ("two words", "two-words"),
    ],
)
def test_invalid_pod_names_get_a_suggestion(name: str, suggestion: str) -> None:
    """An invalid pod name is rejected and a valid spelling is offered."""
    message = problems_of(pod(name=name))

    assert f"name: {name!r} is not a valid pod name" in message
    assert f"Try {suggestion!r}" in message


@given(st.text(max_size=20))
def test_pod_name_rule_matches_the_pattern(name: str) -> None:
    """A name validates exactly when it matches POD_NAME_PATTERN in full."""
    valid = POD_NAME_PATTERN.fullmatch(name) is not None
    try:
        validate_config(PodConfig, pod(name=name))
    except ConfigValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == valid


def test_bitfount_prefix_is_accepted_and_dropped() -> None:
    """A datasource type written bitfount.CSVSource is stored as CSVSource."""
    config = validate_config(PodConfig, pod(datasource="bitfount.CSVSource"))

    assert config.containers()[0].datasource == "CSVSource"


def test_unknown_datasource_type_in_a_list_entry() -> None:
    """An unknown type inside datasources[i] raises UnknownDataSourceError at that path."""
    data = {"name": "p", "datasources": [entry("a"), entry("b", datasource="Parquet")]}

    with pytest.raises(UnknownDataSourceError) as caught:
        validate_config(PodConfig, data)

    assert "datasources[1].datasource: unknown datasource type 'Parquet'" in str(caught.value)
    assert "Did you mean 'ParquetSource'?" in str(caught.value)


def test_both_forms_at_once_are_rejected() -> None:
    """Giving datasource and datasources together is one clear error."""
    message = problems_of(pod(datasources=[entry("a")]))

    assert "datasources: give either datasource" in message
    assert "not both" in message


def test_neither_form_is_rejected() -> None:
    """A config with no datasource at all says how to add one."""
    message = problems_of({"name": "p"})

    assert "(top level): no data: add datasource:" in message


def test_empty_datasources_list_is_rejected() -> None:
    """An empty datasources list is an error, not a pod without data."""
    assert "datasources: the list is empty" in problems_of({"name": "p", "datasources": []})


def test_duplicate_datasource_names_point_at_the_repeat() -> None:
    """A repeated datasource name is reported at the later entry, naming the earlier one."""
    data = {"name": "p", "datasources": [entry("a"), entry("b"), entry("a")]}

    message = problems_of(data)

    assert "datasources[2].name: the name 'a' is already used by datasources[0]" in message


def test_datasource_names_follow_the_pod_name_rule() -> None:
    """A datasource name with an underscore is rejected like a pod name."""
    message = problems_of({"name": "p", "datasources": [entry("my_table")]})

    assert "datasources[0].name: 'my_table' is not a valid datasource name" in message


@pytest.mark.parametrize("key", ["data_config", "schema"])
def test_single_form_keys_with_a_list_are_rejected(key: str) -> None:
    """Top-level data_config or schema next to a datasources list must move into entries."""
    value: Any = {} if key == "data_config" else "schema.json"
    data = {"name": "p", "datasources": [entry("a")], key: value}

    assert f"{key}: top-level {key} only goes with datasource:" in problems_of(data)


def test_multi_form_containers_keep_their_own_settings() -> None:
    """containers() returns the list entries themselves, not the pod's details."""
    data = {
        "name": "p",
        "pod_details_config": {"display_name": "The pod"},
        "datasources": [
            entry("a", datasource_details_config={"display_name": "A"}),
            entry("b", schema="b.json", data_config={"ignore_cols": ["x"]}),
        ],
    }

    first, second = validate_config(PodConfig, data).containers()

    assert first.datasource_details_config is not None
    assert first.datasource_details_config.display_name == "A"
    assert second.datasource_details_config is None
    assert second.schema_path == Path("b.json")
    assert second.data_config.ignore_cols == ["x"]


def test_single_form_without_data_config_gets_an_empty_one() -> None:
    """A single-form pod with no data_config yields a container with default settings."""
    (container,) = validate_config(PodConfig, pod(schema="s.json")).containers()

    assert container.data_config == PodDataConfig()
    assert container.schema_path == Path("s.json")


def test_null_means_the_default() -> None:
    """An empty YAML value (null) for an optional key means the key's default."""
    config = validate_config(
        PodConfig, pod(data_config={"ignore_cols": None, "modifiers": None}, pod_db=None)
    )

    assert config.data_config == PodDataConfig()
    assert config.pod_db is False


def test_model_dump_round_trips() -> None:
    """Dumping a config by alias and validating it again gives an equal config."""
    config = validate_config(
        PodConfig,
        {
            "name": "p",
            "username": "alice",
            "secrets": {"access_key_id": "id", "access_key": "secret"},
            "hub": {"url": "https://hub.example.org"},
            "datasources": [entry("a", schema="a.json", data_config={"ignore_cols": ["x"]})],
            "differential_privacy": {"max_epsilon": 1.5},
            "pod_db": "results.sqlite",
        },
    )

    dumped = config.model_dump(by_alias=True)

    assert dumped["datasources"][0]["schema"] == Path("a.json")
    assert PodConfig.model_validate(dumped) == config


# -- force_stypes and descriptions ------------------------------------------------------


def test_flat_force_stypes_apply_to_any_datasource_name() -> None:
    """The {stype: [cols]} form applies whatever the datasource is called."""
    data_config = PodDataConfig.model_validate(
        {"force_stypes": {"categorical": ["a"], "text": ["b"]}}
    )

    assert not data_config.stypes_nested()
    assert data_config.stypes_for("anything") == {"categorical": ["a"], "text": ["b"]}


def test_nested_force_stypes_apply_to_their_datasource() -> None:
    """The {name: {stype: [cols]}} form gives the inner mapping for that name."""
    data_config = PodDataConfig.model_validate({"force_stypes": {"p": {"image": ["f"]}}})

    assert data_config.stypes_nested()
    assert data_config.stypes_for("p") == {"image": ["f"]}


def test_nested_force_stypes_key_must_name_the_datasource() -> None:
    """A nested force_stypes keyed by another name is a located error, not silently ignored."""
    message = problems_of(pod(name="census-income", data_config={"force_stypes": {"census": {}}}))

    assert "data_config.force_stypes.census: force_stypes is keyed by 'census'" in message
    assert "named 'census-income'" in message


def test_nested_force_stypes_key_in_a_list_entry() -> None:
    """In the multi form the nested key must be the entry's own name."""
    data = {
        "name": "p",
        "datasources": [entry("a", data_config={"force_stypes": {"b": {"text": ["x"]}}})],
    }

    assert "datasources[0].data_config.force_stypes.b: force_stypes is keyed by 'b'" in (
        problems_of(data)
    )


@pytest.mark.parametrize(
    ("force_stypes", "path", "text"),
    [
        ({"categoricl": ["a"]}, "force_stypes.categoricl", "Did you mean 'categorical'?"),
        ({"p": {"numeric": ["a"]}}, "force_stypes.p.numeric", "Use one of: categorical"),
        ({"text": "a"}, "force_stypes.text", "expected a list of column names"),
        ({"text": [1]}, "force_stypes.text", "quote names that look like numbers"),
        ({"text": ["a"], "p": {"text": ["b"]}}, "force_stypes.text", "mixes its two forms"),
        ({"text": ["a"], "image": ["a"]}, "force_stypes.image[0]", "also listed under text"),
        (["a"], "force_stypes", "expected {stype: [columns]}"),
    ],
)
def test_bad_force_stypes(force_stypes: Any, path: str, text: str) -> None:
    """Each malformed force_stypes is reported at its exact path with what to write."""
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(PodDataConfig, {"force_stypes": force_stypes})

    assert f"  {path}: " in str(caught.value)
    assert text in str(caught.value)


def test_column_descriptions_in_both_forms() -> None:
    """Flat descriptions apply to every datasource; a nested block only to its name."""
    data_config = PodDataConfig.model_validate(
        {"column_descriptions": {"age": "Years.", "p": {"sex": "M/F"}, "q": {"x": "X"}}}
    )

    assert data_config.column_descriptions_for("p") == {"age": "Years.", "sex": "M/F"}
    assert data_config.column_descriptions_for("r") == {"age": "Years."}


def test_bad_column_description_is_located() -> None:
    """A description that is not text is reported at its column."""
    with pytest.raises(ConfigValidationError, match=r"column_descriptions\.p\.sex: "):
        validate_config(PodDataConfig, {"column_descriptions": {"p": {"sex": 3}}})


def test_modifiers_become_modifier_objects() -> None:
    """modifiers entries are parsed into Modifier with prefix and suffix."""
    data_config = PodDataConfig.model_validate({"modifiers": {"file": {"prefix": "/img/"}}})

    assert data_config.modifiers == {"file": Modifier(prefix="/img/")}


def test_modifier_unknown_key_is_suggested() -> None:
    """A misspelt modifier key is an unknown key with the closest known one."""
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(PodDataConfig, {"modifiers": {"file": {"prefx": "/img/"}}})

    assert "modifiers.file.prefx: unknown key 'prefx'. Did you mean 'prefix'?" in str(caught.value)


# -- data split, DP, hub, secrets, pod_db -----------------------------------------------


def test_percentage_split_defaults() -> None:
    """A bare data_split is a percentage split holding out 10% and 10%."""
    split = DataSplitConfig.model_validate({})

    assert split.data_splitter == "percentage"
    assert (split.args.validation_percentage, split.args.test_percentage) == (10, 10)


@pytest.mark.parametrize(
    ("split", "path", "text"),
    [
        ({"args": {"validation_percentage": 50, "test_percentage": 50}}, "args", "below 100"),
        ({"args": {"test_percentage": -1}}, "args.test_percentage", "greater than or equal"),
        (
            {"args": {"column_name": "s"}},
            "args.column_name",
            "only applies to data_splitter: predefined",
        ),
        ({"data_splitter": "predefined"}, "args.column_name", "needs args.column_name"),
        (
            {"data_splitter": "predefined", "args": {"column_name": "s", "shuffle": False}},
            "args.shuffle",
            "only applies to data_splitter: percentage",
        ),
        (
            {
                "data_splitter": "predefined",
                "args": {"column_name": "s", "test_set_label": "TRAIN"},
            },
            "args",
            "labels must differ",
        ),
        ({"data_splitter": "random"}, "data_splitter", "'percentage' or 'predefined'"),
    ],
)
def test_bad_data_split(split: dict[str, Any], path: str, text: str) -> None:
    """Each inconsistent data_split is reported at its path with the rule it breaks."""
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(DataSplitConfig, split)

    assert f"  {path}: " in str(caught.value)
    assert text in str(caught.value)


def test_predefined_split_reads_its_column() -> None:
    """A predefined split keeps its column and default labels."""
    split = DataSplitConfig.model_validate(
        {"data_splitter": "predefined", "args": {"column_name": "fold"}}
    )

    assert split.args.column_name == "fold"
    assert split.args.training_set_label == "TRAIN"


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"max_epsilon": 0}, "max_epsilon"),
        ({"max_epsilon": float("inf")}, "max_epsilon"),
        ({"max_target_delta": 1}, "max_target_delta"),
        ({"max_target_delta": 0}, "max_target_delta"),
    ],
)
def test_dp_limits_are_bounded(values: dict[str, float], path: str) -> None:
    """Epsilon must be finite and positive; delta strictly between 0 and 1."""
    with pytest.raises(ConfigValidationError, match=f"  {path}: "):
        validate_config(DPPodConfig, values)


def test_dp_defaults() -> None:
    """Without values the DP limits are epsilon 3 and delta 1e-6."""
    config = DPPodConfig()

    assert (config.max_epsilon, config.max_target_delta) == (3.0, 1e-6)


def test_hub_url_must_be_http() -> None:
    """The hub URL must be http(s); a trailing slash is dropped."""
    assert "hub.url: 'hub.example.org' is not an http(s) URL" in problems_of(
        pod(hub={"url": "hub.example.org"})
    )
    config = validate_config(PodConfig, pod(hub={"url": "https://hub.example.org/"}))
    assert config.hub is not None
    assert config.hub.url == "https://hub.example.org"


def test_secrets_need_a_username() -> None:
    """API keys without a username are rejected at username."""
    data = pod(secrets={"access_key_id": "id", "access_key": "k"})

    assert "  username: secrets need a username" in problems_of(data)


def test_bitfount_secrets_shape_is_accepted_and_hidden() -> None:
    """secrets: {bitfount: {...}} is accepted, and the key never shows in repr."""
    config = validate_config(
        PodConfig,
        pod(username="alice", secrets={"bitfount": {"access_key_id": "id", "access_key": "k9z"}}),
    )

    assert config.secrets is not None
    assert config.secrets.access_key.get_secret_value() == "k9z"
    assert "k9z" not in repr(config)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("db/pod.sqlite", Path("db/pod.sqlite"))],
)
def test_pod_db_is_a_flag_or_a_path(value: object, expected: object) -> None:
    """pod_db accepts true, false or a path, and Bitfount's {path: ...} shape."""
    assert validate_config(PodConfig, pod(pod_db=value)).pod_db == expected
    if isinstance(value, str):
        assert validate_config(PodConfig, pod(pod_db={"path": value})).pod_db == expected


def test_pod_db_of_another_type_is_one_clear_error() -> None:
    """A pod_db that is neither a flag nor a path gives one message saying what is allowed."""
    message = problems_of(pod(pod_db=3))

    assert message.count("\n") == 1
    assert "pod_db: expected true, false or a file path, got 3." in message


def test_numeric_version_is_kept_as_text() -> None:
    """version: 2.0 in YAML (a float) is kept as the text '2.0'."""
    assert validate_config(PodConfig, pod(version=2.0)).version == "2.0"


def test_relative_paths_resolve_against_cwd_without_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config built in Python resolves relative paths against the working folder."""
    monkeypatch.chdir(tmp_path)
    config = validate_config(PodConfig, pod())

    assert config.source_path is None
    assert config.resolve_path("a/b.csv") == tmp_path / "a" / "b.csv"
