"""Tests of podium.models.features: features from pods' schemas, normalisation, encoding."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.crypto.encoding import canonical_bytes
from podium.core.errors import ProtocolError, TaskDefinitionError
from podium.data.census import load_census
from podium.data.schema import infer_schema
from podium.data.sources.frame_source import DataFrameSource
from podium.data.splitting import split_frame
from podium.models.data_structure import DataStructure
from podium.models.features import (
    CategoricalFeature,
    Normalisation,
    TabularEncoder,
    TabularFeatures,
    moments_of,
)

Moments = tuple[int, float, float]


def _schema(frame: pd.DataFrame, name: str = "pod") -> dict[str, object]:
    return infer_schema(DataFrameSource(frame), name=name).to_dict()


def _structure(target: str, **rest: Any) -> DataStructure:
    return DataStructure.from_definition({"target": target, **rest})


def _through_json(definition: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(canonical_bytes(definition))
    return loaded


def _chan(parts: Sequence[Moments]) -> Moments:
    """Chan et al.'s pairwise merge of (count, mean, M2)."""
    n, mean, m2 = 0, 0.0, 0.0
    for n_b, mean_b, m2_b in parts:
        total = n + n_b
        if total == 0:
            continue
        delta = mean_b - mean
        mean, m2 = mean + delta * n_b / total, m2 + m2_b + delta * delta * n * n_b / total
        n = total
    return n, mean, m2


@pytest.fixture(scope="module")
def census_pods() -> list[pd.DataFrame]:
    """The census data split over three pods by race (non-IID)."""
    return split_frame(load_census(), 3, by="race", seed=0)


@pytest.fixture(scope="module")
def census_schemas(census_pods: list[pd.DataFrame]) -> list[dict[str, object]]:
    """The three pods' registered schemas."""
    return [_schema(frame, f"pod-{i}") for i, frame in enumerate(census_pods)]


# -- features from schemas ---------------------------------------------------------------


def test_census_features_are_the_same_in_any_pod_order(
    census_schemas: list[dict[str, object]],
) -> None:
    """Three pods' schemas give the same features whatever order they come in."""
    structure = _structure("TARGET")
    first = TabularFeatures.from_schemas(census_schemas, structure)
    for order in itertools.permutations(census_schemas):
        assert TabularFeatures.from_schemas(list(order), structure) == first
    assert first.task == "classification"
    assert first.classes == ("<=50K", ">50K")
    assert set(first.continuous) == {
        "age",
        "fnlwgt",
        "capital-gain",
        "capital-loss",
        "hours-per-week",
    }
    assert "TARGET" not in first.columns


def test_a_category_only_one_pod_has_is_known_to_all(
    census_pods: list[pd.DataFrame], census_schemas: list[dict[str, object]]
) -> None:
    """The union of every pod's values: each pod's own race gets a code on every pod."""
    features = TabularFeatures.from_schemas(census_schemas, _structure("TARGET"))
    race = next(f for f in features.categorical if f.name == "race")
    every_race = sorted(load_census().race.unique())
    assert list(race.categories) == every_race
    only_pod_0 = set(census_pods[0].race) - set(census_pods[1].race) - set(census_pods[2].race)
    assert only_pod_0
    moments = moments_of(census_pods[1], features.continuous)
    encoder = TabularEncoder(features, Normalisation.from_moments(moments))
    column = features.columns.index("race")
    for frame in census_pods:
        codes = encoder.encode(frame).categorical[:, column]
        assert (codes > 0).all()
    value = only_pod_0.pop()
    probe = census_pods[1].head(1).assign(race=value)
    assert encoder.encode(probe).categorical[0, column] == every_race.index(value) + 1


def test_a_column_missing_on_one_pod_names_the_pod_and_column(
    census_pods: list[pd.DataFrame],
) -> None:
    """A feature column absent from one pod's schema is an error naming both."""
    schemas = [_schema(census_pods[0]), _schema(census_pods[1].drop(columns=["occupation"]))]
    with pytest.raises(TaskDefinitionError) as caught:
        TabularFeatures.from_schemas(schemas, _structure("TARGET"))
    assert "pod 1 lacks ['occupation']" in str(caught.value)


