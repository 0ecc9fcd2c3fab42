"""Mergeable statistics summaries agree with pandas and numpy on the concatenated data."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.algorithms.summary import (
    MAX_BUCKETS,
    CategoricalSummary,
    NumericSummary,
    QuantileSketch,
    StatisticsSpec,
    Summary,
    SummaryFormatError,
)

NUMERIC = ("x", "i")
CATEGORICAL = ("c", "b")
ACCURACY = 0.01

floats_or_null = st.one_of(st.floats(-1e6, 1e6), st.just(math.nan))


@st.composite
def frames(draw: st.DrawFn, *, max_rows: int = 30) -> pd.DataFrame:
    """A frame with a float column with nulls, an int, a categorical, a bool and a group."""
    n = draw(st.integers(0, max_rows))

    def column(elements: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(elements, min_size=n, max_size=n))

    return pd.DataFrame(
        {
            "x": np.array(column(floats_or_null), dtype=np.float64),
            "i": np.array(column(st.integers(-1000, 1000)), dtype=np.int64),
            "c": pd.Series(column(st.sampled_from(["red", "green", "blue", None])), dtype=object),
            "b": np.array(column(st.booleans()), dtype=bool),
            "g": pd.Series(column(st.sampled_from(["u", "v", None])), dtype=object),
        }
    )


@st.composite
def split(draw: st.DrawFn, frame: pd.DataFrame) -> list[pd.DataFrame]:
    """The frame's rows shuffled and cut into 1..5 parts (some possibly empty), shuffled."""
    n = len(frame)
    k = draw(st.integers(1, 5))
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1)))
    bounds = [0, *cuts, n]
    parts = [frame.iloc[list(order[a:b])] for a, b in itertools.pairwise(bounds)]
    return [parts[i] for i in draw(st.permutations(range(k)))]


def _expected_groups(frame: pd.DataFrame, group_by: tuple[str, ...]) -> dict[Any, pd.DataFrame]:
    if not group_by:
        return {(): frame}
    groups = frame.groupby(list(group_by), dropna=False, sort=False)
    return {
        tuple(None if isinstance(v, float) and math.isnan(v) else v for v in key): part
        for key, part in groups
    }


def _close(actual: float, expected: float, *, scale: float) -> bool:
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9 * scale)


def _assert_quantile_close(actual: float, expected: float, accuracy: float) -> None:
    assert abs(actual - expected) <= accuracy * abs(expected) * (1 + 1e-9) + 1e-12, (
        actual,
        expected,
    )


def _assert_numeric(summary: NumericSummary, values: np.ndarray, spec: StatisticsSpec) -> None:
    finite = values[np.isfinite(values)]
    assert summary.count == finite.size
    assert summary.nulls == values.size - finite.size
    if finite.size == 0:
        assert summary.min is None
        assert summary.max is None
        assert all(math.isnan(q) for q in summary.quantiles(spec.quantiles))
        return
    scale = float(np.abs(finite).max()) or 1.0
    assert summary.min == finite.min()
    assert summary.max == finite.max()
    assert _close(summary.sum, float(finite.sum()), scale=scale * finite.size)
    assert _close(summary.mean, float(finite.mean()), scale=scale)
    if finite.size >= 2:
        assert _close(summary.variance, float(np.var(finite, ddof=1)), scale=scale * scale)
    else:
        assert math.isnan(summary.variance)
    for q, value in zip(spec.quantiles, summary.quantiles(spec.quantiles), strict=True):
        _assert_quantile_close(value, float(np.quantile(finite, q, method="lower")), ACCURACY)


def _merged(parts: list[pd.DataFrame], spec: StatisticsSpec) -> Summary:
    summaries = [Summary.of_frame(part, spec) for part in parts]
    return functools.reduce(Summary.merge, summaries, Summary.empty(spec))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), group_by=st.sampled_from([(), ("g",)]))
