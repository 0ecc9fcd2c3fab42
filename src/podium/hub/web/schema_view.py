"""A pod's schema JSON as tables and columns for the pod page.

The expected shape is what :meth:`podium.data.schema.Schema.to_dict` writes for one table
(``name``, ``description``, ``num_records``, ``columns`` of ``name``/``stype``/``dtype``/
``description``/``values``), or several of them under ``tables`` (a list, or a mapping from
table name to table). Pods are not trusted to send exactly that, so anything else is read
as far as it makes sense and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ColumnView", "TableView", "schema_tables"]

#: How many category values a cell shows before "and N more".
MAX_VALUES = 20


@dataclass(frozen=True, slots=True)
class ColumnView:
    """One column, as text ready for a table cell."""

    name: str
    stype: str = ""
    dtype: str = ""
    description: str = ""
    values: list[str] = field(default_factory=list)
    more_values: int = 0


@dataclass(frozen=True, slots=True)
class TableView:
    """One table of a pod's schema."""

    name: str
    description: str = ""
    num_records: int | None = None
    columns: list[ColumnView] = field(default_factory=list)


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _column(name: object, value: object) -> ColumnView:
    if isinstance(value, str):  # {"age": "continuous"}
        return ColumnView(name=_text(name), stype=value)
    if not isinstance(value, Mapping):
        return ColumnView(name=_text(name))
    raw_values = value.get("values")
    values = [_text(v) for v in raw_values] if isinstance(raw_values, list) else []
    return ColumnView(
        name=_text(value.get("name", name)),
        stype=_text(value.get("stype", value.get("semantic_type", ""))),
        dtype=_text(value.get("dtype", "")),
        description=_text(value.get("description")),
        values=values[:MAX_VALUES],
        more_values=max(0, len(values) - MAX_VALUES),
    )


def _columns(raw: object) -> list[ColumnView]:
    if isinstance(raw, list):  # column records, or bare column names
        return [_column("", c) if isinstance(c, Mapping) else ColumnView(_text(c)) for c in raw]
    if isinstance(raw, Mapping):
        return [_column(name, c) for name, c in raw.items()]
    return []


def _table(name: object, raw: Mapping[str, Any]) -> TableView:
    records = raw.get("num_records")
    return TableView(
        name=_text(raw.get("name", name)),
        description=_text(raw.get("description")),
        num_records=records if isinstance(records, int) and not isinstance(records, bool) else None,
        columns=_columns(raw.get("columns")),
    )


def schema_tables(schema: object) -> list[TableView] | None:
    """The tables of a schema; ``[]`` for an empty one, None when it has no known shape."""
    if not isinstance(schema, Mapping):
        return None
    if not schema:
        return []
    if "columns" in schema:
        return [_table("", schema)]
    tables = schema.get("tables")
    if isinstance(tables, list):
        return [_table("", t) for t in tables if isinstance(t, Mapping)]
    if isinstance(tables, Mapping):
        return [_table(n, t) for n, t in tables.items() if isinstance(t, Mapping)]
    found = [_table(n, t) for n, t in schema.items() if isinstance(t, Mapping) and "columns" in t]
    return found or None
