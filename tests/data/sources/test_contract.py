"""One contract for every kind of data source: the same table reads the same everywhere.

Each factory in ``FACTORIES`` stores ``TABLE`` in its own format and returns a source over
it. To put another source under the contract, add one entry to ``FACTORIES``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from podium.core.errors import ConfigValidationError
from podium.data.sources.base import DEFAULT_BATCH_ROWS, DataSource, FileSource
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.database_source import DatabaseSource
from podium.data.sources.excel_source import ExcelSource
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sources.parquet_source import ParquetSource
from tests.conftest import POSTGRES_URL

#: Ints (with and without gaps), floats, text with gaps: eight records. In batches of two,
#: ``age`` is all missing in the third batch and ``city`` in the fourth.
TABLE = pd.DataFrame(
    {
        "id": pd.array([1, 2, 3, 4, 5, 6, 7, 8], dtype="Int64"),
        "age": pd.array([34, None, 51, 29, None, None, 63, 18], dtype="Int64"),
        "score": [0.5, 1.25, np.nan, -3.0, 2.5, 10.0, np.nan, 0.125],
        "city": pd.array(
            ["Leeds", "York", None, "Hull", "Ripon", "Leeds", None, None], dtype="str"
        ),
    }
)


class SourceFactory(Protocol):
    """Store ``table`` under ``workdir`` in some format and return a source over it."""

    def __call__(
        self,
        workdir: Path,
        table: pd.DataFrame,
        *,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Mapping[str, str]] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> DataSource: ...


def _cell(value: object) -> object:
    """A table value as openpyxl writes it: Python scalars, None for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def csv_factory(
    workdir: Path,
    table: pd.DataFrame,
    *,
    ignore_cols: Sequence[str] = (),
    modifiers: Mapping[str, Mapping[str, str]] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DataSource:
    path = workdir / "table.csv"
    table.to_csv(path, index=False)
    return CSVSource(path, ignore_cols=ignore_cols, modifiers=modifiers, batch_rows=batch_rows)


def parquet_factory(
    workdir: Path,
    table: pd.DataFrame,
    *,
    ignore_cols: Sequence[str] = (),
    modifiers: Mapping[str, Mapping[str, str]] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DataSource:
    path = workdir / "table.parquet"
    table.to_parquet(path, index=False)
    return ParquetSource(path, ignore_cols=ignore_cols, modifiers=modifiers, batch_rows=batch_rows)


def excel_factory(
    workdir: Path,
    table: pd.DataFrame,
    *,
    ignore_cols: Sequence[str] = (),
    modifiers: Mapping[str, Mapping[str, str]] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DataSource:
    path = workdir / "table.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(table.columns))
    for row in table.itertuples(index=False):
        sheet.append([_cell(v) for v in row])
    workbook.save(path)
    return ExcelSource(path, ignore_cols=ignore_cols, modifiers=modifiers, batch_rows=batch_rows)


def frame_factory(
    workdir: Path,
    table: pd.DataFrame,
    *,
    ignore_cols: Sequence[str] = (),
    modifiers: Mapping[str, Mapping[str, str]] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DataSource:
    del workdir  # held in memory
    return DataFrameSource(
        table.copy(), ignore_cols=ignore_cols, modifiers=modifiers, batch_rows=batch_rows
    )


def _database_factory(url: str, engine: sa.Engine | None = None) -> SourceFactory:
    """A factory writing the table into a database: a SQLite file, or ``engine``'s database."""

    def factory(
        workdir: Path,
        table: pd.DataFrame,
        *,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Mapping[str, str]] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> DataSource:
        name = f"contract_{uuid.uuid4().hex[:12]}"
        target = engine or sa.create_engine(url.format(workdir=workdir))
        table.to_sql(name, target, index=False)
        if engine is None:
            target.dispose()
        return DatabaseSource(
            url.format(workdir=workdir),
            table=name,
            ignore_cols=ignore_cols,
            modifiers=modifiers,
            batch_rows=batch_rows,
        )

    return factory


#: Every source under the contract. One line per source. PostgreSQL is added by the
#: ``factory`` fixture, which needs the live server.
FACTORIES: dict[str, SourceFactory] = {
    "CSVSource": csv_factory,
    "DatabaseSource[sqlite]": _database_factory("sqlite:///{workdir}/table.db"),
    "DataFrameSource": frame_factory,
    "ExcelSource": excel_factory,
    "ParquetSource": parquet_factory,
}


POSTGRES = "DatabaseSource[postgresql]"


@pytest.fixture(
    params=[
        *sorted(FACTORIES),
        pytest.param(POSTGRES, marks=pytest.mark.integration),
    ]
)
def factory(request: pytest.FixtureRequest) -> Iterator[SourceFactory]:
    """Each source factory in turn; database sources are closed after the test."""
    if request.param == POSTGRES:
        engine: sa.Engine = request.getfixturevalue("postgres_engine")
        chosen = _database_factory(POSTGRES_URL, engine)
    else:
        chosen = FACTORIES[request.param]
    made: list[DataSource] = []

    def tracked(workdir: Path, table: pd.DataFrame, **options: object) -> DataSource:
        source = chosen(workdir, table, **options)  # type: ignore[arg-type]
        made.append(source)
        return source

    yield tracked
    for source in made:
        if isinstance(source, DatabaseSource):
            source.close()


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64 with NaN, everything else as object with None, fresh index."""
    columns: dict[str, list[object]] = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
            columns[str(name)] = [float(v) for v in numbers]
        else:
            columns[str(name)] = [None if pd.isna(v) else str(v) for v in values]
    return pd.DataFrame(columns, dtype=object)


def test_column_names_are_the_table_columns(factory: SourceFactory, tmp_path: Path) -> None:
    """Every source names the same columns, in the table's order."""
    source = factory(tmp_path, TABLE)

    assert source.column_names() == list(TABLE.columns)


def test_record_count_is_the_number_of_rows(factory: SourceFactory, tmp_path: Path) -> None:
    """Every source counts the same records."""
    source = factory(tmp_path, TABLE)

    assert source.record_count() == len(TABLE)


def test_batches_hold_the_table_in_order(factory: SourceFactory, tmp_path: Path) -> None:
    """Concatenated batches equal the table: same values, same order, same gaps."""
    source = factory(tmp_path, TABLE, batch_rows=3)

    combined = pd.concat(list(source.iter_batches()), ignore_index=True)

    pd.testing.assert_frame_equal(normalise(combined), normalise(TABLE))


@pytest.mark.parametrize("batch_rows", [1, 3, 8, 100])
def test_batches_are_bounded(factory: SourceFactory, tmp_path: Path, batch_rows: int) -> None:
    """No batch exceeds batch_rows and together they hold every record."""
    source = factory(tmp_path, TABLE)

    sizes = [len(batch) for batch in source.iter_batches(batch_rows)]

    assert all(0 < size <= batch_rows for size in sizes)
    assert sum(sizes) == len(TABLE)


def test_batch_dtypes_do_not_change_between_batches(factory: SourceFactory, tmp_path: Path) -> None:
    """Each column keeps one dtype across batches, even where one batch is all missing."""
    source = factory(tmp_path, TABLE, batch_rows=2)

    dtypes = {tuple(str(t) for t in batch.dtypes) for batch in source.iter_batches()}

    assert len(dtypes) == 1


def test_ignore_cols_are_left_out(factory: SourceFactory, tmp_path: Path) -> None:
    """ignore_cols disappear from the column names and from every batch."""
    source = factory(tmp_path, TABLE, ignore_cols=["age", "city"], batch_rows=3)

    batches = list(source.iter_batches())

    assert source.column_names() == ["id", "score"]
    assert all(list(batch.columns) == ["id", "score"] for batch in batches)
    combined = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(normalise(combined), normalise(TABLE[["id", "score"]]))


def test_modifiers_wrap_values(factory: SourceFactory, tmp_path: Path) -> None:
    """A modifier adds its prefix and suffix to every value and leaves gaps missing."""
    source = factory(
        tmp_path, TABLE, modifiers={"city": {"prefix": "/img/", "suffix": ".png"}}, batch_rows=3
    )

    city = pd.concat(list(source.iter_batches()), ignore_index=True)["city"]

    expected = [None if pd.isna(c) else f"/img/{c}.png" for c in TABLE["city"]]
    assert [None if pd.isna(c) else c for c in city] == expected


def test_unknown_ignore_col_is_a_config_error(factory: SourceFactory, tmp_path: Path) -> None:
    """An ignore_cols entry the data lacks is a ConfigValidationError naming it."""
    source = factory(tmp_path, TABLE, ignore_cols=["no_such_column"])

    with pytest.raises(ConfigValidationError, match="no_such_column"):
        source.column_names()


def test_to_pandas_stops_at_max_rows(factory: SourceFactory, tmp_path: Path) -> None:
    """to_pandas(max_rows=n) gives the first n records."""
    source = factory(tmp_path, TABLE, batch_rows=3)

    head = source.to_pandas(max_rows=5)

    pd.testing.assert_frame_equal(normalise(head), normalise(TABLE.head(5)))


def test_files_are_hashed_when_file_based(factory: SourceFactory, tmp_path: Path) -> None:
    """File sources list each file with its SHA-256; in-memory sources list none."""
    source = factory(tmp_path, TABLE)

    records = source.files()

    assert all(len(r.sha256) == 64 and r.size == r.path.stat().st_size for r in records)
    assert [r.path.parent for r in records] == [tmp_path.resolve()] * len(records)
    assert bool(records) == isinstance(source, FileSource)