def test_merging_parts_equals_summarising_the_whole(
    data: st.DataObject, group_by: tuple[str, ...]
) -> None:
    """Summaries of random parts merged in random order match pandas on the whole frame."""
    frame = data.draw(frames())
    spec = StatisticsSpec(group_by=group_by, quantiles=(0.0, 0.1, 0.5, 0.9, 1.0))
    merged = _merged(data.draw(split(frame)), spec)

    expected = _expected_groups(frame, group_by)
    assert set(merged.groups) == set(expected)
    for key, part in expected.items():
        group = merged.groups[key]
        assert group.rows == len(part)
        for name in NUMERIC:
            summary = group.columns[name]
            assert isinstance(summary, NumericSummary)
            _assert_numeric(summary, part[name].to_numpy(dtype=np.float64), spec)
        for name in CATEGORICAL:
            summary = group.columns[name]
            assert isinstance(summary, CategoricalSummary)
            counts = part[name].dropna().astype(str).value_counts()
            assert dict(summary.values) == {str(k): int(v) for k, v in counts.items()}
            assert summary.nulls == int(part[name].isna().sum())
            assert summary.count == len(part) - summary.nulls


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_merge_is_associative_and_commutative(data: st.DataObject) -> None:
    """(a + b) + c equals a + (c + b) in counts, extremes and sketches, up to float rounding."""
    spec = StatisticsSpec(group_by=("g",))
    a, b, c = (Summary.of_frame(data.draw(frames()), spec) for _ in range(3))
    left = a.merge(b).merge(c)
    right = a.merge(c.merge(b))
    assert set(left.groups) == set(right.groups)
    for key, group in left.groups.items():
        other = right.groups[key]
        assert group.rows == other.rows
        for name, summary in group.columns.items():
            twin = other.columns[name]
            if isinstance(summary, NumericSummary):
                assert isinstance(twin, NumericSummary)
                assert (summary.count, summary.min, summary.max) == (twin.count, twin.min, twin.max)
                assert summary.sketch == twin.sketch
                assert math.isclose(summary.m2, twin.m2, rel_tol=1e-9, abs_tol=1e-6)
            else:
                assert summary == twin


def test_merge_is_pure() -> None:
    """merge returns a new summary and leaves both inputs as they were."""
    spec = StatisticsSpec(group_by=("g",))
    a = Summary.of_frame(pd.DataFrame({"g": ["u", "v"], "x": [1.0, 2.0]}), spec)
    b = Summary.of_frame(pd.DataFrame({"g": ["u"], "x": [3.0]}), spec)
    before_a, before_b = a.to_wire(), b.to_wire()
    merged = a.merge(b)
    assert merged.groups[("u",)].rows == 2
    assert a.to_wire() == before_a
    assert b.to_wire() == before_b


def test_null_group_values_form_their_own_group() -> None:
    """Rows whose group value is null are kept, under the key (None,)."""
    frame = pd.DataFrame({"g": ["u", None, None, np.nan], "x": [1.0, 2.0, 3.0, 4.0]})
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=("g",)))
    assert set(summary.groups) == {("u",), (None,)}
    assert summary.groups[(None,)].rows == 3


def test_several_group_by_columns_key_on_each_combination() -> None:
    """Two group_by columns give one group per observed combination, numbers as Python ints."""
    frame = pd.DataFrame({"g": ["u", "u", "v", "v"], "h": [1, 2, 1, 1], "x": [1.0, 2, 3, 4]})
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=("g", "h")))
    assert {k: g.rows for k, g in summary.groups.items()} == {
        ("u", 1): 1,
        ("u", 2): 1,
        ("v", 1): 2,
    }
    assert all(type(key[1]) is int for key in summary.groups)


def test_infinite_values_count_as_nulls() -> None:
    """inf and -inf are counted as nulls so the mean and variance stay finite."""
    frame = pd.DataFrame({"x": [1.0, math.inf, -math.inf, 3.0, math.nan]})
    summary = Summary.of_frame(frame, StatisticsSpec()).groups[()].columns["x"]
    assert isinstance(summary, NumericSummary)
    assert (summary.count, summary.nulls, summary.mean) == (2, 3, 2.0)


def test_nullable_integer_columns_are_numeric() -> None:
    """A pandas nullable Int64 column is numeric and its pd.NA entries are nulls."""
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    summary = Summary.of_frame(frame, StatisticsSpec()).groups[()].columns["n"]
    assert isinstance(summary, NumericSummary)
    assert (summary.count, summary.nulls, summary.sum) == (2, 1, 4.0)


