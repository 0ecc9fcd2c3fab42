"""Disclosure control: which queries are aggregates, group sizes, small-group suppression."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from sqlglot import exp

from podium.algorithms._disclosure import (
    GROUP_SIZE_COLUMN,
    classify,
    suppress_small_groups,
    with_group_sizes,
)
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sql import SQLEngine, validate_query


def tree(sql: str) -> exp.Query:
    """The checked tree of ``sql`` over the one table ``t``."""
    return validate_query(sql, ["t"]).tree


def select(sql: str) -> exp.Select:
    """The checked tree of ``sql``, which must be a single SELECT."""
    parsed = tree(sql)
    assert isinstance(parsed, exp.Select)
    return parsed


@pytest.fixture
def frame() -> pd.DataFrame:
    """Groups of sizes a: 5, b: 2, c: 1, with a numeric column."""
    return pd.DataFrame(
        {
            "g": ["a", "a", "b", "a", "c", "b", "a", "a"],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )


@pytest.fixture
def engine(frame: pd.DataFrame) -> Iterator[SQLEngine]:
    """DuckDB over ``frame`` as table ``t``."""
    with SQLEngine({"t": DataFrameSource(frame)}) as sql_engine:
        yield sql_engine


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT g, SUM(x) FROM t GROUP BY g",
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING COUNT(*) > 1 ORDER BY g",
        "SELECT g, x FROM t GROUP BY g, x",
    ],
)
def test_a_group_by_query_is_an_aggregate(sql: str) -> None:
    """A query with GROUP BY counts as an aggregate, whatever it selects."""
    shape = classify(tree(sql))

    assert shape.aggregate
    assert shape.reason == "GROUP BY"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM t",
        "SELECT COUNT(*), AVG(x), SUM(x) * 2 AS s FROM t",
        "SELECT COUNT(DISTINCT g) FROM t",
        "SELECT MAX(x) - MIN(x) AS spread FROM t WHERE g = 'a'",
    ],
)
def test_a_select_of_only_aggregates_is_an_aggregate(sql: str) -> None:
    """With no GROUP BY, a select whose every column is aggregated is an aggregate."""
    shape = classify(tree(sql))

    assert shape.aggregate
    assert shape.reason == "every column is an aggregate"


@pytest.mark.parametrize("sql", ["SELECT 1 + 2 AS k FROM t"])
def test_a_constant_only_select_counts_as_an_aggregate(sql: str) -> None:
    """Columns without any column reference are constants, so the select is an aggregate."""
    assert classify(tree(sql)).aggregate


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM t", "it returns rows"),
        ("SELECT COUNT(*), t.* FROM t", "it returns rows"),
        ("SELECT x FROM t", "it returns rows"),
        ("SELECT x, COUNT(*) FROM t", "it returns rows"),
        ("SELECT SUM(x) + x FROM t", "it returns rows"),
        ("SELECT DISTINCT g FROM t", "it returns rows"),
        ("SELECT SUM(x) OVER () FROM t", "window functions"),
        ("SELECT g, COUNT(*) FROM t GROUP BY g QUALIFY ROW_NUMBER() OVER () < 3", "window"),
        ("SELECT LIST(x) FROM t", "returns row values"),
        ("SELECT g, LIST(x) FROM t GROUP BY g", "returns row values"),
        ("SELECT ARRAY_AGG(x) FROM t", "returns row values"),
        ("SELECT STRING_AGG(g, ',') FROM t", "returns row values"),
        ("SELECT g, ARG_MAX(x, x) FROM t GROUP BY g", "ARG_MAX returns row values"),
        ("SELECT FIRST(x) FROM t", "FIRST returns row values"),
        ("SELECT ANY_VALUE(x) FROM t", "returns row values"),
        ("SELECT COUNT(*) FROM t UNION SELECT COUNT(*) FROM t", "not a single SELECT"),
    ],
)
def test_row_level_queries_are_not_aggregates(sql: str, reason: str) -> None:
    """Plain rows, columns outside aggregates, windows, row-value aggregates and set
    operations are not aggregates, and the reason says why."""
    shape = classify(tree(sql))

    assert not shape.aggregate
    assert reason in shape.reason


def test_group_sizes_equal_pandas_group_sizes(engine: SQLEngine, frame: pd.DataFrame) -> None:
    """The added size column counts each group's rows, as pandas groupby does."""
    sql = with_group_sizes(select("SELECT g, SUM(x) AS s FROM t GROUP BY g"))

    result = engine.query(sql).sort_values("g").reset_index(drop=True)

    expected = frame.groupby("g").size()
    assert list(result.columns) == ["g", "s", GROUP_SIZE_COLUMN]
    assert list(result["g"]) == list(expected.index)
    assert list(result[GROUP_SIZE_COLUMN]) == list(expected)
    assert list(result["s"]) == list(frame.groupby("g")["x"].sum())


