"""Schemas: the data model, JSON form, force_stypes and the inference rules."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.core.errors import ConfigValidationError, SchemaError
from podium.data.schema import (
    FORCED_CATEGORIES_LIMIT,
    ColumnSchema,
    Schema,
    SchemaBuilder,
    SchemaLevel,
    SemanticType,
    infer_schema,
    iter_schema,
    normalize_force_stypes,
)
from podium.data.sources.frame_source import DataFrameSource

CAT = SemanticType.CATEGORICAL
CONT = SemanticType.CONTINUOUS
TEXT = SemanticType.TEXT
IMAGE = SemanticType.IMAGE


def _schema() -> Schema:
    return Schema(
        "census",
        description="Adults",
        columns=(
            ColumnSchema("age", CONT, "integer", description="Years", missing=0),
            ColumnSchema("gender", CAT, "string", values=("Female", "Male"), missing=2),
            ColumnSchema("notes", TEXT, "string", missing=5),
        ),
        num_records=10,
    )


def _infer(frame: pd.DataFrame, **kwargs: object) -> Schema:
    return infer_schema(DataFrameSource(frame), name="t", **kwargs)  # type: ignore[arg-type]


# -- levels and the data model -------------------------------------------------------------


def test_levels_are_ordered_empty_partial_full() -> None:
    """EMPTY < PARTIAL < FULL, whatever order they are listed in."""
    levels = [SchemaLevel.FULL, SchemaLevel.EMPTY, SchemaLevel.PARTIAL]
    assert sorted(levels) == [SchemaLevel.EMPTY, SchemaLevel.PARTIAL, SchemaLevel.FULL]
    assert SchemaLevel.PARTIAL >= SchemaLevel.PARTIAL > SchemaLevel.EMPTY
    assert SchemaLevel.EMPTY <= SchemaLevel.FULL


def test_level_prints_as_its_json_name() -> None:
    """A level reads as 'empty', 'partial' or 'full' in text and f-strings."""
    assert [f"{level}" for level in SchemaLevel] == ["empty", "partial", "full"]


def test_column_lookup_names_and_stypes() -> None:
    """column(), names and stypes read the columns in order."""
    schema = _schema()
    assert schema.names == ("age", "gender", "notes")
    assert schema.stypes == {"age": CONT, "gender": CAT, "notes": TEXT}
    assert schema.column("gender").values == ("Female", "Male")


def test_unknown_column_lookup_names_the_known_columns() -> None:
    """Asking for a column that is not there is a SchemaError listing the columns."""
    with pytest.raises(SchemaError, match=r"no column 'sex'.*'gender'"):
        _schema().column("sex")


def test_value_sets_are_sorted_and_deduplicated() -> None:
    """A column's value set is stored sorted as text, each value once."""
    column = ColumnSchema("g", CAT, "string", values=("b", "a", "b", "10", "9"))
    assert column.values == ("10", "9", "a", "b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stype": TEXT, "dtype": "string", "values": ("a",)}, "only categorical"),
        ({"stype": TEXT, "dtype": "varchar"}, "unknown logical type 'varchar'"),
        ({"stype": TEXT, "dtype": "string", "missing": -1}, "must not be negative"),
        ({"stype": "text", "dtype": "string"}, "must be a SemanticType"),
    ],
)
def test_invalid_columns_are_refused(kwargs: dict[str, object], message: str) -> None:
    """A column that contradicts itself is a SchemaError saying why."""
    with pytest.raises(SchemaError, match=message):
        ColumnSchema("c", **kwargs)  # type: ignore[arg-type]


def test_duplicate_columns_are_refused() -> None:
    """Two columns with one name are a SchemaError naming it."""
    with pytest.raises(SchemaError, match="'a' appears twice"):
        Schema("t", columns=(ColumnSchema("a", TEXT, "string"),) * 2)


def test_an_empty_schema_has_no_columns() -> None:
    """Schema.empty has level EMPTY; an EMPTY schema with columns is refused."""
    assert Schema.empty("t").level is SchemaLevel.EMPTY
    with pytest.raises(SchemaError, match="empty schema has no columns"):
        Schema("t", columns=(ColumnSchema("a", TEXT, "string"),), level=SchemaLevel.EMPTY)


def test_with_descriptions_sets_only_the_named_ones() -> None:
    """Named columns get the new text; others and the table keep theirs unless given."""
    schema = _schema().with_descriptions({"gender": "Self-reported"})
    assert schema.column("gender").description == "Self-reported"
    assert schema.column("age").description == "Years"
    assert schema.description == "Adults"
    assert schema.with_descriptions(table="People").description == "People"