def test_missing_columns_are_named_with_the_available_ones() -> None:
    """Asking for columns the frame lacks raises KeyError naming them and the available ones."""
    frame = pd.DataFrame({"x": [1.0], "y": [2.0]})
    with pytest.raises(KeyError, match=r"\['gone', 'nope'\].*\['x', 'y'\]"):
        Summary.of_frame(frame, StatisticsSpec(columns=("x", "nope"), group_by=("gone",)))


def test_merging_different_specs_is_refused() -> None:
    """Summaries computed under different specs cannot be merged."""
    a = Summary.empty(StatisticsSpec(bins=5))
    b = Summary.empty(StatisticsSpec(bins=6))
    with pytest.raises(ValueError, match="different specs"):
        a.merge(b)


def test_merging_a_column_of_different_kinds_is_refused() -> None:
    """A column numeric on one pod and text on another cannot be merged."""
    spec = StatisticsSpec(columns=("x",))
    a = Summary.of_frame(pd.DataFrame({"x": [1.0]}), spec)
    b = Summary.of_frame(pd.DataFrame({"x": ["one"]}), spec)
    with pytest.raises(ValueError, match="'x' is numeric in one summary"):
        a.merge(b)


# ---------------------------------------------------------------------------- quantiles


def test_one_million_rows_are_summarised_with_accurate_quantiles() -> None:
    """of_frame handles 1M rows x 10 columns and its quantiles match numpy's 'lower' ones."""
    rng = np.random.default_rng(7)
    n = 1_000_000
    frame = pd.DataFrame({f"x{j}": rng.normal(50 * j, 1 + j, n) for j in range(9)})
    frame["g"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    spec = StatisticsSpec(group_by=("g",), quantiles=(0.01, 0.5, 0.99))
    summary = Summary.of_frame(frame, spec)
    part = frame[frame["g"] == "b"]
    for name in ("x0", "x4", "x8"):
        column = summary.groups[("b",)].columns[name]
        assert isinstance(column, NumericSummary)
        assert column.count == len(part)
        for q, value in zip(spec.quantiles, column.quantiles(spec.quantiles), strict=True):
            expected = float(np.quantile(part[name].to_numpy(), q, method="lower"))
            _assert_quantile_close(value, expected, ACCURACY)


def test_quantiles_use_the_lower_rank() -> None:
    """Quantile q is the sorted value of 0-based rank floor(q * (n - 1)), as method='lower'."""
    values = np.array([10.0, 20.0, 30.0, 40.0])
    spec = StatisticsSpec(quantiles=(0.0, 0.32, 0.34, 0.99, 1.0), relative_accuracy=1e-6)
    column = Summary.of_frame(pd.DataFrame({"x": values}), spec).groups[()].columns["x"]
    assert isinstance(column, NumericSummary)
    assert column.quantiles(spec.quantiles) == pytest.approx([10, 10, 20, 30, 40], rel=1e-6)


def test_sketch_keeps_at_most_max_buckets_and_the_large_values_accurate() -> None:
    """Past MAX_BUCKETS the smallest magnitudes collapse; large quantiles stay accurate."""
    accuracy = 1e-4
    values = np.geomspace(1e-6, 1e6, 200_000)
    halves = [
        QuantileSketch.of_values(part, relative_accuracy=accuracy)
        for part in (values[::2], values[1::2])
    ]
    sketch = halves[0].merge(halves[1])
    assert len(sketch.positive) <= MAX_BUCKETS
    assert sketch.total == values.size
    assert sketch == halves[1].merge(halves[0])
    q = 0.99
    _assert_quantile_close(
        sketch.quantiles([q])[0], float(np.quantile(values, q, method="lower")), accuracy
    )


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_negative_zero_and_positive_values_keep_their_order(values: list[float]) -> None:
    """Quantiles over mixed signs (and values near zero) match numpy within the accuracy."""
    array = np.array(values)
    qs = (0.0, 0.25, 0.5, 0.75, 1.0)
    column = NumericSummary.of_values(array, relative_accuracy=ACCURACY)
    for q, value in zip(qs, column.quantiles(qs), strict=True):
        _assert_quantile_close(value, float(np.quantile(array, q, method="lower")), ACCURACY)


# ---------------------------------------------------------------------------- wire


@settings(max_examples=60, deadline=None)
@given(frame=frames(), group_by=st.sampled_from([(), ("g",)]))
def test_wire_round_trip_is_exact(frame: pd.DataFrame, group_by: tuple[str, ...]) -> None:
    """to_wire survives JSON and msgpack, and from_wire rebuilds an equal summary."""
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=group_by))
    wire = summary.to_wire()
    assert wire["version"] == 1
    assert Summary.from_wire(json.loads(json.dumps(wire, allow_nan=False))) == summary
    assert Summary.from_wire(msgpack.unpackb(msgpack.packb(wire), strict_map_key=True)) == summary