def test_a_target_missing_on_a_pod_names_the_pod_and_its_columns() -> None:
    """A pod without the target column is named, with its columns."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "y": ["p", "q"]})
    schemas = [_schema(frame), _schema(frame.drop(columns=["y"]))]
    with pytest.raises(TaskDefinitionError) as caught:
        TabularFeatures.from_schemas(schemas, _structure("y"))
    message = str(caught.value)
    assert "pod 1" in message
    assert "'y' is the target" in message
    assert "['a']" in message


def test_a_text_column_must_be_ignored() -> None:
    """A text column is refused by name until it is in ignore_cols."""
    frame = pd.DataFrame(
        {"note": [f"note {i}" for i in range(10)], "x": np.arange(10.0), "y": ["a", "b"] * 5}
    )
    schemas = [_schema(frame)]
    with pytest.raises(TaskDefinitionError, match=r"'note' is text.*ignore_cols"):
        TabularFeatures.from_schemas(schemas, _structure("y"))
    features = TabularFeatures.from_schemas(schemas, _structure("y", ignore_cols=["note"]))
    assert features.columns == ("x",)


def test_a_column_with_different_types_on_two_pods_is_refused() -> None:
    """A column categorical on one pod and continuous on another names both pods."""
    numbers = pd.DataFrame({"c": np.arange(6.0), "y": ["a", "b"] * 3})
    flags = pd.DataFrame({"c": [True, False] * 3, "y": ["a", "b"] * 3})
    with pytest.raises(TaskDefinitionError) as caught:
        TabularFeatures.from_schemas([_schema(numbers), _schema(flags)], _structure("y"))
    message = str(caught.value)
    assert "'c'" in message
    assert "pod 0: continuous" in message
    assert "pod 1: categorical" in message


def test_a_continuous_target_is_regression() -> None:
    """A continuous target gives a regression task with no classes."""
    frame = pd.DataFrame({"x": ["a", "b", "a", "b"], "y": [0.5, 1.5, 2.5, 3.5]})
    features = TabularFeatures.from_schemas([_schema(frame)], _structure("y"))
    assert features.task == "regression"
    assert features.classes == ()
    assert features.categorical == (CategoricalFeature("x", ("a", "b")),)


def test_a_single_class_target_is_refused() -> None:
    """Classification over one class in all pods is an error naming the target."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]})
    with pytest.raises(TaskDefinitionError, match="'y' has 1 class"):
        TabularFeatures.from_schemas([_schema(frame)], _structure("y"))


def test_an_invalid_schema_names_the_pod() -> None:
    """A schema that does not parse is an error naming the pod's index."""
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    broken = {**_schema(frame), "version": 9}
    with pytest.raises(TaskDefinitionError, match="schema of pod 1"):
        TabularFeatures.from_schemas([_schema(frame), broken], _structure("y"))


def test_features_round_trip_through_canonical_json(
    census_schemas: list[dict[str, object]],
) -> None:
    """Features read back from their canonical JSON are equal."""
    features = TabularFeatures.from_schemas(census_schemas, _structure("TARGET"))
    assert TabularFeatures.from_definition(_through_json(features.to_definition())) == features


def test_a_bad_features_definition_names_the_field() -> None:
    """A wrong field in a features definition is an error naming it."""
    definition = {
        "categorical": [{"name": "c", "categories": "abc"}],
        "continuous": [],
        "target": "y",
        "classes": ["a", "b"],
        "task": "classification",
    }
    with pytest.raises(TaskDefinitionError, match=r"categorical\.0\.categories"):
        TabularFeatures.from_definition(definition)


# -- normalisation and moments -----------------------------------------------------------


