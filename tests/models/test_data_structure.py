"""Tests of podium.models.data_structure: both definition shapes, columns and splits."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.crypto.encoding import canonical_bytes
from podium.core.errors import TaskDefinitionError
from podium.models.data_structure import DataStructure

BITFOUNT = {
    "table_config": {"table": "census"},
    "select": {"include": ["age", "education", "fnlwgt"], "exclude": ["fnlwgt"]},
    "assign": {"target": "TARGET"},
    "data_split": {"data_splitter": "percentage", "args": {"validation_percentage": 20}},
}
FLAT = {
    "table": "census",
    "target": "TARGET",
    "selected_cols": ["age", "education", "fnlwgt"],
    "ignore_cols": ["fnlwgt"],
    "data_split": {"data_splitter": "percentage", "args": {"validation_percentage": 20}},
}
PREDEFINED = {
    "target": "y",
    "data_split": {
        "data_splitter": "predefined",
        "args": {"column_name": "part", "training_set_label": "1", "test_set_label": "3"},
    },
}


def _error(definition: Any) -> str:
    with pytest.raises(TaskDefinitionError) as caught:
        DataStructure.from_definition(definition)
    return str(caught.value)


def _through_json(definition: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(canonical_bytes(definition))
    return loaded


def test_bitfount_and_flat_shapes_normalise_to_the_same_structure() -> None:
    """Bitfount's nested shape and Podium's flat one give one equal DataStructure."""
    bitfount = DataStructure.from_definition(BITFOUNT)
    flat = DataStructure.from_definition(FLAT)
    assert bitfount == flat
    assert bitfount.target == "TARGET"
    assert bitfount.selected_cols == ("age", "education", "fnlwgt")
    assert bitfount.ignore_cols == ("fnlwgt",)
    assert bitfount.table == "census"
    assert bitfount.data_split.args.validation_percentage == 20


def test_a_one_element_target_list_is_the_target() -> None:
    """``assign.target: [TARGET]`` is read as ``target: TARGET``."""
    structure = DataStructure.from_definition({"assign": {"target": ["TARGET"]}})
    assert structure.target == "TARGET"
    assert structure.selected_cols is None
    assert structure.ignore_cols == ()


def test_defaults_are_a_shuffled_ten_ten_percentage_split() -> None:
    """Without ``data_split`` the split is 10% validation, 10% test, shuffled."""
    split = DataStructure.from_definition({"target": "y"}).data_split
    assert split.data_splitter == "percentage"
    assert (split.args.validation_percentage, split.args.test_percentage) == (10, 10)
    assert split.args.shuffle is True


def test_several_targets_are_refused_naming_assign_target() -> None:
    """Two targets are an error that names ``assign.target``."""
    message = _error({"assign": {"target": ["a", "b"]}})
    assert "assign.target" in message
    assert "exactly one" in message


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"target": "y", "colour": 1}, "'colour'"),
        ({"assign": {"target": "y"}, "select": {"include": ["a"], "only": ["b"]}}, "select.only"),
        ({"assign": {"target": "y"}, "table_config": {"tabel": "x"}}, "table_config.tabel"),
        ({"target": "y", "data_split": {"data_splitter": "random"}}, "data_split.data_splitter"),
    ],
)
def test_unknown_keys_and_values_are_errors_naming_the_field(
    definition: dict[str, Any], field: str
) -> None:
    """An unknown key or value in either shape is an error that names its field."""
    message = _error(definition)
    assert field in message
    assert message.startswith("data_structure")


def test_bad_split_percentages_name_the_split_args() -> None:
    """Percentages leaving no training rows are refused, naming ``data_split.args``."""
    args = {"validation_percentage": 60, "test_percentage": 40}
    message = _error({"target": "y", "data_split": {"args": args}})
    assert "data_split.args" in message
    assert "below 100" in message


def test_a_percentage_argument_on_a_predefined_split_is_refused() -> None:
    """``validation_percentage`` with ``predefined`` names the argument."""
    args = {"column_name": "part", "validation_percentage": 5}
    message = _error({"target": "y", "data_split": {"data_splitter": "predefined", "args": args}})
    assert "data_split.args.validation_percentage" in message


def test_mixing_the_two_shapes_is_refused() -> None:
    """A definition with both ``assign`` and ``target`` says to use one shape."""
    message = _error({"assign": {"target": "y"}, "target": "y"})
    assert "one shape" in message


def test_the_target_cannot_be_ignored_or_the_split_column() -> None:
    """The target in ``ignore_cols`` or as the split column is refused."""
    assert "ignore_cols" in _error({"target": "y", "ignore_cols": ["y"]})
    predefined = {"data_splitter": "predefined", "args": {"column_name": "y"}}
    assert "split column" in _error({"target": "y", "data_split": predefined})


def test_a_non_mapping_definition_is_refused() -> None:
    """A list where the mapping belongs is a TaskDefinitionError."""
    assert "mapping" in _error(["target", "y"])


@pytest.mark.parametrize("definition", [BITFOUNT, FLAT, PREDEFINED, {"target": "y"}])
def test_definitions_round_trip_through_canonical_json(definition: dict[str, Any]) -> None:
    """``to_definition`` survives canonical JSON and reads back to the same structure."""
    structure = DataStructure.from_definition(definition)
    again = DataStructure.from_definition(_through_json(structure.to_definition()))
    assert again == structure
    assert again.to_definition() == structure.to_definition()


@settings(max_examples=50, derandomize=True)
@given(
    target=st.text(min_size=1, max_size=8),
    selected=st.none() | st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True),
    validation=st.integers(0, 49),
    test=st.integers(0, 49),
    shuffle=st.booleans(),
)
def test_any_flat_definition_round_trips(
    target: str, selected: list[str] | None, validation: int, test: int, shuffle: bool
) -> None:
    """Every valid flat definition reads back from its canonical JSON unchanged."""
    args = {"validation_percentage": validation, "test_percentage": test, "shuffle": shuffle}
    structure = DataStructure.from_definition(
        {"target": target, "selected_cols": selected, "data_split": {"args": args}}
    )
    assert DataStructure.from_definition(_through_json(structure.to_definition())) == structure


def test_feature_columns_follow_the_available_order() -> None:
    """Selected minus ignored minus target, in the order the pod has them."""
    structure = DataStructure.from_definition(FLAT)
    available = ["fnlwgt", "TARGET", "education", "age", "other"]
    assert structure.feature_columns(available) == ["education", "age"]
    everything = DataStructure.from_definition({"target": "TARGET", "ignore_cols": ["other"]})
    assert everything.feature_columns(available) == ["fnlwgt", "education", "age"]


def test_the_predefined_split_column_is_never_a_feature() -> None:
    """The column a predefined split reads is left out of the features."""
    structure = DataStructure.from_definition(PREDEFINED)
    assert structure.feature_columns(["a", "part", "y", "b"]) == ["a", "b"]


def test_a_target_missing_on_a_pod_names_it_and_the_pod_columns() -> None:
    """A target the pod lacks is an error naming the column and the pod's columns."""
    structure = DataStructure.from_definition({"target": "income"})
    with pytest.raises(TaskDefinitionError) as caught:
        structure.feature_columns(["age", "TARGET"])
    message = str(caught.value)
    assert "'income' is the target" in message
    assert "['age', 'TARGET']" in message