def _wire() -> dict[str, Any]:
    frame = pd.DataFrame({"g": ["u", "u", "v"], "x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    return Summary.of_frame(frame, StatisticsSpec(group_by=("g",))).to_wire()


def _x(wire: dict[str, Any]) -> dict[str, Any]:
    column: dict[str, Any] = wire["groups"][0]["columns"]["x"]
    return column


def _c(wire: dict[str, Any]) -> dict[str, Any]:
    column: dict[str, Any] = wire["groups"][0]["columns"]["c"]
    return column


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "missing version": (lambda w: w.pop("version"), r"summary is missing \['version'\]"),
    "bad version": (lambda w: w.update(version=2), "summary.version is 2"),
    "unknown field": (lambda w: w.update(extra=1), r"unknown fields \['extra'\]"),
    "bad spec": (lambda w: w["spec"].update(bins=0), "summary.spec is invalid"),
    "groups not a list": (lambda w: w.update(groups={}), "summary.groups must be a list"),
    "key too long": (
        lambda w: w["groups"][0].update(key=["u", "w"]),
        r"summary.groups\[0\].key has 2 values",
    ),
    "key of a dict": (lambda w: w["groups"][0].update(key=[{}]), r"groups\[0\].key holds"),
    "repeated group": (lambda w: w["groups"].append(w["groups"][0]), "repeats group"),
    "count as str": (lambda w: _x(w).update(count="2"), r"columns.x.count must be an integer"),
    "count as bool": (lambda w: _x(w).update(count=True), r"columns.x.count must be an integer"),
    "negative nulls": (lambda w: _x(w).update(nulls=-1), r"columns.x.nulls must be an integer"),
    "mean as str": (lambda w: _x(w).update(mean="1.5"), r"columns.x.mean must be a number"),
    "missing m2": (lambda w: _x(w).pop("m2"), r"columns.x is missing \['m2'\]"),
    "null min": (lambda w: _x(w).update(min=None), r"columns.x.min must be null exactly"),
    "unknown kind": (lambda w: _x(w).update(kind="text"), r"columns.x.kind is 'text'"),
    "sketch total": (lambda w: _x(w)["sketch"].update(zero=5), r"columns.x.sketch holds"),
    "bucket pair": (
        lambda w: _x(w)["sketch"]["positive"].append([1]),
        r"sketch.positive\[\d+\] must be \[bucket index, count\]",
    ),
    "bucket index float": (
        lambda w: _x(w)["sketch"]["positive"][0].__setitem__(0, 1.5),
        r"sketch.positive\[0\]\[0\] must be an integer",
    ),
    "value count str": (lambda w: _c(w)["values"].update(a="2"), r"columns.c.values.a must be"),
    "rows mismatch": (lambda w: w["groups"][0].update(rows=7), "do not add up to 7 rows"),
    "unlisted column": (lambda w: w.update(columns=["x"]), "is not in summary.columns"),
    "not a dict": (lambda w: w["groups"].__setitem__(0, []), r"groups\[0\] must be an object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_from_wire_rejects_malformed_input(case: str) -> None:
    """Each kind of malformed wire summary raises SummaryFormatError naming the field."""
    mutate, message = MALFORMED[case]
    wire = copy.deepcopy(_wire())
    Summary.from_wire(copy.deepcopy(wire))  # the unmutated document is valid
    mutate(wire)
    with pytest.raises(SummaryFormatError, match=message):
        Summary.from_wire(wire)


def test_from_wire_rejects_a_non_object() -> None:
    """A wire summary that is not a JSON object is refused, and the error is a ValueError."""
    with pytest.raises(ValueError, match="summary must be an object"):
        Summary.from_wire([1, 2])


# ---------------------------------------------------------------------------- suppression


def test_suppression_drops_small_groups_and_rare_values() -> None:
    """Groups under min_size rows and values seen fewer than min_size times are dropped."""
    frame = pd.DataFrame(
        {
            "g": ["big"] * 5 + ["small"] * 2,
            "c": ["a", "a", "a", "b", "c", "a", "a"],
            "x": [1.0, 2, 3, 4, 5, 6, 7],
        }
    )
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=("g",)))
    thinned, dropped = summary.suppress_small_groups(3)
    assert set(thinned.groups) == {("big",)}
    column = thinned.groups[("big",)].columns["c"]
    assert isinstance(column, CategoricalSummary)
    assert dict(column.values) == {"a": 3}
    assert column.count == 5
    assert dropped == 1 + 2  # the small group, then values b and c
    assert summary.groups[("small",)].rows == 2  # the original is untouched


def test_suppression_with_min_size_zero_keeps_everything() -> None:
    """min_size 0 suppresses nothing; a negative min_size is refused."""
    summary = Summary.of_frame(pd.DataFrame({"c": ["a", "b"]}), StatisticsSpec())
    assert summary.suppress_small_groups(0) == (summary, 0)
    with pytest.raises(ValueError, match="min_size"):
        summary.suppress_small_groups(-1)


# ---------------------------------------------------------------------------- tables


def test_table_has_one_row_per_group_and_numeric_column_in_order() -> None:
    """table() lists groups in order, then the spec's columns, with the documented headers."""
    frame = pd.DataFrame({"g": ["v", "u", "u"], "y": [1.0, 2.0, 4.0], "x": [1, 2, 3]})
    spec = StatisticsSpec(columns=("y", "x"), group_by=("g",), quantiles=(0.5, 0.125))
    table = Summary.of_frame(frame, spec).table()
    assert list(table.columns) == [
        "g", "column", "count", "nulls", "sum", "mean", "variance", "std", "min", "max",
        "q0.5", "q0.125",
    ]  # fmt: skip
    assert list(zip(table["g"], table["column"], strict=True)) == [
        ("u", "y"), ("u", "x"), ("v", "y"), ("v", "x"),
    ]  # fmt: skip
    assert table["variance"].iloc[0] == pytest.approx(2.0)
    assert table["std"].iloc[0] == pytest.approx(math.sqrt(2.0))
    assert math.isnan(table["variance"].iloc[2])  # one value: no sample variance


def test_categories_lists_each_value_with_its_count() -> None:
    """categories() has one row per value of each non-numeric column, most frequent first."""
    frame = pd.DataFrame({"c": ["b", "a", "a", None], "flag": [True, False, True, True]})
    table = Summary.of_frame(frame, StatisticsSpec()).categories()
    assert table.to_dict("records") == [
        {"column": "c", "value": "a", "count": 2},
        {"column": "c", "value": "b", "count": 1},
        {"column": "flag", "value": "True", "count": 3},
        {"column": "flag", "value": "False", "count": 1},
    ]


@settings(max_examples=60, deadline=None)
@given(frame=frames(max_rows=60), bins=st.integers(1, 20))
def test_histogram_counts_add_up_to_the_count(frame: pd.DataFrame, bins: int) -> None:
    """A histogram has `bins` rows spanning [min, max] and its counts sum to the count."""
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=("g",), bins=bins))
    histogram = summary.histogram("x")
    finite = frame["x"].dropna()
    assert len(histogram) == bins
    assert int(histogram["count"].sum()) == finite.size
    assert (histogram["count"] >= 0).all()
    if finite.size:
        assert histogram["left"].iloc[0] == finite.min()
        assert histogram["right"].iloc[-1] == finite.max()


