"""Property tests: JSON round trip, inference rules against an oracle, batch invariance."""

from __future__ import annotations

import itertools

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.data._schema_stats import IMAGE_EXTENSIONS, LOGICAL_TYPES
from podium.data.schema import (
    ColumnSchema,
    Schema,
    SchemaBuilder,
    SchemaLevel,
    SemanticType,
    infer_schema,
)
from podium.data.sources.frame_source import DataFrameSource

_TEXT = st.text(max_size=12)


@st.composite
def _columns(draw: st.DrawFn, name: str) -> ColumnSchema:
    stype = draw(st.sampled_from(list(SemanticType)))
    values = None
    if stype is SemanticType.CATEGORICAL:
        values = draw(st.none() | st.lists(_TEXT, max_size=6).map(tuple))
    return ColumnSchema(
        name,
        stype,
        draw(st.sampled_from(sorted(LOGICAL_TYPES))),
        description=draw(st.none() | _TEXT),
        values=values,
        missing=draw(st.none() | st.integers(0, 10**9)),
    )


@st.composite
def _schemas(draw: st.DrawFn) -> Schema:
    level = draw(st.sampled_from(list(SchemaLevel)))
    names = [] if level is SchemaLevel.EMPTY else draw(st.lists(_TEXT, max_size=6, unique=True))
    return Schema(
        draw(_TEXT),
        description=draw(st.none() | _TEXT),
        columns=tuple(draw(_columns(n)) for n in names),
        num_records=draw(st.none() | st.integers(0, 10**12)),
        level=level,
    )


@settings(max_examples=150, deadline=None, derandomize=True)
@given(schema=_schemas())
def test_json_round_trip(schema: Schema) -> None:
    """Any schema survives to_json/from_json and to_dict/from_dict unchanged, hash included."""
    again = Schema.from_json(schema.to_json())
    assert again == schema
    assert again.hash == schema.hash
    assert Schema.from_dict(schema.to_dict()) == schema


# -- inference against an oracle ---------------------------------------------------------------

_KINDS = ("int", "float", "bool", "str")
_WORDS = [f"w{i}" for i in range(70)]
_IMAGES = [f"scan{i}{ext}" for i, ext in enumerate([".png", ".JPG", ".dcm", ".tiff", ".Gif"] * 14)]


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 40))
    data: dict[str, pd.Series] = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=5))):
        if kind == "str":
            distinct = draw(st.integers(1, 70))
            pool = (_IMAGES if draw(st.booleans()) else _WORDS)[:distinct]
            if draw(st.booleans()):
                pool = [*pool[1:], _WORDS[0] if pool[0] in _IMAGES else _IMAGES[0]]
            element: st.SearchStrategy[object] = st.sampled_from(pool)
            dtype = "str"
        else:
            element = {
                "int": st.integers(-(10**6), 10**6),
                "float": st.floats(-1e3, 1e3, allow_nan=False),
                "bool": st.booleans(),
            }[kind]
            dtype = {"int": "Int64", "float": "float64", "bool": "boolean"}[kind]
        values = draw(st.lists(st.none() | element, min_size=rows, max_size=rows))
        data[f"{kind}{i}"] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data)


def _oracle(values: pd.Series, max_categories: int) -> tuple[SemanticType, str]:
    """The documented inference rules, applied to a whole column at once."""
    present = [v for v in values.tolist() if not pd.isna(v)]
    kind = str(values.name).rstrip("0123456789")
    if not present:
        return SemanticType.TEXT, "null"
    if kind == "bool":
        return SemanticType.CATEGORICAL, "boolean"
    if kind == "int":
        return SemanticType.CONTINUOUS, "integer"
    if kind == "float":
        whole = all(float(v).is_integer() for v in present)
        return SemanticType.CONTINUOUS, "integer" if whole else "float"
    if all(str(v).lower().endswith(IMAGE_EXTENSIONS) for v in present):
        return SemanticType.IMAGE, "string"
    distinct = len(set(present))
    if distinct <= max_categories and 2 * distinct <= len(present):
        return SemanticType.CATEGORICAL, "string"
    return SemanticType.TEXT, "string"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(frame=_frames(), batch_rows=st.integers(1, 25), max_categories=st.integers(1, 60))
def test_inference_follows_the_rules(
    frame: pd.DataFrame, batch_rows: int, max_categories: int
) -> None:
    """Inferred stypes and dtypes match the documented rules, whatever the batch size."""
    source = DataFrameSource(frame, batch_rows=batch_rows)
    schema = infer_schema(source, name="t", max_categories=max_categories)
    for column in schema.columns:
        assert (column.stype, column.dtype) == _oracle(frame[column.name], max_categories)
        assert column.missing == int(frame[column.name].isna().sum())
        if column.stype is SemanticType.CATEGORICAL:
            present = frame[column.name].dropna()
            rendered = {{"True": "true", "False": "false"}.get(str(v), str(v)) for v in present}
            assert column.values == tuple(sorted(rendered))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    frame=_frames(),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    mixed=st.lists(st.one_of(st.integers(), st.floats(allow_nan=False), _TEXT), max_size=20),
)
def test_batches_do_not_change_the_full_schema(
    frame: pd.DataFrame, cuts: list[int], mixed: list[object]
) -> None:
    """Feeding the same rows in any split into batches gives the same full schema."""
    frame = frame.iloc[: len(mixed)] if len(mixed) < len(frame) else frame
    frame = frame.assign(mixed=pd.Series(mixed[: len(frame)], dtype=object))
    whole = SchemaBuilder("t", columns=list(frame.columns))
    whole.update(frame)
    split = SchemaBuilder("t", columns=list(frame.columns))
    bounds = sorted({0, len(frame), *(c for c in cuts if c < len(frame))})
    for start, stop in itertools.pairwise(bounds):
        split.update(frame.iloc[start:stop])
    assert split.finish() == whole.finish()