def test_group_size_of_a_whole_table_aggregate_is_its_row_count(
    engine: SQLEngine, frame: pd.DataFrame
) -> None:
    """Without GROUP BY the one group is the whole (filtered) table."""
    sql = with_group_sizes(select("SELECT AVG(x) AS m FROM t WHERE g <> 'c'"))

    result = engine.query(sql)

    assert result[GROUP_SIZE_COLUMN].tolist() == [int((frame["g"] != "c").sum())]


def test_with_group_sizes_leaves_the_checked_tree_alone() -> None:
    """The query's tree is copied, not changed."""
    checked = select("SELECT g, SUM(x) FROM t GROUP BY g")
    before = checked.sql()

    with_group_sizes(checked)

    assert checked.sql() == before


def test_suppression_drops_small_groups_and_the_size_column(
    engine: SQLEngine, frame: pd.DataFrame
) -> None:
    """Groups under k rows are dropped and counted; the size column never leaves."""
    sized = engine.query(
        with_group_sizes(select("SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY g"))
    )

    kept, dropped = suppress_small_groups(sized, 2)

    assert dropped == 1
    assert GROUP_SIZE_COLUMN not in kept.columns
    sizes = frame.groupby("g").size()
    expected = pd.DataFrame({"g": ["a", "b"], "n": [sizes["a"], sizes["b"]]})
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)


def test_suppression_keeps_a_group_of_exactly_k_rows() -> None:
    """A group with exactly ``min_size`` rows is kept; the index is renumbered."""
    sized = pd.DataFrame({"g": ["a", "b", "c"], GROUP_SIZE_COLUMN: [1, 3, 2]})

    kept, dropped = suppress_small_groups(sized, 3)

    assert dropped == 2
    pd.testing.assert_frame_equal(kept, pd.DataFrame({"g": ["b"]}))


def test_suppression_of_every_group_leaves_an_empty_frame_with_the_columns() -> None:
    """When every group is too small, the result is empty but keeps the other columns."""
    sized = pd.DataFrame({"g": ["a", "b"], "s": [1.0, 2.0], GROUP_SIZE_COLUMN: [1, 2]})

    kept, dropped = suppress_small_groups(sized, 10)

    assert dropped == 2
    assert kept.empty
    assert list(kept.columns) == ["g", "s"]


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ('SELECT a.g, a.x FROM t a, t b GROUP BY a.g, a.x', "join"),
        ("SELECT a.g, COUNT(*) FROM t a JOIN t b ON a.x = b.x GROUP BY a.g", "join"),
        ("SELECT g, COUNT(*) AS n, (SELECT x FROM t WHERE x = 17) AS leak FROM t GROUP BY g",
         "subquer"),
        ("SELECT g, COUNT(*) FROM t WHERE x IN (SELECT x FROM t) GROUP BY g", "subquer"),
        ("SELECT AVG(x) FROM (SELECT x FROM t)", "one table"),
        ("SELECT MAX(CASE WHEN x = 17 THEN g END) FROM t", "condition"),
        ("SELECT MAX(x * (x = 17)::INT) FROM t", "condition"),
        ("SELECT SUM(x) FILTER (WHERE x = 17) FROM t", "condition"),
        ("SELECT MAX(NULLIF(x, 17)) FROM t", "condition"),
        ("SELECT g, x, COUNT(*) FROM t GROUP BY g", "neither grouped nor aggregated"),
        ("SELECT 1", "one table"),
    ],
)  # fmt: skip
def test_ways_around_the_group_count_are_not_aggregates(sql: str, why: str) -> None:
    """Known disclosure bypasses (self-joins, subqueries, conditions inside returned
    columns, an ungrouped column) are refused as row-level, each with its reason."""
    shape = classify(tree(sql))
    assert not shape.aggregate
    assert why in shape.reason


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT g AS k, COUNT(*) FROM t GROUP BY k",
        "SELECT lower(g) AS k, COUNT(*) FROM t GROUP BY lower(g)",
        "SELECT g, COUNT(*) FROM t WHERE x > 3 GROUP BY g HAVING MAX(x) > 4",
    ],
)
def test_conditions_in_where_and_having_and_grouped_aliases_are_fine(sql: str) -> None:
    """WHERE rows are counted; HAVING filters whole groups; a grouped alias is a key."""
    assert classify(tree(sql)).aggregate
