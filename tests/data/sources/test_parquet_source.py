"""ParquetSource: single files, folders of files, files(), and bad input."""

from __future__ import annotations

import decimal
import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from podium.core.errors import DataSourceNotFoundError, DataSourceReadError
from podium.data.sources._duckdb_file import restricted_connection
from podium.data.sources.parquet_source import ParquetSource


def write_parquet(path: Path, **columns: list[object]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three files written out of name order, plus files that are not Parquet."""
    data = tmp_path / "parts"
    data.mkdir()
    write_parquet(data / "part-2.parquet", id=[4, 5], name=["d", "e"])
    write_parquet(data / "part-0.parquet", id=[0, 1], name=["a", "b"])
    write_parquet(data / "part-1.parquet", id=[2, 3], name=["c", None])
    (data / "README.txt").write_text("not data")
    (data / "nested").mkdir()
    write_parquet(data / "nested" / "other.parquet", id=[99], name=["z"])
    return data


def test_reads_a_single_file(tmp_path: Path) -> None:
    """A file's columns, count and values, ints as nullable Int64."""
    path = write_parquet(tmp_path / "t.parquet", id=[1, 2, None], score=[0.5, None, 1.5])
    source = ParquetSource(path)

    frame = source.to_pandas()

    assert source.column_names() == ["id", "score"]
    assert source.record_count() == 3
    assert str(frame["id"].dtype) == "Int64"
    assert frame["id"].isna().tolist() == [False, False, True]
    assert frame["score"].iloc[2] == 1.5


def test_folder_reads_its_parquet_files_in_name_order(folder: Path) -> None:
    """A folder's *.parquet files (not sub-folders, not other files) read in name order."""
    source = ParquetSource(folder, batch_rows=4)

    batches = list(source.iter_batches())

    assert all(len(b) <= 4 for b in batches)
    assert pd.concat(batches)["id"].tolist() == [0, 1, 2, 3, 4, 5]
    assert source.record_count() == 6


def test_folder_files_are_all_listed_sorted(folder: Path) -> None:
    """files() lists every Parquet file of the folder, sorted, with its hash."""
    records = ParquetSource(folder).files()

    assert [r.path.name for r in records] == [
        "part-0.parquet",
        "part-1.parquet",
        "part-2.parquet",
    ]
    first = folder / "part-0.parquet"
    assert records[0].sha256 == hashlib.sha256(first.read_bytes()).hexdigest()


def test_new_file_in_folder_shows_in_files_and_data(folder: Path) -> None:
    """A file added to the folder appears in files() and in the records."""
    source = ParquetSource(folder)
    before = source.files()

    write_parquet(folder / "part-3.parquet", id=[6], name=["f"])

    assert len(source.files()) == len(before) + 1
    assert source.record_count() == 7


def test_rewritten_file_changes_its_hash(tmp_path: Path) -> None:
    """Rewriting a file with other content changes its SHA-256."""
    path = write_parquet(tmp_path / "t.parquet", id=[1])
    source = ParquetSource(path)
    (before,) = source.files()

    write_parquet(path, id=[2])
    (after,) = source.files()

    assert after.sha256 != before.sha256


def test_duckdb_scan_reads_only_the_listed_files(folder: Path) -> None:
    """The scan works on a connection allowed exactly the paths of files()."""
    source = ParquetSource(folder)

    con = restricted_connection([r.path for r in source.files()])
    try:
        assert con.sql(f"SELECT SUM(id) FROM {source.duckdb_scan()}").fetchall() == [(15,)]
    finally:
        con.close()


def test_decimals_arrive_as_floats(tmp_path: Path) -> None:
    """A decimal column is float64 in the batches, not Python Decimal objects."""
    prices = pa.array([decimal.Decimal("1.25"), None], pa.decimal128(6, 2))
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"price": prices}), path)

    frame = ParquetSource(path).to_pandas()

    assert str(frame["price"].dtype) == "float64"
    assert frame["price"].iloc[0] == 1.25


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    """A path that does not exist is DataSourceNotFoundError naming it."""
    with pytest.raises(DataSourceNotFoundError, match=r"nope\.parquet"):
        ParquetSource(tmp_path / "nope.parquet").column_names()


def test_folder_without_parquet_files_is_not_found(tmp_path: Path) -> None:
    """A folder with no *.parquet files is DataSourceNotFoundError saying so."""
    (tmp_path / "notes.txt").write_text("x")

    with pytest.raises(DataSourceNotFoundError, match=r"no \*\.parquet files"):
        ParquetSource(tmp_path).files()


def test_corrupt_file_is_a_read_error(tmp_path: Path) -> None:
    """A file that is not Parquet is a DataSourceReadError naming it."""
    path = tmp_path / "t.parquet"
    path.write_text("id,name\n1,a\n")

    with pytest.raises(DataSourceReadError, match=r"t\.parquet.*complete Parquet file"):
        ParquetSource(path).column_names()


def test_files_with_different_columns_are_a_read_error(folder: Path) -> None:
    """A folder whose files disagree on column names is a DataSourceReadError."""
    write_parquet(folder / "part-3.parquet", id=[6], label=["f"])

    with pytest.raises(DataSourceReadError, match=r"part-3\.parquet.*same column names"):
        ParquetSource(folder).to_pandas()