def test_histogram_is_close_to_numpy_away_from_the_edges() -> None:
    """For a smooth distribution each bin's count is within 1% of the rows of numpy's."""
    values = np.random.default_rng(3).normal(0, 1, 100_000)
    summary = Summary.of_frame(pd.DataFrame({"x": values}), StatisticsSpec(bins=8))
    histogram = summary.histogram("x", group=())
    expected, _ = np.histogram(values, bins=8)
    assert np.abs(histogram["count"].to_numpy() - expected).max() <= 0.01 * values.size


def test_histogram_of_one_group_and_bad_requests() -> None:
    """histogram() picks a group's values; unknown names and text columns are refused."""
    frame = pd.DataFrame({"g": ["u", "u", "v"], "x": [1.0, 2.0, 9.0], "c": ["a", "b", "c"]})
    summary = Summary.of_frame(frame, StatisticsSpec(group_by=("g",), bins=2))
    assert summary.histogram("x", group=("u",))["count"].tolist() == [1, 1]
    assert summary.histogram("x")["count"].tolist() == [2, 1]
    with pytest.raises(KeyError, match="no group"):
        summary.histogram("x", group=("w",))
    with pytest.raises(KeyError, match="no column 'y'"):
        summary.histogram("y")
    with pytest.raises(ValueError, match="'c' is not numeric"):
        summary.histogram("c")


