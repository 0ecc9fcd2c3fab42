"""Reading a pod's schema JSON as tables for the pod page, whatever the pod sent."""

from __future__ import annotations

import pytest

from podium.data.schema import ColumnSchema, Schema, SemanticType
from podium.hub.web.schema_view import MAX_VALUES, ColumnView, TableView, schema_tables


def test_reads_the_data_layers_json_form() -> None:
    """Schema.to_dict() becomes one table with typed, described columns."""
    schema = Schema(
        "census",
        description="Adult census",
        columns=(
            ColumnSchema("age", SemanticType.CONTINUOUS, "integer", description="Years"),
            ColumnSchema("sex", SemanticType.CATEGORICAL, "string", values=("F", "M")),
        ),
        num_records=10,
    )
    assert schema_tables(schema.to_dict()) == [
        TableView(
            name="census",
            description="Adult census",
            num_records=10,
            columns=[
                ColumnView("age", "continuous", "integer", "Years"),
                ColumnView("sex", "categorical", "string", "", ["F", "M"]),
            ],
        )
    ]


def test_reads_several_tables() -> None:
    """``tables`` as a list or a mapping gives one table each."""
    table = {"columns": [{"name": "a", "stype": "text", "dtype": "string"}]}
    as_list = schema_tables({"tables": [{**table, "name": "t1"}, {**table, "name": "t2"}]})
    as_map = schema_tables({"tables": {"t1": table, "t2": table}})
    assert as_list is not None
    assert as_map is not None
    assert [t.name for t in as_list] == ["t1", "t2"]
    assert [t.name for t in as_map] == ["t1", "t2"]
    assert as_map[0].columns == [ColumnView("a", "text", "string")]


def test_reads_a_mapping_of_column_names_to_types() -> None:
    """``columns`` as ``{name: stype}`` is accepted."""
    tables = schema_tables({"columns": {"age": "continuous", "x": {"dtype": "float"}}})
    assert tables is not None
    assert tables[0].columns == [ColumnView("age", "continuous"), ColumnView("x", dtype="float")]


def test_long_value_sets_are_cut() -> None:
    """Only the first MAX_VALUES category values are kept; the rest are counted."""
    column = {"name": "c", "stype": "categorical", "values": [str(i) for i in range(50)]}
    tables = schema_tables({"columns": [column]})
    assert tables is not None
    assert len(tables[0].columns[0].values) == MAX_VALUES
    assert tables[0].columns[0].more_values == 50 - MAX_VALUES


def test_an_empty_schema_has_no_tables() -> None:
    """``{}`` (a pod with no schema yet) is an empty list."""
    assert schema_tables({}) == []


@pytest.mark.parametrize("schema", [None, [], "text", 3, {"weird": [1, 2]}, {"tables": "nope"}])
def test_unknown_shapes_are_none(schema: object) -> None:
    """Anything without tables or columns is None (the page shows the raw JSON)."""
    assert schema_tables(schema) is None


def test_garbage_inside_a_table_never_raises() -> None:
    """Wrong types in fields are read as text or dropped; bare strings are column names."""
    tables = schema_tables(
        {"num_records": True, "columns": [3, {"name": None, "values": "x"}, "plain"]}
    )
    assert tables is not None
    assert tables[0].num_records is None
    assert tables[0].columns == [ColumnView("3"), ColumnView(""), ColumnView("plain")]