def test_unknown_selected_and_ignored_columns_are_listed() -> None:
    """Selected and ignored columns the pod lacks are all named, with their roles."""
    structure = DataStructure.from_definition(
        {"target": "y", "selected_cols": ["a", "b"], "ignore_cols": ["c"]}
    )
    with pytest.raises(TaskDefinitionError) as caught:
        structure.feature_columns(["a", "y"])
    message = str(caught.value)
    assert "'b' is in selected_cols" in message
    assert "'c' is in ignore_cols" in message


def test_no_feature_left_is_an_error() -> None:
    """A structure that leaves no feature column says so."""
    structure = DataStructure.from_definition({"target": "y", "ignore_cols": ["a"]})
    with pytest.raises(TaskDefinitionError, match="no feature columns"):
        structure.feature_columns(["a", "y"])


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(n), "y": np.arange(n) % 2})


def test_percentage_split_sizes_and_determinism() -> None:
    """10/10 of 1000 rows is 800/100/100; the same seed gives the same rows."""
    structure = DataStructure.from_definition({"target": "y"})
    first = structure.split(_rows(1000), seed=7)
    again = structure.split(_rows(1000), seed=7)
    other = structure.split(_rows(1000), seed=8)
    assert (len(first.train), len(first.validation), len(first.test)) == (800, 100, 100)
    for part, same in zip(
        (first.train, first.validation, first.test),
        (again.train, again.validation, again.test),
        strict=True,
    ):
        pd.testing.assert_frame_equal(part, same)
        assert list(part.index) == list(range(len(part)))
    ids = pd.concat([first.train.id, first.validation.id, first.test.id])
    assert sorted(ids) == list(range(1000))
    assert not first.train.id.equals(other.train.id)


def test_an_unshuffled_split_keeps_the_row_order() -> None:
    """``shuffle: false`` takes training, validation and test rows in order."""
    args = {"validation_percentage": 25, "test_percentage": 25, "shuffle": False}
    structure = DataStructure.from_definition({"target": "y", "data_split": {"args": args}})
    split = structure.split(_rows(8), seed=1)
    assert list(split.train.id) == [0, 1, 2, 3]
    assert list(split.validation.id) == [4, 5]
    assert list(split.test.id) == [6, 7]


def test_predefined_split_reads_labels_as_text_and_drops_others() -> None:
    """Rows go where their label says (1 matches "1"); other labels and missing are dropped."""
    frame = pd.DataFrame(
        {"part": [1.0, 2.0, 3.0, 1.0, 9.0, None], "y": [0, 1, 0, 1, 0, 1], "x": range(6)}
    )
    definition = {
        "target": "y",
        "data_split": {
            "data_splitter": "predefined",
            "args": {
                "column_name": "part",
                "training_set_label": "1",
                "validation_set_label": "2",
                "test_set_label": "3",
            },
        },
    }
    split = DataStructure.from_definition(definition).split(frame, seed=0)
    assert list(split.train.x) == [0, 3]
    assert list(split.validation.x) == [1]
    assert list(split.test.x) == [2]
    assert list(split.train.index) == [0, 1]


def test_predefined_split_without_its_column_is_an_error() -> None:
    """A predefined split column missing from the data is named with the columns."""
    structure = DataStructure.from_definition(PREDEFINED)
    with pytest.raises(TaskDefinitionError, match=r"'part' is not in the data.*\['y'\]"):
        structure.split(pd.DataFrame({"y": [1]}), seed=0)
