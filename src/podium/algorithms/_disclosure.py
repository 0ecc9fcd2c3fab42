"""Disclosure control for SQL results that are not differentially private.

A pod shows a modeller **aggregates** over groups of at least ``min_group_size`` rows,
and **row-level** output only when its policy lets the modeller's role have it.

:func:`classify` reads a checked query: its outermost ``SELECT`` is an aggregate when it
has a ``GROUP BY`` or aggregates every column it returns, and uses no window function and
no aggregate that hands back row values (``LIST``, ``STRING_AGG``, ``ARG_MAX``, ...).
:func:`with_group_sizes` adds ``COUNT(*)`` to such a query, so the pod can drop the groups
that are too small (:func:`suppress_small_groups`) before anything leaves it.

The rules (:func:`classify`) close the known ways around the count: joins that repeat
rows, subqueries and CTEs that are not counted, and conditions inside returned columns
(``MAX(CASE WHEN id = 17 THEN salary END)``) that single out one row. Still, ``MIN`` and
``MAX`` are values of single rows, and differences between overlapping groups can reveal
more than each group: for modellers who must not learn anything about one person, grant
differentially private SQL instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlglot import exp

__all__ = [
    "GROUP_SIZE_COLUMN",
    "QueryShape",
    "classify",
    "suppress_small_groups",
    "with_group_sizes",
]

#: The column the pod adds to count each group's rows (dropped before results leave).
GROUP_SIZE_COLUMN = "__podium_group_size"

#: Aggregates whose output is made of row values.
_ROW_VALUE_AGGREGATES = frozenset(
    {
        "list",
        "array_agg",
        "arrayagg",
        "string_agg",
        "group_concat",
        "groupconcat",
        "listagg",
        "first",
        "last",
        "any_value",
        "anyvalue",
        "arbitrary",
        "arg_min",
        "arg_max",
        "argmin",
        "argmax",
        "min_by",
        "max_by",
        "histogram",
        "reservoir_quantile",
    }
)


@dataclass(frozen=True, slots=True)
class QueryShape:
    """Whether a query's output is an aggregate, and why not when it is not."""

    aggregate: bool
    reason: str


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def classify(tree: exp.Query) -> QueryShape:
    """Whether ``tree`` (a checked query) returns only aggregates that disclosure control
    can count: one ``SELECT`` over one table (no join, no subquery, no CTE, no window),
    grouped or all-aggregate, whose returned columns are group keys or aggregates of plain
    expressions. A condition inside a returned column (``CASE``, a comparison, ``FILTER``,
    ``NULLIF``, ...) could single out one row whatever the group's size, so it is refused;
    conditions belong in ``WHERE`` (whose rows are counted) or ``HAVING``."""
    problem = _shape_problem(tree)
    if problem is not None:
        return QueryShape(False, problem)
    assert isinstance(tree, exp.Select)
    if tree.args.get("group") is not None:
        loose = _ungrouped(tree)
        if loose is not None:
            return QueryShape(False, f"{loose} is neither grouped nor aggregated")
        return QueryShape(True, "GROUP BY")
    columns = tree.expressions
    if columns and all(_aggregated(column) for column in columns):
        return QueryShape(True, "every column is an aggregate")
    return QueryShape(False, "it returns rows, not aggregates")


def _shape_problem(tree: exp.Query) -> str | None:  # noqa: PLR0911 - one return per rule
    """Why ``tree`` cannot be counted by group (None when it can)."""
    for node in tree.find_all(exp.Func):
        if _function_name(node) in _ROW_VALUE_AGGREGATES:
            return f"{_function_name(node).upper()} returns row values"
    checks = (
        (not isinstance(tree, exp.Select), "the outermost query is not a single SELECT"),
        (tree.args.get("with") is not None, "a WITH clause (CTE) is not counted"),
        (bool(tree.args.get("joins")), "a join can repeat rows past the minimum group size"),
    )
    for failed, why in checks:
        if failed:
            return why
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        return "the query must read one table directly"
    if any(node is not tree for node in tree.find_all(exp.Select)) or tree.find(
        exp.Subquery, exp.Exists
    ):
        return "subqueries are not counted by disclosure control"
    if tree.find(exp.Window) is not None:
        return "window functions return a value per row"
    if any(column.find(*_CONDITIONS) is not None for column in tree.expressions):
        return (
            "a returned column holds a condition (CASE, a comparison, FILTER, ...); put "
            "conditions in WHERE or HAVING"
        )
    return None


def _ungrouped(tree: exp.Select) -> str | None:
    """A returned column that is neither a group key nor an aggregate, if any."""
    keys = {key.sql() for key in tree.args["group"].expressions}
    names = {k.name for k in tree.args["group"].expressions if isinstance(k, exp.Column)}
    for column in tree.expressions:
        grouped = _bare(column).sql() in keys or (
            isinstance(column, exp.Alias) and column.alias in names
        )
        if not grouped and not _aggregated(column):
            return str(column.sql())
    return None


#: Expressions that can single out rows inside a returned column.
_CONDITIONS = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Case,
    exp.If,
    exp.Nullif,
    exp.Filter,
)


def _bare(column: exp.Expression) -> exp.Expression:
    """A returned column without its alias."""
    return column.this if isinstance(column, exp.Alias) else column


def _aggregated(column: exp.Expression) -> bool:
    """Whether every column reference of ``column`` sits inside an aggregate."""
    if isinstance(column, exp.Star) or (column.find(exp.Star) and not column.find(exp.AggFunc)):
        return False
    if not column.find(exp.AggFunc):
        return not any(True for _ in column.find_all(exp.Column))  # a constant
    return all(ref.find_ancestor(exp.AggFunc) is not None for ref in column.find_all(exp.Column))


def with_group_sizes(tree: exp.Select) -> str:
    """The SQL of ``tree`` with ``COUNT(*) AS __podium_group_size`` added to its columns."""
    counted = tree.copy()
    counted.select(
        exp.alias_(exp.Count(this=exp.Star()), GROUP_SIZE_COLUMN, quoted=True), copy=False
    )
    return counted.sql(dialect="duckdb", identify=True)


def suppress_small_groups(frame: pd.DataFrame, min_size: int) -> tuple[pd.DataFrame, int]:
    """``frame`` without its groups of fewer than ``min_size`` rows and without the size
    column; and how many groups were dropped."""
    sizes = frame[GROUP_SIZE_COLUMN]
    keep = sizes >= min_size
    kept = frame.loc[keep].drop(columns=[GROUP_SIZE_COLUMN]).reset_index(drop=True)
    return kept, int((~keep).sum())
