"""ExcelSource: sheet selection, header checks, stable dtypes, streaming, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from podium.core.errors import ConfigValidationError, DataSourceNotFoundError, DataSourceReadError
from podium.data.sources.excel_source import ExcelSource, _Kind


def write_workbook(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    default = workbook.active
    assert default is not None
    workbook.remove(default)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path


PEOPLE: list[list[object]] = [["name", "age"], ["Ada", 36], ["Alan", 41], ["Grace", 85]]


@pytest.fixture
def people(tmp_path: Path) -> Path:
    return write_workbook(tmp_path / "people.xlsx", {"People": PEOPLE, "Other": [["x"], [1], [2]]})


def test_reads_the_first_sheet_by_default(people: Path) -> None:
    """Without sheet_name the first sheet is read, its first row giving the names."""
    source = ExcelSource(people)

    frame = source.to_pandas()

    assert source.column_names() == ["name", "age"]
    assert frame["name"].tolist() == ["Ada", "Alan", "Grace"]
    assert str(frame["age"].dtype) == "Int64"


@pytest.mark.parametrize("sheet", ["Other", 1])
def test_sheet_by_name_or_position(people: Path, sheet: str | int) -> None:
    """sheet_name picks a sheet by name or by position from 0."""
    source = ExcelSource(people, sheet_name=sheet)

    assert source.column_names() == ["x"]
    assert source.record_count() == 2


def test_header_row_skips_title_rows(tmp_path: Path) -> None:
    """header_row names the row with the column names; rows above are ignored."""
    path = write_workbook(tmp_path / "t.xlsx", {"S": [["Quarterly report"], [], *PEOPLE]})

    source = ExcelSource(path, header_row=3)

    assert source.column_names() == ["name", "age"]
    assert source.record_count() == 3


def test_batches_are_bounded_and_in_row_order(tmp_path: Path) -> None:
    """Batches hold at most N rows, in the sheet's order."""
    path = write_workbook(tmp_path / "n.xlsx", {"S": [["n"], *([i] for i in range(10))]})

    batches = list(ExcelSource(path, batch_rows=4).iter_batches())

    assert [len(b) for b in batches] == [4, 4, 2]
    assert pd.concat(batches)["n"].tolist() == list(range(10))


def test_dtypes_are_fixed_by_the_whole_sheet(tmp_path: Path) -> None:
    """A column with numbers early and text later is text in every batch."""
    rows: list[list[object]] = [["code", "ratio"], [1, 1], [2, 2], [3, 3.5], ["X9", 4]]
    path = write_workbook(tmp_path / "m.xlsx", {"S": rows})

    batches = list(ExcelSource(path, batch_rows=2).iter_batches())

    assert [str(b["code"].dtype) for b in batches] == ["str", "str"]
    assert [str(b["ratio"].dtype) for b in batches] == ["float64", "float64"]
    assert pd.concat(batches)["code"].tolist() == ["1", "2", "3", "X9"]


def test_cell_types_map_to_dtypes(tmp_path: Path) -> None:
    """Booleans, datetimes and dates, and empty columns get fixed dtypes."""
    rows: list[list[object]] = [
        ["flag", "when", "empty"],
        [True, dt.datetime(2024, 1, 2, 3, 4), None],
        [False, dt.date(2024, 5, 6), None],
    ]
    path = write_workbook(tmp_path / "t.xlsx", {"S": rows})

    frame = ExcelSource(path).to_pandas()

    assert frame["flag"].tolist() == [True, False]
    assert str(frame["flag"].dtype) == "boolean"
    assert frame["when"].tolist() == [pd.Timestamp("2024-01-02 03:04"), pd.Timestamp("2024-05-06")]
    assert str(frame["empty"].dtype) == "str"


def test_empty_rows_and_error_values(tmp_path: Path) -> None:
    """Blank rows are skipped; '', #N/A and #DIV/0! cells are missing values."""
    rows: list[list[object]] = [["a", "b"], [1, "#N/A"], [None, None], [2, ""], ["#DIV/0!", "x"]]
    path = write_workbook(tmp_path / "t.xlsx", {"S": rows})
    source = ExcelSource(path)

    frame = source.to_pandas()

    assert source.record_count() == 3
    assert frame["a"].isna().tolist() == [False, False, True]
    assert str(frame["a"].dtype) == "Int64"
    assert frame["b"].isna().tolist() == [True, True, False]


