"""Per-column statistics behind schema inference: logical types, widening, rendering."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import permutations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from podium.data import _schema_stats as st
from podium.data._schema_stats import ColumnStats, batch_kind, is_image_path, render_value, widen


@pytest.mark.parametrize(
    ("values", "kind", "listable"),
    [
        (pd.Series([True, False]), st.BOOLEAN, True),
        (pd.Series([True, None], dtype="boolean").dropna(), st.BOOLEAN, True),
        (pd.Series([1, 2], dtype="Int64"), st.INTEGER, True),
        (pd.Series([1.0, -3.0]), st.INTEGER, True),
        (pd.Series([1.0, 2.5]), st.FLOAT, True),
        (pd.Series([2.0**60]), st.FLOAT, True),
        (pd.Series([np.inf]), st.FLOAT, True),
        (pd.Series(["a", "b"]), st.STRING, True),
        (pd.Series(["a", "b"], dtype="category"), st.STRING, True),
        (pd.Series(pd.to_datetime(["2020-01-01"])), st.DATETIME, True),
        (pd.Series(pd.to_datetime(["2020-01-01"]).tz_localize("UTC")), st.DATETIME, False),
        (pd.Series([dt.date(2020, 1, 1)]), st.DATE, True),
        (pd.Series([dt.time(10, 0)]), st.TIME, True),
        (pd.Series(pd.to_timedelta(["1h"])), st.DURATION, True),
        (pd.Series([b"\x00\x01"]), st.BINARY, True),
        (pd.Series([Decimal("1.5"), Decimal("2")]), st.FLOAT, True),
        (pd.Series([Decimal("1"), 2]), st.INTEGER, True),
        (pd.Series([1, "a"], dtype=object), st.STRING, True),
        (pd.Series([np.zeros(2), np.ones(2)]), st.OTHER, False),
        (pd.Series([1.5, 2], dtype=pd.ArrowDtype(pa.float64())), st.FLOAT, True),
        (pd.Series([dt.date(2020, 1, 1)], dtype=pd.ArrowDtype(pa.date32())), st.DATE, True),
    ],
)
def test_batch_kind_describes_the_values(values: pd.Series, kind: str, listable: bool) -> None:
    """Each kind of non-missing values gets its logical type and listability."""
    assert batch_kind(values) == (kind, listable)


def test_widening_table() -> None:
    """integer+float is float, date+datetime datetime, other absorbs, other mixes are string."""
    assert widen(st.NULL, st.INTEGER) == st.INTEGER
    assert widen(st.INTEGER, st.FLOAT) == st.FLOAT
    assert widen(st.DATE, st.DATETIME) == st.DATETIME
    assert widen(st.BOOLEAN, st.INTEGER) == st.STRING
    assert widen(st.STRING, st.OTHER) == st.OTHER
    assert widen(st.FLOAT, st.STRING) == st.STRING


def test_widening_does_not_depend_on_order() -> None:
    """Folding the same logical types in any order gives the same result."""
    kinds = [st.NULL, st.INTEGER, st.FLOAT, st.DATE, st.DATETIME, st.BOOLEAN]
    for triple in permutations(kinds, 3):
        results = {widen(widen(a, b), c) for a, b, c in permutations(triple)}
        assert len(results) == 1, triple


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (np.bool_(False), "false"),
        (np.int64(7), "7"),
        (3.0, "3"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e20, "1e+20"),
        (np.float32(0.5), "0.5"),
        (Decimal("1.50"), "1.5"),
        (Decimal("10"), "10"),
        ("x", "x"),
        (dt.datetime(2020, 1, 2, 3, 4), "2020-01-02T03:04:00"),
        (pd.Timestamp("2020-01-02 03:04"), "2020-01-02T03:04:00"),
        (dt.date(2020, 1, 2), "2020-01-02"),
        (dt.timedelta(hours=1), "P0DT1H0M0S"),
        (b"\x0a\xff", "0aff"),
    ],
)
def test_values_render_as_text(value: object, text: str) -> None:
    """Values render as documented: lower-case booleans, whole numbers without '.0', ISO dates."""
    assert render_value(value) == text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scan.png", True),
        ("dir/scan.JPEG", True),
        ("x.tif", True),
        ("x.dcm", True),
        ("x.png.txt", False),
        ("png", False),
        ("x.png\n", False),
    ],
)
def test_image_paths(name: str, expected: bool) -> None:
    """Image paths end with an image extension, in any case, and nothing after it."""
    assert is_image_path(name) is expected


def test_value_tracking_stops_past_the_cap() -> None:
    """The value set is dropped once it holds more than cap distinct values."""
    stats = ColumnStats(cap=3)
    seen: list[set[str] | None] = []
    for batch in (["a", "b", "a"], ["c", "d"], ["a"]):
        stats.observe(pd.Series(batch))
        seen.append(None if stats.values is None else set(stats.values))
    assert seen == [{"a", "b"}, None, None]


def test_missing_values_are_counted_apart() -> None:
    """None, NaN, NaT and pd.NA are missing; the rest are counted as present."""
    stats = ColumnStats(cap=10)
    stats.observe(pd.Series([1.0, np.nan, None]))
    stats.observe(pd.Series([pd.NA, 2], dtype="Int64"))
    assert (stats.missing, stats.non_missing, stats.dtype) == (3, 2, st.INTEGER)
    assert stats.values == {"1", "2"}