def test_with_descriptions_refuses_unknown_columns() -> None:
    """Describing a column the schema lacks is a SchemaError naming it."""
    with pytest.raises(SchemaError, match=r"\['sex'\]"):
        _schema().with_descriptions({"sex": "?"})


def test_without_record_count_hides_every_count() -> None:
    """The record count and every missing count are gone; the rest stays."""
    hidden = _schema().without_record_count()
    assert hidden.num_records is None
    assert all(c.missing is None for c in hidden.columns)
    assert hidden.column("gender").values == ("Female", "Male")
    assert hidden.hash == _schema().hash


# -- hash ------------------------------------------------------------------------------------


def test_hash_is_pinned() -> None:
    """The hash of a given schema never changes between versions (hubs store it).

    The pinned value is ``sha256sum`` of ``[["a","categorical","string"],["n","continuous",
    "integer"]]`` (the canonical encoding: compact JSON of name, stype, dtype per column).
    """
    schema = Schema(
        "t",
        columns=(
            ColumnSchema("a", CAT, "string", values=("x",)),
            ColumnSchema("n", CONT, "integer"),
        ),
    )
    assert schema.hash == "859d4660f6f90f2f0c05fd5b34bd81adf7cb5e0508681103460d2301d2f82597"


def test_hash_ignores_descriptions_values_counts_level_and_table_name() -> None:
    """Only column names, semantic types and logical types (in order) enter the hash."""
    schema = _schema()
    variants = [
        schema.with_descriptions({"age": "other"}, table="other"),
        schema.without_record_count(),
        Schema("renamed", columns=schema.columns, level=SchemaLevel.PARTIAL),
        Schema(
            "t",
            columns=tuple(
                ColumnSchema(c.name, c.stype, c.dtype, values=("only",) if c.values else None)
                for c in schema.columns
            ),
        ),
    ]
    assert {v.hash for v in variants} == {schema.hash}


def test_hash_changes_with_a_name_a_type_or_the_order() -> None:
    """Renaming, retyping or reordering a column changes the hash."""
    base = Schema(
        "t", columns=(ColumnSchema("a", CONT, "integer"), ColumnSchema("b", TEXT, "string"))
    )
    changed = [
        Schema("t", columns=(ColumnSchema("A", CONT, "integer"), base.columns[1])),
        Schema("t", columns=(ColumnSchema("a", CAT, "integer"), base.columns[1])),
        Schema("t", columns=(ColumnSchema("a", CONT, "float"), base.columns[1])),
        Schema("t", columns=(base.columns[1], base.columns[0])),
    ]
    hashes = {s.hash for s in changed}
    assert len(hashes) == len(changed)
    assert base.hash not in hashes


# -- JSON --------------------------------------------------------------------------------------


def test_json_round_trip_keeps_everything() -> None:
    """from_json(to_json()) gives back an equal schema; the JSON has version 1 and the hash."""
    schema = _schema()
    data = json.loads(schema.to_json())
    assert data["version"] == 1
    assert data["hash"] == schema.hash
    assert data["level"] == "full"
    assert Schema.from_json(schema.to_json()) == schema


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    """dump() then load() gives back the schema and leaves no temporary file behind."""
    path = tmp_path / "schema.json"
    path.write_text("old")
    _schema().dump(path)
    assert Schema.load(path) == _schema()
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]


def test_dump_into_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    """Writing where no folder exists is a SchemaError naming the file."""
    target = tmp_path / "nope" / "schema.json"
    with pytest.raises(SchemaError, match=r"Cannot write schema file .*nope/schema\.json"):
        _schema().dump(target)


def test_failed_dump_leaves_no_temporary_file(tmp_path: Path) -> None:
    """When the final rename fails (the target is a folder), the temporary file is removed."""
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(SchemaError, match="Cannot write schema file"):
        _schema().dump(target)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_load_a_missing_file_names_it(tmp_path: Path) -> None:
    """Reading a file that is not there is a SchemaError naming it."""
    with pytest.raises(SchemaError, match=r"Cannot read schema file .*absent\.json"):
        Schema.load(tmp_path / "absent.json")


def _edited(**changes: object) -> str:
    data = _schema().to_dict()
    data.update(changes)
    return json.dumps(data)


