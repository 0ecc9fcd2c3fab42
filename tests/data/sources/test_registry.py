"""Building sources from type names and config arguments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from podium.core.errors import ConfigValidationError, UnknownDataSourceError
from podium.data.census import CENSUS_CSV_PATH
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.excel_source import ExcelSource
from podium.data.sources.parquet_source import ParquetSource
from podium.data.sources.registry import create_source, source_class, source_for_file


def test_text_from_variables_is_coerced_to_the_annotated_type() -> None:
    """Numbers written as text (as ${VAR} expansion leaves them) become numbers."""
    source = create_source(
        "CSVSource", {"path": str(CENSUS_CSV_PATH), "batch_rows": "1000", "seed": "7"}
    )
    assert isinstance(source, CSVSource)
    assert (source.batch_rows, source.seed) == (1000, 7)


def test_bitfount_prefix_is_accepted() -> None:
    """``bitfount.CSVSource`` names the same class as ``CSVSource``."""
    assert source_class("bitfount.CSVSource") is CSVSource


def test_unknown_type_lists_the_known_ones() -> None:
    """An unknown type name is an UnknownDataSourceError listing the known types."""
    with pytest.raises(UnknownDataSourceError, match=r"'CsvSource'.*CSVSource"):
        source_class("CsvSource")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "x.csv", "pth": 1}, r"no argument\(s\) \['pth'\] \(did you mean 'path'"),
        ({}, r"CSVSource needs path"),
        ({"path": "x.csv", "batch_rows": "lots"}, r"datasource_args\.batch_rows: .*integer"),
        ({"path": "x.csv", "ignore_cols": "fnlwgt"}, r"datasource_args\.ignore_cols"),
        ({"path": "x.csv", "read_csv_kwargs": ["sep"]}, r"datasource_args\.read_csv_kwargs"),
    ],
)
def test_bad_arguments_name_the_argument(args: dict[str, object], message: str) -> None:
    """Unknown, missing and ill-typed arguments are config errors naming the argument."""
    with pytest.raises(ConfigValidationError, match=message):
        create_source("CSVSource", args)


def test_a_frame_source_cannot_come_from_yaml() -> None:
    """A DataFrameSource needs a frame; text for it is a config error, not a crash."""
    with pytest.raises(ConfigValidationError, match=r"datasource_args\.data: .*DataFrame"):
        create_source("DataFrameSource", {"data": "people.csv"})


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.csv", CSVSource),
        ("a.CSV.GZ", CSVSource),
        ("a.tsv", CSVSource),
        ("a.parquet", ParquetSource),
        ("a.pq", ParquetSource),
        ("a.xlsx", ExcelSource),
    ],
)
def test_files_are_read_by_their_ending(name: str, kind: type) -> None:
    """A bare file gets the source its ending calls for; a .tsv is tab-separated."""
    source = source_for_file(Path(name))
    assert isinstance(source, kind)
    if name.endswith(".tsv"):
        assert isinstance(source, CSVSource)
        assert source.read_csv_kwargs == {"sep": "\t"}


def test_an_unknown_ending_is_refused() -> None:
    """A file whose ending says nothing is an UnknownDataSourceError listing the endings."""
    with pytest.raises(UnknownDataSourceError, match=r"notes\.txt.*\.parquet"):
        source_for_file(Path("notes.txt"))


def test_a_folder_of_parquet_files_is_a_parquet_source(tmp_path: Path) -> None:
    """A folder holding .parquet files is read as one ParquetSource over all of them."""
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "x.parquet")
    pd.DataFrame({"a": [3]}).to_parquet(tmp_path / "y.parquet")
    source = source_for_file(tmp_path)
    assert isinstance(source, ParquetSource)
    assert source.record_count() == 3


def test_a_folder_without_parquet_files_is_refused(tmp_path: Path) -> None:
    """A folder with no .parquet files says what to do instead."""
    with pytest.raises(UnknownDataSourceError, match="ImageSource"):
        source_for_file(tmp_path)
