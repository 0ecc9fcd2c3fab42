"""Disclosure control for SQL results that are not differentially private.

A pod shows a modeller **aggregates** over groups of at least ``min_group_size`` rows,
and **row-level** output only when its policy lets the modeller's role have it.

:func:`classify` reads a checked query: its outermost ``SELECT`` is an aggregate when it
has a ``GROUP BY`` or aggregates every column it returns, and uses no window function and
no aggregate that hands back row values (``LIST``, ``STRING_AGG``, ``ARG_MAX``, ...).
:func:`with_group_sizes` adds ``COUNT(*)`` to such a query, so the pod can drop the groups
that are too small (:func:`suppress_small_groups`) before anything leaves it.

This guards against accidental disclosure, not against a modeller set on defeating it
(joins can inflate counts, ``MIN`` and ``MAX`` are values of single rows): grant such
modellers differentially private SQL instead.
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
    """Whether ``tree`` (a checked query) returns only aggregates."""
    for node in tree.find_all(exp.Func):
        if _function_name(node) in _ROW_VALUE_AGGREGATES:
            return QueryShape(False, f"{_function_name(node).upper()} returns row values")
    if not isinstance(tree, exp.Select):
        return QueryShape(False, "the outermost query is not a single SELECT")
    if any(True for _ in tree.find_all(exp.Window)):
        return QueryShape(False, "window functions return a value per row")
    if tree.args.get("group") is not None:
        return QueryShape(True, "GROUP BY")
    columns = tree.expressions
    if columns and all(_aggregated(column) for column in columns):
        return QueryShape(True, "every column is an aggregate")
    return QueryShape(False, "it returns rows, not aggregates")


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
