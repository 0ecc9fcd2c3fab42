"""Schema inference pushed into DuckDB equals inference over the source's own batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.core.errors import SchemaError
from podium.data.census import CENSUS_CATEGORICAL
from podium.data.schema import (
    FORCED_CATEGORIES_LIMIT,
    Schema,
    SchemaLevel,
    SemanticType,
    infer_schema,
    iter_schema,
    normalize_force_stypes,
)
from podium.data.sources.base import DataSource
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.parquet_source import ParquetSource

CENSUS_FORCE = {"census-income": {"categorical": list(CENSUS_CATEGORICAL)}}


class Streamed(DataSource):
    """The same data as ``inner``, but only through batches (no DuckDB scan)."""

    kind = "Streamed"

    def __init__(self, inner: DataSource) -> None:
        super().__init__(batch_rows=inner.batch_rows)
        self.inner = inner
        self._columns = inner.column_names()

    def _raw_columns(self) -> list[str]:
        return self._columns

    def _raw_record_count(self) -> int:
        return self.inner.record_count()

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        return self.inner.iter_batches(batch_rows)


def _both(source: DataSource, **kwargs: object) -> tuple[list[Schema], list[Schema]]:
    """Schemas from the DuckDB path and from the batch path over the same source."""
    assert source.duckdb_scan() is not None
    fast = list(iter_schema(source, name="t", **kwargs))  # type: ignore[arg-type]
    slow = list(iter_schema(Streamed(source), name="t", **kwargs))  # type: ignore[arg-type]
    return fast, slow


@pytest.fixture(scope="module")
def census_schemas(census_csv: Path) -> tuple[list[Schema], list[Schema]]:
    """The census pod's schemas (as configured in the seed) from both paths."""
    force = normalize_force_stypes(CENSUS_FORCE, "census-income")
    source = CSVSource(census_csv, ignore_cols=["fnlwgt"], batch_rows=4_000)
    return _both(source, force_stypes=force)


def test_census_schema_matches_the_pod_config(
    census_schemas: tuple[list[Schema], list[Schema]],
) -> None:
    """The census pod's schema: fnlwgt ignored, the forced columns categorical, 32,561 rows."""
    schema = census_schemas[0][-1]
    assert schema.level is SchemaLevel.FULL
    assert schema.num_records == 32_561
    assert "fnlwgt" not in schema.names
    assert {n for n, s in schema.stypes.items() if s is SemanticType.CATEGORICAL} == set(
        CENSUS_CATEGORICAL
    )
    assert schema.column("TARGET").values == ("<=50K", ">50K")
    assert "?" in (schema.column("workclass").values or ())
    assert schema.column("age").dtype == "integer"
    assert schema.column("age").stype is SemanticType.CONTINUOUS


def test_census_fast_and_batch_paths_agree(
    census_schemas: tuple[list[Schema], list[Schema]],
) -> None:
    """On the census data, DuckDB and batches give equal partial and full schemas."""
    fast, slow = census_schemas
    assert [s.level for s in fast] == [SchemaLevel.PARTIAL, SchemaLevel.FULL]
    assert fast == slow


def test_census_inferred_without_forcing(census_csv: Path) -> None:
    """Without force_stypes the census text columns are still inferred categorical."""
    schema = infer_schema(CSVSource(census_csv), name="c")
    assert schema.column("native-country").stype is SemanticType.CATEGORICAL
    assert schema.column("fnlwgt").stype is SemanticType.CONTINUOUS


def _write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_csv_types_and_missing_values_agree(tmp_path: Path) -> None:
    """Blanks, NaN, booleans, dates and whole floats read alike on both paths."""
    rows = ["i,f,w,b,d,s"]
    for k in range(30):
        blank = k % 7 == 0
        rows.append(
            ",".join(
                [
                    "" if blank else str(k),
                    "nan" if blank else f"{k / 4}",
                    f"{k}.0",
                    "true" if k % 2 else "false",
                    f"2020-01-{k % 28 + 1:02d}",
                    "" if blank else f"s{k % 3}",
                ]
            )
        )
    source = CSVSource(_write_csv(tmp_path, "\n".join(rows) + "\n"), batch_rows=8)
    fast, slow = _both(source, force_stypes={"w": "categorical"})
    assert fast == slow
    full = fast[-1]
    assert [c.dtype for c in full.columns] == [
        "integer",
        "float",
        "integer",
        "boolean",
        "datetime",
        "string",
    ]
    assert full.column("f").missing == 5
    assert full.column("w").values == tuple(sorted(str(k) for k in range(30)))
    assert full.column("s").stype is SemanticType.CATEGORICAL


def test_modifiers_apply_on_both_paths(tmp_path: Path) -> None:
    """A suffix modifier that makes file names into image paths gives an image column."""
    text = "file,label\n" + "".join(f"img{k},{k % 2}\n" for k in range(10))
    source = CSVSource(_write_csv(tmp_path, text), modifiers={"file": {"suffix": ".png"}})
    fast, slow = _both(source)
    assert fast == slow
    assert fast[-1].column("file").stype is SemanticType.IMAGE


