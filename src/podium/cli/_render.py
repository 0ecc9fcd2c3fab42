"""Rich rendering of Podium objects for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from podium.data.schema import Schema

__all__ = ["render_schema", "schema_table"]

_MAX_SHOWN_VALUES = 6


def schema_table(schema: Schema) -> Table:
    """A table of a schema's columns: name, semantic type, logical type, missing, values."""
    records = "hidden" if schema.num_records is None else f"{schema.num_records:,}"
    table = Table(
        title=f"{schema.name}  ({records} records, {schema.level} schema, hash {schema.hash[:12]})",
        title_justify="left",
    )
    table.add_column("column")
    table.add_column("stype")
    table.add_column("dtype")
    table.add_column("missing", justify="right")
    table.add_column("values")
    for column in schema.columns:
        values = ""
        if column.values is not None:
            shown = ", ".join(column.values[:_MAX_SHOWN_VALUES])
            more = len(column.values) - _MAX_SHOWN_VALUES
            values = f"{shown}, ... (+{more})" if more > 0 else shown
        missing = "" if column.missing is None else f"{column.missing:,}"
        table.add_row(column.name, str(column.stype), column.dtype, missing, values)
    return table


def render_schema(console: Console, schema: Schema) -> None:
    """Print a schema's description (if any) and its column table."""
    if schema.description:
        console.print(schema.description.strip())
    console.print(schema_table(schema))