# ---------------------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"quantiles": (1.5,)}, r"quantile 1.5 must be a number in \[0, 1\]"),
        ({"quantiles": (0.5, 0.5)}, "repeat a value"),
        ({"bins": 0}, r"bins must be in 1..1000"),
        ({"bins": 1001}, r"bins must be in 1..1000"),
        ({"bins": 2.5}, "bins must be an integer"),
        ({"relative_accuracy": 0.0}, r"relative_accuracy must be in \(0, 1\)"),
        ({"relative_accuracy": 1.0}, r"relative_accuracy must be in \(0, 1\)"),
        ({"columns": ("x", "x")}, "names a column twice"),
        ({"columns": ("x",), "group_by": ("x",)}, "both columns and group_by"),
        ({"group_by": "g"}, "group_by must be a tuple"),
    ],
)
def test_spec_validation_explains_the_problem(arguments: dict[str, Any], message: str) -> None:
    """An invalid spec raises ValueError saying which field is wrong."""
    with pytest.raises(ValueError, match=message):
        StatisticsSpec(**arguments)


def test_spec_from_arguments_reads_lists() -> None:
    """from_arguments turns a task definition's lists into the spec's tuples."""
    spec = StatisticsSpec.from_arguments(
        {"columns": ["x"], "group_by": ["g"], "quantiles": [0.5], "bins": 4}
    )
    assert spec == StatisticsSpec(columns=("x",), group_by=("g",), quantiles=(0.5,), bins=4)


def test_spec_from_arguments_names_unknown_keys() -> None:
    """Unknown argument names are refused, listing them and the known ones."""
    with pytest.raises(ValueError, match=r"unknown arguments \['bin'\]; known are \['bins'"):
        StatisticsSpec.from_arguments({"bin": 3})


def test_suppression_pools_sketch_buckets_below_the_minimum() -> None:
    """After suppression no sketch bucket stands for fewer than min_size values; the
    total is unchanged and the median stays close."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": np.concatenate([rng.normal(50, 5, 500), [1e6, -3e5, 7777.0]])})
    summary = Summary.of_frame(frame, StatisticsSpec(columns=("x",)))
    kept, _ = summary.suppress_small_groups(10)
    original, thinned = summary.groups[()].columns["x"], kept.groups[()].columns["x"]
    assert isinstance(original, NumericSummary)
    assert isinstance(thinned, NumericSummary)
    sketch = thinned.sketch
    counts = [*sketch.positive.values(), *sketch.negative.values()]
    assert min(counts) >= 10
    assert sketch.negative == {}  # one negative value: pooled at zero
    assert sketch.total == original.sketch.total
    before = original.quantiles([0.5])[0]
    after = thinned.quantiles([0.5])[0]
    assert abs(after - before) / before < 0.05