def test_ignore_cols_on_the_fast_path(tmp_path: Path) -> None:
    """Ignored columns are left out of the DuckDB profile."""
    source = CSVSource(_write_csv(tmp_path, "a,b\n1,2\n"), ignore_cols=["b"])
    assert infer_schema(source, name="t").names == ("a",)


def test_header_only_csv_is_a_full_schema_without_rows(tmp_path: Path) -> None:
    """A CSV with a header and no rows gives one full schema of zero records."""
    fast, slow = _both(CSVSource(_write_csv(tmp_path, "a,b\n")))
    assert fast == slow
    assert [s.level for s in fast] == [SchemaLevel.FULL]
    assert fast[0].num_records == 0


def test_forced_categorical_past_the_limit_fails_on_the_fast_path(tmp_path: Path) -> None:
    """A forced categorical column with too many values is a SchemaError here too."""
    text = "id\n" + "".join(f"{k}\n" for k in range(FORCED_CATEGORIES_LIMIT + 1))
    source = CSVSource(_write_csv(tmp_path, text), batch_rows=FORCED_CATEGORIES_LIMIT + 1)
    with pytest.raises(SchemaError, match="'id' is forced to categorical"):
        infer_schema(source, name="t", force_stypes={"id": "categorical"})


def test_low_cardinality_sample_then_many_values(tmp_path: Path) -> None:
    """A column repetitive in its first batch but varied later is text on both paths."""
    values = ["same"] * 20 + [f"v{k}" for k in range(80)]
    text = "g\n" + "".join(f"{v}\n" for v in values)
    fast, slow = _both(CSVSource(_write_csv(tmp_path, text), batch_rows=20))
    assert fast == slow
    assert fast[0].column("g").stype is SemanticType.CATEGORICAL
    assert fast[-1].column("g").stype is SemanticType.TEXT


def test_parquet_types_agree(tmp_path: Path) -> None:
    """Decimals, dates, times, time zones and binary in Parquet read alike on both paths."""
    table = pa.table(
        {
            "dec": pa.array([Decimal("1.50"), Decimal("2.00"), None] * 4, pa.decimal128(5, 2)),
            "day": pa.array([dt.date(2020, 1, 1), dt.date(2020, 1, 2), None] * 4),
            "at": pa.array([dt.time(1, 0), dt.time(2, 0), dt.time(1, 0)] * 4),
            "tz": pa.array([dt.datetime(2020, 1, 1, tzinfo=dt.UTC)] * 12),
            "blob": pa.array([b"a", b"b", b"a"] * 4),
            "big": pa.array([1, 2, 3] * 4, pa.int64()),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    force = {"dec": "categorical", "day": "categorical", "at": "categorical", "blob": "categorical"}
    fast, slow = _both(ParquetSource(path, batch_rows=5), force_stypes=force)
    assert fast == slow
    full = fast[-1]
    assert full.column("dec").values == ("1.5", "2")
    assert full.column("day").dtype == "datetime"
    assert full.column("tz").stype is SemanticType.TEXT


# -- property: generated frames written to CSV -------------------------------------------------

_WORDS = st.sampled_from(["a", "b", "c", "Hello world", "x,y", 'say "hi"', "1", "2.5"])
_IMAGES = st.sampled_from(["p.png", "q.JPG", "r/s.dcm", "t.tiff"])


def _column(kind: str) -> st.SearchStrategy[object]:
    strategies: dict[str, st.SearchStrategy[object]] = {
        "int": st.integers(-1000, 1000),
        "float": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        "whole": st.integers(-50, 50).map(float),
        "bool": st.booleans(),
        "word": _WORDS,
        "image": _IMAGES,
        "text": st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
        "date": st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)).map(dt.date.isoformat),
    }
    return st.one_of(st.none(), strategies[kind])


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, str]]:
    kinds = ["int", "float", "whole", "bool", "word", "image", "text", "date"]
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=5))
    rows = draw(st.integers(1, 40))
    data = {
        f"c{i}_{kind}": draw(st.lists(_column(kind), min_size=rows, max_size=rows))
        for i, kind in enumerate(chosen)
    }
    frame = pd.DataFrame(data, dtype=object)
    forced = draw(
        st.dictionaries(
            st.sampled_from(list(data)), st.sampled_from(["categorical", "text"]), max_size=2
        )
    )
    return frame, forced


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=_frames(), batch_rows=st.integers(1, 12))
def test_generated_csvs_agree(
    tmp_path: Path, case: tuple[pd.DataFrame, dict[str, str]], batch_rows: int
) -> None:
    """For any frame written to CSV, the DuckDB and batch paths give the same schemas."""
    frame, forced = case
    path = tmp_path / "gen.csv"
    frame.to_csv(path, index=False)
    fast, slow = _both(CSVSource(path, batch_rows=batch_rows), force_stypes=forced)
    assert fast == slow