def test_record_count_builds_no_frames(people: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting streams the rows; it never assembles a DataFrame of them."""
    source = ExcelSource(people)

    def refuse(*args: object, **kwargs: object) -> pd.DataFrame:
        raise AssertionError("record_count built a frame")

    monkeypatch.setattr(ExcelSource, "_frame", refuse)

    assert source.record_count() == 3


def test_changed_file_is_read_again(people: Path) -> None:
    """After the workbook is rewritten, the count and columns follow the new content."""
    source = ExcelSource(people)
    assert source.record_count() == 3

    write_workbook(people, {"People": [["name", "age", "city"], ["Ada", 36, "London"]]})
    os.utime(people, ns=(people.stat().st_atime_ns, people.stat().st_mtime_ns + 10**9))

    assert source.record_count() == 1
    assert source.column_names() == ["name", "age", "city"]


def test_files_hash_changes_with_content(people: Path) -> None:
    """files() lists the workbook; its hash changes when the workbook is rewritten."""
    source = ExcelSource(people)
    (before,) = source.files()

    write_workbook(people, {"People": [["name"], ["Ada"]]})
    (after,) = source.files()

    assert before.path == people.resolve()
    assert after.sha256 != before.sha256


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("sheet", ["Missing", 5])
def test_missing_sheet_lists_the_sheets(people: Path, sheet: str | int) -> None:
    """A sheet that is not there is DataSourceNotFoundError listing the sheets."""
    with pytest.raises(DataSourceNotFoundError, match=r"\['People', 'Other'\]"):
        ExcelSource(people, sheet_name=sheet).column_names()


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    """A workbook that does not exist is DataSourceNotFoundError naming it."""
    with pytest.raises(DataSourceNotFoundError, match=r"gone\.xlsx"):
        ExcelSource(tmp_path / "gone.xlsx").record_count()


def test_folder_given_as_file_is_a_read_error(tmp_path: Path) -> None:
    """A folder where the workbook should be is a DataSourceReadError."""
    (tmp_path / "book.xlsx").mkdir()

    with pytest.raises(DataSourceReadError, match="not a file"):
        ExcelSource(tmp_path / "book.xlsx").column_names()


@pytest.mark.parametrize(
    ("name", "content"),
    [("renamed.xlsx", b"a,b\n1,2\n"), ("old.xls", b"\xd0\xcf\x11\xe0 not ooxml")],
)
def test_not_a_workbook_is_a_read_error(tmp_path: Path, name: str, content: bytes) -> None:
    """A CSV renamed .xlsx or an old .xls is a DataSourceReadError suggesting .xlsx."""
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(DataSourceReadError, match=rf"{name}.*Save it as \.xlsx"):
        ExcelSource(path).column_names()


def test_zip_without_workbook_is_a_read_error(tmp_path: Path) -> None:
    """A zip archive that holds no workbook is a DataSourceReadError."""
    path = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")

    with pytest.raises(DataSourceReadError, match=r"fake\.xlsx"):
        ExcelSource(path).record_count()


def test_empty_header_cell_is_named(tmp_path: Path) -> None:
    """An empty header cell between names is a DataSourceReadError naming the cell."""
    path = write_workbook(tmp_path / "h.xlsx", {"S": [["a", None, "c"], [1, 2, 3]]})

    with pytest.raises(DataSourceReadError, match=r"cell B1 .* is empty"):
        ExcelSource(path).column_names()


def test_duplicate_header_is_named(tmp_path: Path) -> None:
    """A column name used twice is a DataSourceReadError naming both cells."""
    path = write_workbook(tmp_path / "h.xlsx", {"S": [["a", "b", "a"], [1, 2, 3]]})

    with pytest.raises(DataSourceReadError, match=r"'a' appears twice.*A1 and C1"):
        ExcelSource(path).column_names()


def test_empty_header_row_is_a_read_error(tmp_path: Path) -> None:
    """A header_row with no names is a DataSourceReadError pointing at header_row."""
    path = write_workbook(tmp_path / "h.xlsx", {"S": [[None], ["a"], [1]]})

    with pytest.raises(DataSourceReadError, match=r"row 1 .* empty.*header_row"):
        ExcelSource(path).column_names()


def test_value_outside_the_named_columns_is_a_read_error(tmp_path: Path) -> None:
    """A value to the right of the last named column is an error naming its cell."""
    path = write_workbook(tmp_path / "h.xlsx", {"S": [["a"], [1], [2, "note"]]})

    with pytest.raises(DataSourceReadError, match=r"cell B3"):
        ExcelSource(path).to_pandas()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"header_row": 0}, "header_row"), ({"sheet_name": -1}, "sheet_name")],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, int], field: str) -> None:
    """header_row below 1 or a negative sheet position is a ConfigValidationError."""
    with pytest.raises(ConfigValidationError, match=rf"datasource_args\.{field}"):
        ExcelSource("book.xlsx", **kwargs)  # type: ignore[arg-type]


def test_value_that_no_longer_fits_its_column_is_a_read_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text in a column the first pass found numeric (file changed) is a read error."""
    path = write_workbook(tmp_path / "t.xlsx", {"S": [["a"], ["text"]]})
    source = ExcelSource(path)
    layout = source._layout()
    stale = dataclasses.replace(layout, kinds=(_Kind.INT,))
    monkeypatch.setattr(source, "_layout", lambda: stale)

    with pytest.raises(DataSourceReadError, match=r"t\.xlsx changed while"):
        source.to_pandas()