def _column_edit(**changes: object) -> str:
    data = _schema().to_dict()
    columns = data["columns"]
    assert isinstance(columns, list)
    columns[0] = {**columns[0], **changes}
    data.pop("hash")
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "Invalid schema JSON"),
        ("[1, 2]", "expected an object"),
        (_edited(version=2), "version"),
        (_edited(level="complete"), "level"),
        (_edited(extra=1), "extra"),
        (_edited(num_records="10"), "num_records"),
        (_column_edit(stype="numeric"), r"columns\.0\.stype"),
        (_column_edit(dtype="int"), "unknown logical type 'int'"),
        (_edited(hash="0" * 64), "does not match its columns"),
    ],
)
def test_load_refuses_invalid_files_naming_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each malformed schema file is a SchemaError naming the file and what is wrong."""
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message) as info:
        Schema.load(path)
    assert str(path) in str(info.value)


def test_edited_types_load_once_the_hash_is_removed() -> None:
    """A hand-edited schema without a hash field loads with the edit and a new hash."""
    text = _column_edit(stype="categorical", values=["1", "2"])
    schema = Schema.from_json(text)
    assert schema.column("age").stype is CAT
    assert schema.hash != _schema().hash


# -- force_stypes ------------------------------------------------------------------------------


def test_force_stypes_flat_form() -> None:
    """{stype: [columns]} maps each column to its semantic type."""
    result = normalize_force_stypes({"categorical": ["a", "b"], "text": ["c"]}, "pod")
    assert result == {"a": CAT, "b": CAT, "c": TEXT}


def test_force_stypes_nested_form_uses_this_datasource() -> None:
    """{datasource: {stype: [columns]}} applies the entry of the named datasource."""
    result = normalize_force_stypes({"census-income": {"image": ["file"]}}, "census-income")
    assert result == {"file": IMAGE}


def test_force_stypes_empty_or_none_forces_nothing() -> None:
    """No force_stypes, or an empty mapping, forces nothing."""
    assert normalize_force_stypes(None, "pod") == {}
    assert normalize_force_stypes({}, "pod") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"numeric": ["a"]}, r"data_config\.force_stypes: unknown semantic type 'numeric'"),
        ({"categorical": ["a"], "text": ["a"]}, "'a' is listed under both categorical and text"),
        ({"census_income": {"categorical": ["a"]}}, "keyed by 'census_income'.*'census-income'"),
        (
            {"census-income": {"categorical": ["a"]}, "text": ["b"]},
            "mixes",
        ),
        ({"categorical": "TARGET"}, r"force_stypes\.categorical: expected a list"),
        ({"census-income": {"bogus": ["a"]}}, r"force_stypes\.census-income: unknown semantic"),
        ({"categorical": [1]}, "column names must be text"),
    ],
)
def test_bad_force_stypes_name_the_field(value: object, message: str) -> None:
    """Each malformed force_stypes is a ConfigValidationError naming data_config.force_stypes."""
    with pytest.raises(ConfigValidationError, match=message):
        normalize_force_stypes(value, "census-income")  # type: ignore[arg-type]


# -- inference rules ---------------------------------------------------------------------------


def test_numbers_are_continuous_and_booleans_categorical() -> None:
    """integer and float columns are continuous; boolean columns categorical with true/false."""
    frame = pd.DataFrame(
        {"i": [1, 2, 3, 4], "f": [0.5, 1.5, 2.5, np.nan], "b": [True, False, True, True]}
    )
    schema = _infer(frame)
    assert schema.stypes == {"i": CONT, "f": CONT, "b": CAT}
    assert [c.dtype for c in schema.columns] == ["integer", "float", "boolean"]
    assert schema.column("b").values == ("false", "true")
    assert schema.column("f").missing == 1


def test_whole_floats_are_integers() -> None:
    """Whole numbers stored as floats (an integer column with blanks) have dtype integer."""
    schema = _infer(pd.DataFrame({"n": [1.0, np.nan, 3.0]}))
    assert schema.column("n").dtype == "integer"
    assert schema.column("n").missing == 1


def test_dates_and_datetimes_are_text() -> None:
    """datetime and date columns are text, keeping their logical type."""
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2020-01-01", "2020-01-02"] * 3),
            "d": [dt.date(2020, 1, 1), dt.date(2020, 1, 2)] * 3,
        }
    )
    schema = _infer(frame)
    assert schema.stypes == {"ts": TEXT, "d": TEXT}
    assert [c.dtype for c in schema.columns] == ["datetime", "date"]


def test_image_paths_are_images_whatever_the_case() -> None:
    """A string column whose every value ends with an image extension is image."""
    frame = pd.DataFrame({"file": ["a.PNG", "b.jpeg", None, "c/d.dcm", "e.Tiff", "f.gif"]})
    assert _infer(frame).column("file").stype is IMAGE


def test_one_non_image_value_makes_it_not_image() -> None:
    """A single value without an image extension is enough to rule image out."""
    frame = pd.DataFrame({"file": [f"{i}.png" for i in range(9)] + ["readme.txt"]})
    assert _infer(frame).column("file").stype is TEXT


def test_few_distinct_strings_are_categorical() -> None:
    """A string column with few repeated values is categorical with its sorted value set."""
    frame = pd.DataFrame({"g": ["b", "a", "b", "a", None, "c", "c"]})
    column = _infer(frame).column("g")
    assert column.stype is CAT
    assert column.values == ("a", "b", "c")
    assert column.missing == 1


def test_more_than_max_categories_is_text() -> None:
    """51 distinct values (each repeated) exceed the default cap of 50: text."""
    frame = pd.DataFrame({"g": [f"v{i}" for i in range(51)] * 3})
    assert _infer(frame).column("g").stype is TEXT
    assert _infer(frame.iloc[:150], max_categories=60).column("g").stype is CAT


def test_more_distinct_than_half_the_values_is_text() -> None:
    """Strings mostly distinct from each other (distinct > half the non-missing) are text."""
    frame = pd.DataFrame({"g": ["a", "b", "c", "a", "b"]})
    assert _infer(frame).column("g").stype is TEXT
    assert _infer(pd.DataFrame({"g": ["a", "b", "a", "b"]})).column("g").stype is CAT


def test_all_missing_is_null_text() -> None:
    """A column without a single value has dtype null and is text."""
    column = _infer(pd.DataFrame({"x": [None, None]}, dtype=object)).column("x")
    assert (column.stype, column.dtype, column.missing) == (TEXT, "null", 2)


def test_forced_stypes_win_over_inference() -> None:
    """A forced type replaces the inferred one; forced categorical numbers list their values."""
    frame = pd.DataFrame({"n": [9, 10, 9, 10], "g": ["a", "b", "a", "b"]})
    schema = _infer(frame, force_stypes={"n": CAT, "g": "text"})
    assert schema.stypes == {"n": CAT, "g": TEXT}
    assert schema.column("n").values == ("10", "9")
    assert schema.column("g").values is None


def test_forced_categorical_collects_beyond_max_categories() -> None:
    """A forced categorical column keeps a value set far larger than max_categories."""
    frame = pd.DataFrame({"id": range(500)})
    assert len(_infer(frame, force_stypes={"id": CAT}).column("id").values or ()) == 500


def test_forced_categorical_past_the_hard_limit_fails() -> None:
    """More than FORCED_CATEGORIES_LIMIT values in a forced categorical is a SchemaError."""
    frame = pd.DataFrame({"id": range(FORCED_CATEGORIES_LIMIT + 1)})
    with pytest.raises(SchemaError, match=r"'id' is forced to categorical.*10,000"):
        _infer(frame, force_stypes={"id": CAT})


def test_forcing_continuous_on_text_fails() -> None:
    """Forcing continuous on a string column is a SchemaError pointing at force_stypes."""
    frame = pd.DataFrame({"age": ["30", "?", "41"]})
    with pytest.raises(SchemaError, match=r"'age' is forced to continuous.*force_stypes"):
        _infer(frame, force_stypes={"age": CONT})


def test_forcing_image_on_numbers_fails() -> None:
    """Forcing image on an integer column is a SchemaError."""
    with pytest.raises(SchemaError, match=r"'n' is forced to image but its values are integer"):
        _infer(pd.DataFrame({"n": [1, 2]}), force_stypes={"n": IMAGE})


def test_forced_categorical_of_unlistable_values_fails() -> None:
    """Values that cannot be rendered as text (arrays) cannot be forced categorical."""
    frame = pd.DataFrame({"pixels": [np.zeros(2), np.ones(2)]})
    assert _infer(frame).column("pixels").dtype == "other"
    with pytest.raises(SchemaError, match="other values cannot be listed as categories"):
        _infer(frame, force_stypes={"pixels": CAT})


def test_forced_column_missing_from_the_source_names_it() -> None:
    """Forcing a column the source does not have names it and data_config.force_stypes."""
    with pytest.raises(ConfigValidationError, match=r"data_config\.force_stypes.*\['sex'\]"):
        _infer(pd.DataFrame({"a": [1]}), force_stypes={"sex": CAT})


def test_forced_column_that_is_ignored_says_so() -> None:
    """Forcing a column listed in ignore_cols explains the clash."""
    source = DataFrameSource(pd.DataFrame({"a": [1], "b": [2]}), ignore_cols=["b"])
    with pytest.raises(ConfigValidationError, match=r"\['b'\] are in data_config\.ignore_cols"):
        infer_schema(source, name="t", force_stypes={"b": TEXT})


def test_unknown_forced_stype_is_refused() -> None:
    """A {column: stype} with an unknown stype is a ConfigValidationError."""
    with pytest.raises(ConfigValidationError, match="unknown semantic type 'number'"):
        _infer(pd.DataFrame({"a": [1]}), force_stypes={"a": "number"})


def test_descriptions_apply_and_unknown_columns_are_refused() -> None:
    """Column and table descriptions land in the schema; unknown columns are refused."""
    frame = pd.DataFrame({"a": [1, 2]})
    schema = _infer(frame, column_descriptions={"a": "The a"}, description="Table")
    assert (schema.column("a").description, schema.description) == ("The a", "Table")
    with pytest.raises(ConfigValidationError, match=r"data_config\.column_descriptions"):
        _infer(frame, column_descriptions={"z": "?"})


def test_ignore_cols_are_left_out() -> None:
    """Columns the source ignores are not in the schema."""
    source = DataFrameSource(pd.DataFrame({"a": [1], "fnlwgt": [2]}), ignore_cols=["fnlwgt"])
    assert infer_schema(source, name="t").names == ("a",)


# -- levels while building ---------------------------------------------------------------------


def test_iter_schema_yields_partial_then_full() -> None:
    """A partial schema (no counts, values seen so far) comes after the first batch."""
    frame = pd.DataFrame({"g": ["a", "b"] * 5 + ["c", "d"] * 5, "n": range(20)})
    schemas = list(iter_schema(DataFrameSource(frame, batch_rows=10), name="t"))
    assert [s.level for s in schemas] == [SchemaLevel.PARTIAL, SchemaLevel.FULL]
    partial, full = schemas
    assert partial.num_records is None
    assert partial.column("g").missing is None
    assert partial.column("g").values == ("a", "b")
    assert full.num_records == 20
    assert full.column("g").values == ("a", "b", "c", "d")


def test_an_empty_source_gives_a_full_schema_of_null_columns() -> None:
    """A source without rows yields only a full schema: zero records, null text columns."""
    frame = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype=str)})
    schemas = list(iter_schema(DataFrameSource(frame), name="t"))
    assert [s.level for s in schemas] == [SchemaLevel.FULL]
    assert schemas[0].num_records == 0
    assert [(c.dtype, c.stype) for c in schemas[0].columns] == [("null", TEXT)] * 2


def test_hide_record_count() -> None:
    """hide_record_count leaves out the record count and missing counts of a full schema."""
    schema = _infer(pd.DataFrame({"a": [1, None]}), hide_record_count=True)
    assert schema.level is SchemaLevel.FULL
    assert (schema.num_records, schema.column("a").missing) == (None, None)


def test_builder_levels_and_widening_across_batches() -> None:
    """EMPTY before data, PARTIAL after a batch, FULL at the end; types widen per batch."""
    builder = SchemaBuilder("t")
    assert builder.snapshot().level is SchemaLevel.EMPTY
    builder.update(pd.DataFrame({"n": [1, 2], "s": [1, 2]}))
    assert builder.snapshot().column("n").dtype == "integer"
    builder.update(pd.DataFrame({"n": [0.5, 1.0], "s": ["x", "y"]}))
    full = builder.finish()
    assert full.level is SchemaLevel.FULL
    assert (full.column("n").dtype, full.column("s").dtype) == ("float", "string")
    assert full.num_records == 4


def test_builder_refuses_a_batch_with_other_columns() -> None:
    """A batch whose columns differ from the first one's is a SchemaError naming both."""
    builder = SchemaBuilder("t")
    builder.update(pd.DataFrame({"a": [1]}))
    with pytest.raises(SchemaError, match=r"batch 2 has columns \['b'\], expected \['a'\]"):
        builder.update(pd.DataFrame({"b": [1]}))


def test_builder_refuses_max_categories_below_one() -> None:
    """max_categories must be at least 1."""
    with pytest.raises(ConfigValidationError, match="max_categories"):
        SchemaBuilder("t", max_categories=0)