def test_normalisation_from_pooled_moments_is_pandas_standardisation() -> None:
    """Encoding with moments of the data equals (x - mean) / std with ddof=0."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(40, 12, 500), "c": ["a"] * 500, "y": [1.0] * 500})
    frame.loc[[3, 9], "x"] = np.nan
    features = TabularFeatures((), ("x",), "y", (), "regression")
    encoded = TabularEncoder(features, Normalisation.from_moments(moments_of(frame, ["x"])))
    values = encoded.encode(frame).continuous[:, 0]
    expected = ((frame.x - frame.x.mean()) / frame.x.std(ddof=0)).fillna(0.0)
    np.testing.assert_allclose(values, expected.to_numpy(), rtol=1e-5, atol=1e-6)
    assert values[3] == 0.0


def test_merged_moments_of_three_parts_equal_the_pooled_moments(
    census_pods: list[pd.DataFrame],
) -> None:
    """Chan's merge of three pods' moments equals the moments of the pooled rows."""
    columns = ["age", "fnlwgt", "capital-gain"]
    parts = [moments_of(frame, columns) for frame in census_pods]
    pooled = moments_of(pd.concat(census_pods), columns)
    for column in columns:
        count, mean, m2 = _chan([part[column] for part in parts])
        assert count == pooled[column][0]
        assert mean == pytest.approx(pooled[column][1], rel=1e-12)
        assert m2 == pytest.approx(pooled[column][2], rel=1e-9)


@settings(max_examples=60, derandomize=True)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    cuts=st.tuples(st.integers(0, 60), st.integers(0, 60)),
)
def test_moments_merge_like_the_pooled_data(values: list[float], cuts: tuple[int, int]) -> None:
    """Any three-way cut of a column merges back to its pooled moments."""
    low, high = sorted(cut % (len(values) + 1) for cut in cuts)
    frame = pd.DataFrame({"x": values})
    parts = [frame.iloc[:low], frame.iloc[low:high], frame.iloc[high:]]
    count, mean, m2 = _chan([moments_of(part, ["x"])["x"] for part in parts])
    pooled = moments_of(frame, ["x"])["x"]
    assert count == pooled[0]
    assert mean == pytest.approx(pooled[1], rel=1e-9, abs=1e-6)
    assert m2 == pytest.approx(pooled[2], rel=1e-6, abs=1e-3)


def test_moments_ignore_missing_values_and_read_booleans_as_numbers() -> None:
    """NaN is skipped, booleans count as 0/1, an all-missing column is (0, 0, 0)."""
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "b": [True, False, True], "e": [np.nan] * 3})
    moments = moments_of(frame, ["x", "b", "e"])
    assert moments["x"] == (2, 2.0, 2.0)
    assert moments["b"][0] == 3
    assert moments["b"][1] == pytest.approx(2 / 3)
    assert moments["e"] == (0, 0.0, 0.0)
    with pytest.raises(TaskDefinitionError, match="'z'"):
        moments_of(frame, ["z"])


def test_a_constant_or_empty_column_normalises_to_zero() -> None:
    """A constant column encodes as 0, and a column with no values anywhere as 0."""
    frame = pd.DataFrame({"k": [0.1] * 7, "e": [np.nan] * 7, "y": [0.0] * 7})
    normalisation = Normalisation.from_moments(moments_of(frame, ["k", "e"]))
    assert normalisation.columns["e"] == (0.0, 1.0)
    features = TabularFeatures((), ("k", "e"), "y", (), "regression")
    encoded = TabularEncoder(features, normalisation).encode(frame)
    np.testing.assert_allclose(encoded.continuous, 0.0, atol=1e-12)


def test_bad_moments_are_refused() -> None:
    """A negative count or a non-finite mean is a protocol error naming the column."""
    with pytest.raises(ProtocolError, match="'x'"):
        Normalisation.from_moments({"x": (-1, 0.0, 0.0)})
    with pytest.raises(ProtocolError, match="'x'"):
        Normalisation.from_moments({"x": (3, float("nan"), 0.0)})


def test_normalisation_round_trips_through_canonical_json() -> None:
    """A normalisation reads back from its canonical JSON exactly."""
    normalisation = Normalisation.from_moments({"a": (10, 0.1, 3.3), "b": (4, -2.0, 0.0)})
    again = Normalisation.from_definition(_through_json(normalisation.to_definition()))
    assert again == normalisation
    with pytest.raises(TaskDefinitionError, match="columns"):
        Normalisation.from_definition({"columns": {"a": [1.0]}})


# -- encoding ----------------------------------------------------------------------------


def _encoder(features: TabularFeatures, frame: pd.DataFrame) -> TabularEncoder:
    return TabularEncoder(
        features, Normalisation.from_moments(moments_of(frame, features.continuous))
    )


def test_categorical_codes_for_known_unknown_and_missing_values() -> None:
    """Known categories get i + 1; unknown and missing values get 0."""
    features = TabularFeatures(
        (CategoricalFeature("c", ("a", "b", "c")),), (), "y", ("no", "yes"), "classification"
    )
    frame = pd.DataFrame({"c": ["b", "z", None, "a", "c"], "y": ["no"] * 5})
    encoded = TabularEncoder(features, Normalisation()).encode(frame)
    assert encoded.categorical[:, 0].tolist() == [2, 0, 0, 1, 3]
    assert encoded.categorical.dtype == np.int64
    assert encoded.continuous.shape == (5, 0)
    assert encoded.continuous.dtype == np.float32


def test_values_encode_as_the_schema_renders_them() -> None:
    """Integers, whole floats and booleans match the schema's text values."""
    pod = pd.DataFrame(
        {
            "n": pd.Series([1, 2, 1, 2, 1, 2], dtype="int64"),
            "f": [True, False, True, False, True, False],
            "y": ["a", "b", "a", "b", "a", "b"],
        }
    )
    schema = infer_schema(
        DataFrameSource(pod), name="pod", force_stypes={"n": "categorical"}
    ).to_dict()
    features = TabularFeatures.from_schemas([schema], _structure("y"))
    assert features.categorical == (
        CategoricalFeature("n", ("1", "2")),
        CategoricalFeature("f", ("false", "true")),
    )
    other_pod = pd.DataFrame({"n": [2.0, 1.0, np.nan, 3.0], "f": [False, True, None, True]})
    encoded = TabularEncoder(features, Normalisation()).encode(other_pod)
    assert encoded.categorical.tolist() == [[2, 1], [1, 2], [0, 0], [0, 2]]
    assert encoded.target is None


def test_classification_targets_drop_missing_and_unknown_classes() -> None:
    """Rows with a missing or unknown class are dropped and counted; the rest are indexes."""
    features = TabularFeatures((), ("x",), "y", ("a", "b"), "classification")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["b", None, "q", "a"]})
    encoded = _encoder(features, frame).encode(frame)
    assert encoded.target is not None
    assert encoded.target.tolist() == [1, 0]
    assert encoded.target.dtype == np.int64
    assert encoded.dropped == 2
    assert len(encoded) == 2
    assert encoded.continuous.shape == (2, 1)
    assert encoded.continuous[0, 0] < encoded.continuous[1, 0]


def test_regression_targets_are_float32_values() -> None:
    """A regression target is its float32 values; missing targets are dropped."""
    features = TabularFeatures((CategoricalFeature("c", ("a",)),), (), "y", (), "regression")
    frame = pd.DataFrame({"c": ["a", "a", "b"], "y": [1.5, np.nan, -2.0]})
    encoded = TabularEncoder(features, Normalisation()).encode(frame)
    assert encoded.target is not None
    assert encoded.target.dtype == np.float32
    assert encoded.target.tolist() == [1.5, -2.0]
    assert encoded.categorical[:, 0].tolist() == [1, 0]
    assert encoded.dropped == 1


def test_encoder_shapes_for_building_a_model(census_schemas: list[dict[str, object]]) -> None:
    """Cardinalities are categories + 1 each; n_continuous counts the continuous columns."""
    features = TabularFeatures.from_schemas(census_schemas, _structure("TARGET"))
    moments = dict.fromkeys(features.continuous, (10, 0.0, 10.0))
    encoder = TabularEncoder(features, Normalisation.from_moments(moments))
    assert encoder.cardinalities == [len(f.categories) + 1 for f in features.categorical]
    assert encoder.n_continuous == 5
    race = [f.name for f in features.categorical].index("race")
    assert encoder.cardinalities[race] == 6


def test_an_encoder_needs_every_column() -> None:
    """A missing normalisation or a missing frame column is an error naming the column."""
    features = TabularFeatures((), ("x",), "y", (), "regression")
    with pytest.raises(TaskDefinitionError, match="'x'"):
        TabularEncoder(features, Normalisation())
    encoder = TabularEncoder(features, Normalisation({"x": (0.0, 1.0)}))
    with pytest.raises(TaskDefinitionError, match=r"\['x'\] are not in the data"):
        encoder.encode(pd.DataFrame({"y": [1.0]}))


def test_a_million_rows_encode_in_well_under_a_second() -> None:
    """Encoding is vectorised: 1M rows with 2 categorical and 2 continuous columns is fast."""
    rng = np.random.default_rng(0)
    rows = 1_000_000
    words = np.array([f"w{i}" for i in range(40)], dtype=object)
    frame = pd.DataFrame(
        {
            "c1": pd.Series(words[rng.integers(0, 40, rows)], dtype="str"),
            "c2": rng.integers(0, 30, rows),
            "x1": rng.normal(size=rows),
            "x2": rng.integers(0, 100, rows).astype(float),
            "y": pd.Series(np.where(rng.random(rows) < 0.5, "a", "b"), dtype="str"),
        }
    )
    features = TabularFeatures(
        (
            CategoricalFeature("c1", tuple(sorted(words[:35]))),
            CategoricalFeature("c2", tuple(sorted(str(i) for i in range(30)))),
        ),
        ("x1", "x2"),
        "y",
        ("a", "b"),
        "classification",
    )
    encoder = _encoder(features, frame.head(1000))
    started = time.perf_counter()
    encoded = encoder.encode(frame)
    elapsed = time.perf_counter() - started
    assert len(encoded) == rows
    assert elapsed < 1.0, f"encoding 1M rows took {elapsed:.2f}s"


def test_invalid_features_are_refused() -> None:
    """Duplicate columns, a feature that is the target or classes on regression are errors."""
    with pytest.raises(TaskDefinitionError, match="once"):
        TabularFeatures((), ("x", "x"), "y", (), "regression")
    with pytest.raises(TaskDefinitionError, match="once"):
        TabularFeatures((), ("y",), "y", (), "regression")
    with pytest.raises(TaskDefinitionError, match="no classes"):
        TabularFeatures((), ("x",), "y", ("a",), "regression")
    with pytest.raises(TaskDefinitionError, match="at least one feature"):
        TabularFeatures((), (), "y", ("a", "b"), "classification")
