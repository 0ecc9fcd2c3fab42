"""CSVSource: pandas-style options, type stability, files, and every bad input."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import ConfigValidationError, DataSourceNotFoundError, DataSourceReadError
from podium.data.sources._duckdb_file import restricted_connection
from podium.data.sources.csv_source import SUPPORTED_READ_CSV_KWARGS, CSVSource


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def numbered_rows(count: int, *, start: int = 0) -> str:
    return "".join(f"{i},name{i}\n" for i in range(start, start + count))


# -- reading ------------------------------------------------------------------------------


def test_reads_the_packaged_gzip_census(census_csv: Path) -> None:
    """The gzip census file gives its 32,561 rows, with numbers as integers."""
    source = CSVSource(census_csv, batch_rows=10_000)

    batches = list(source.iter_batches())

    assert source.record_count() == 32_561
    assert sum(len(b) for b in batches) == 32_561
    assert [len(b) for b in batches] == [10_000, 10_000, 10_000, 2_561]
    assert str(batches[0]["age"].dtype) == "Int64"
    assert source.column_names()[-1] == "TARGET"


def test_batches_are_bounded_and_in_file_order(tmp_path: Path) -> None:
    """Batches of at most N rows come in the order of the file's lines."""
    source = CSVSource(write(tmp_path / "n.csv", "id,name\n" + numbered_rows(10)), batch_rows=3)

    batches = list(source.iter_batches())

    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert pd.concat(batches)["id"].tolist() == list(range(10))


@settings(max_examples=15, deadline=None)
@given(batch_rows=st.integers(min_value=1, max_value=40))
def test_any_batch_size_gives_the_same_records(
    tmp_path_factory: pytest.TempPathFactory, batch_rows: int
) -> None:
    """Whatever the batch size, the concatenated batches are the same records."""
    path = tmp_path_factory.getbasetemp() / "batch_size.csv"
    if not path.exists():
        write(path, "id,name\n" + numbered_rows(37))
    source = CSVSource(path)

    combined = pd.concat(list(source.iter_batches(batch_rows)), ignore_index=True)

    assert combined["id"].tolist() == list(range(37))
    assert combined["name"].tolist() == [f"name{i}" for i in range(37)]


def test_text_after_numbers_reads_the_column_as_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A column of numbers that turns to text after DuckDB's sample is text in every batch."""
    rows = numbered_rows(25_000) + "n/a,late\n" + numbered_rows(5, start=25_000)
    source = CSVSource(write(tmp_path / "late.csv", "code,name\n" + rows), batch_rows=10_000)

    with caplog.at_level(logging.WARNING, logger="podium.data.sources"):
        batches = list(source.iter_batches())

    assert {str(b["code"].dtype) for b in batches} == {"str"}
    codes = pd.concat(batches)["code"]
    assert codes.iloc[0] == "0"
    assert codes.iloc[25_000] == "n/a"
    assert "'code'" in caplog.text
    assert "line 25002" in caplog.text
    assert source.record_count() == 25_006


def test_sql_scan_uses_the_checked_types(tmp_path: Path) -> None:
    """duckdb_scan() reads a late-text column as text, so SQL over the whole file works."""
    rows = numbered_rows(25_000) + "n/a,late\n"
    source = CSVSource(write(tmp_path / "late.csv", "code,name\n" + rows))

    con = restricted_connection([r.path for r in source.files()])
    try:
        found = con.sql(f"SELECT COUNT(*) FROM {source.duckdb_scan()} WHERE code = 'n/a'")
        assert found.fetchall() == [(1,)]
    finally:
        con.close()


def test_duckdb_scan_reads_exactly_the_listed_files(tmp_path: Path) -> None:
    """The scan runs on a connection allowed only the paths of files()."""
    source = CSVSource(write(tmp_path / "n.csv", "id,name\n" + numbered_rows(4)))

    con = restricted_connection([r.path for r in source.files()])
    try:
        assert con.sql(f"SELECT SUM(id) FROM {source.duckdb_scan()}").fetchall() == [(6,)]
    finally:
        con.close()


def test_type_check_is_redone_when_the_file_changes(tmp_path: Path) -> None:
    """After the file is rewritten, record_count and types follow the new content."""
    path = write(tmp_path / "n.csv", "id,name\n" + numbered_rows(3))
    source = CSVSource(path)
    assert source.record_count() == 3

    write(path, "id,name\n" + numbered_rows(5) + "x,y\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    assert source.record_count() == 6
    assert str(source.to_pandas()["id"].dtype) == "str"


# -- read_csv_kwargs ----------------------------------------------------------------------


def test_na_values_mark_missing_values(census_csv: Path) -> None:
    """na_values: '?' in the census becomes missing instead of a category."""
    source = CSVSource(census_csv, read_csv_kwargs={"na_values": "?"})

    workclass = source.to_pandas()["workclass"]

    assert "?" not in set(workclass.dropna())
    assert workclass.isna().sum() > 0


def test_dtype_keeps_leading_zeros(tmp_path: Path) -> None:
    """dtype {col: str} reads codes with leading zeros as text; other columns stay typed."""
    path = write(tmp_path / "zip.csv", "zip,n\n00123,1\n04500,2\n")

    frame = CSVSource(path, read_csv_kwargs={"dtype": {"zip": "str"}}).to_pandas()

    assert frame["zip"].tolist() == ["00123", "04500"]
    assert str(frame["n"].dtype) == "Int64"


def test_dtype_str_reads_every_column_as_text(tmp_path: Path) -> None:
    """dtype: str (one type for all) reads every column as text."""
    path = write(tmp_path / "n.csv", "a,b\n1,2.5\n")

    frame = CSVSource(path, read_csv_kwargs={"dtype": "str"}).to_pandas()

    assert frame.iloc[0].tolist() == ["1", "2.5"]


def test_dtype_float_for_an_integer_column(tmp_path: Path) -> None:
    """dtype {col: float64} reads whole numbers as floats."""
    path = write(tmp_path / "n.csv", "a\n1\n2\n")

    frame = CSVSource(path, read_csv_kwargs={"dtype": {"a": "float64"}}).to_pandas()

    assert str(frame["a"].dtype) == "float64"


def test_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    """sep ';' with decimal ',' reads European-style files."""
    path = write(tmp_path / "eu.csv", "price;item\n1,5;tea\n2,25;cake\n")

    frame = CSVSource(path, read_csv_kwargs={"sep": ";", "decimal": ","}).to_pandas()

    assert frame["price"].tolist() == [1.5, 2.25]


def test_tab_delimiter_spelled_delimiter(tmp_path: Path) -> None:
    """delimiter is accepted as pandas' alias of sep."""
    path = write(tmp_path / "t.tsv", "a\tb\n1\tx\n")

    frame = CSVSource(path, read_csv_kwargs={"delimiter": "\t"}).to_pandas()

    assert list(frame.columns) == ["a", "b"]


def test_header_none_with_names(tmp_path: Path) -> None:
    """header=None with names: the first line is data, the columns are named."""
    path = write(tmp_path / "h.csv", "1,x\n2,y\n")

    source = CSVSource(path, read_csv_kwargs={"header": None, "names": ["n", "s"]})

    assert source.column_names() == ["n", "s"]
    assert source.record_count() == 2


def test_names_replace_the_header_line(tmp_path: Path) -> None:
    """header=0 with names: the header line is dropped and the names used."""
    path = write(tmp_path / "h.csv", "old_a,old_b\n1,x\n")

    source = CSVSource(path, read_csv_kwargs={"header": 0, "names": ["a", "b"]})

    assert source.column_names() == ["a", "b"]
    assert source.record_count() == 1


def test_skiprows_and_comment(tmp_path: Path) -> None:
    """skiprows drops lines before the header; comment drops lines that start with it."""
    path = write(tmp_path / "s.csv", "exported 2024\n\nid,v\n# note\n1,2\n")

    source = CSVSource(path, read_csv_kwargs={"skiprows": 2, "comment": "#"})

    assert source.column_names() == ["id", "v"]
    assert source.to_pandas()["v"].tolist() == [2]


def test_quote_and_escape_characters(tmp_path: Path) -> None:
    """quotechar and escapechar read fields holding delimiters and quotes."""
    path = write(tmp_path / "q.csv", "a,b\n1,'x, y'\n2,'it\\'s'\n")

    frame = CSVSource(path, read_csv_kwargs={"quotechar": "'", "escapechar": "\\"}).to_pandas()

    assert frame["b"].tolist() == ["x, y", "it's"]


def test_latin1_encoding(tmp_path: Path) -> None:
    """encoding latin-1 decodes accented text."""
    path = write(tmp_path / "l.csv", "city\nMálaga\n", encoding="latin-1")

    frame = CSVSource(path, read_csv_kwargs={"encoding": "ISO-8859-1"}).to_pandas()

    assert frame["city"].tolist() == ["Málaga"]


def test_parse_dates_and_thousands(tmp_path: Path) -> None:
    """parse_dates gives datetimes; thousands strips the separator from numbers."""
    path = write(tmp_path / "d.csv", 'day,n\n2024-03-01,"1,200"\n')

    frame = CSVSource(path, read_csv_kwargs={"parse_dates": ["day"], "thousands": ","}).to_pandas()

    assert frame["day"].tolist() == [pd.Timestamp("2024-03-01")]
    assert frame["n"].tolist() == [1200]


def test_unknown_read_csv_kwarg_is_a_config_error() -> None:
    """An unsupported key names its field path and lists the supported keys."""
    with pytest.raises(ConfigValidationError) as info:
        CSVSource("x.csv", read_csv_kwargs={"usecols": ["a"]})

    message = str(info.value)
    assert "datasource_args.read_csv_kwargs.usecols" in message
    assert all(key in message for key in SUPPORTED_READ_CSV_KWARGS)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sep": r"\s+"}, "sep"),
        ({"sep": ""}, "sep"),
        ({"quotechar": "''"}, "quotechar"),
        ({"escapechar": 5}, "escapechar"),
        ({"header": "yes"}, "header"),
        ({"names": ["a", "a"]}, "names"),
        ({"na_values": {"a": "x"}}, "na_values"),
        ({"skiprows": [1, 2]}, "skiprows"),
        ({"encoding": "cp1252"}, "encoding"),
        ({"decimal": ";"}, "decimal"),
        ({"dtype": {"a": "complex128"}}, "dtype.a"),
        ({"dtype": "int"}, "dtype"),
        ({"parse_dates": True}, "parse_dates"),
        ({"sep": ";", "delimiter": ";"}, ""),
    ],
)
def test_bad_read_csv_kwarg_values_are_config_errors(kwargs: dict[str, object], field: str) -> None:
    """A wrong value is a ConfigValidationError naming the field, without touching disk."""
    with pytest.raises(ConfigValidationError, match=rf"read_csv_kwargs\.?{field}"):
        CSVSource("/no/such/dir/x.csv", read_csv_kwargs=kwargs)


def test_dtype_for_a_missing_column_names_the_option(tmp_path: Path) -> None:
    """dtype naming a column the file lacks is a DataSourceReadError naming dtype and it."""
    source = CSVSource(write(tmp_path / "n.csv", "a\n1\n"), read_csv_kwargs={"dtype": {"b": "int"}})

    with pytest.raises(DataSourceReadError, match=r"read_csv_kwargs\.dtype.*\"b\""):
        source.to_pandas()


def test_dtype_that_does_not_fit_is_a_read_error(tmp_path: Path) -> None:
    """A chosen type that a value does not fit fails with the line, not silently."""
    path = write(tmp_path / "n.csv", "a\n1\n2\nthree\n")

    with pytest.raises(DataSourceReadError, match=r"line 4.*three.*read_csv_kwargs"):
        CSVSource(path, read_csv_kwargs={"dtype": {"a": "int"}}).to_pandas()


# -- files --------------------------------------------------------------------------------


def test_files_hash_the_compressed_bytes(tmp_path: Path) -> None:
    """files() gives the resolved path, size, mtime and SHA-256 of the file as stored."""
    path = tmp_path / "n.csv.gz"
    path.write_bytes(gzip.compress(b"a\n1\n"))

    (record,) = CSVSource(path).files()

    assert record.path == path.resolve()
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (record.size, record.modified) == (path.stat().st_size, path.stat().st_mtime)


def test_files_hash_changes_with_content(tmp_path: Path) -> None:
    """Rewriting the file changes its hash; touching it changes only the mtime."""
    path = write(tmp_path / "n.csv", "a\n1\n")
    source = CSVSource(path)
    (before,) = source.files()

    os.utime(path, (1_000_000_000, 1_000_000_000))
    (touched,) = source.files()
    write(path, "a\n2\n")
    (rewritten,) = source.files()

    assert touched.sha256 == before.sha256
    assert touched.modified == 1_000_000_000 != before.modified
    assert rewritten.sha256 != before.sha256


# -- bad input ----------------------------------------------------------------------------


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """Building a source over a missing file succeeds; using it raises NotFound."""
    source = CSVSource(tmp_path / "missing.csv")

    with pytest.raises(DataSourceNotFoundError, match=r"missing\.csv.*datasource_args\.path"):
        source.column_names()


@pytest.mark.parametrize(
    "call", ["column_names", "record_count", "files", "to_pandas", "duckdb_scan"]
)
def test_missing_file_is_not_found(tmp_path: Path, call: str) -> None:
    """Every method on a missing file raises DataSourceNotFoundError naming it."""
    source = CSVSource(tmp_path / "gone.csv")

    with pytest.raises(DataSourceNotFoundError, match=r"gone\.csv"):
        getattr(source, call)()


def test_folder_given_as_file_is_a_read_error(tmp_path: Path) -> None:
    """A folder where a file should be is a DataSourceReadError saying so."""
    (tmp_path / "data.csv").mkdir()

    with pytest.raises(DataSourceReadError, match="not a file"):
        CSVSource(tmp_path / "data.csv").column_names()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_read_error(tmp_path: Path) -> None:
    """A file without read permission is a DataSourceReadError naming it."""
    path = write(tmp_path / "locked.csv", "a\n1\n")
    path.chmod(0)

    with pytest.raises(DataSourceReadError, match=r"locked\.csv"):
        CSVSource(path).to_pandas()


def test_empty_file_is_a_read_error(tmp_path: Path) -> None:
    """A zero-byte file is a DataSourceReadError asking for a header line."""
    with pytest.raises(DataSourceReadError, match="empty"):
        CSVSource(write(tmp_path / "e.csv", "")).column_names()


def test_ragged_rows_name_the_line(tmp_path: Path) -> None:
    """A row with too many fields is a DataSourceReadError with its line number."""
    path = write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n")

    with pytest.raises(DataSourceReadError, match=r"r\.csv at line 4.*read_csv_kwargs"):
        CSVSource(path).to_pandas()


def test_short_row_names_the_line(tmp_path: Path) -> None:
    """A row with too few fields is an error too (no silent padding)."""
    path = write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5\n")

    with pytest.raises(DataSourceReadError, match="at line 3"):
        CSVSource(path).record_count()


def test_ragged_row_after_the_sample_names_the_line(tmp_path: Path) -> None:
    """A ragged row past DuckDB's sniffing sample is still reported with its line."""
    rows = numbered_rows(21_000) + "1,2,3\n" + numbered_rows(10)
    path = write(tmp_path / "r.csv", "id,name\n" + rows)

    with pytest.raises(DataSourceReadError, match=r"at line 21002.*'1,2,3'"):
        CSVSource(path).to_pandas()


def test_ragged_row_after_comment_lines_names_the_line(tmp_path: Path) -> None:
    """Comment lines do not count as rows when the ragged line is looked for."""
    path = write(tmp_path / "r.csv", "a,b\n# one, two, three\n1,2\n3,4,5\n")

    with pytest.raises(DataSourceReadError, match="at line 4"):
        CSVSource(path, read_csv_kwargs={"comment": "#"}).to_pandas()


def test_bad_quoting_names_the_line(tmp_path: Path) -> None:
    """Text after a closing quote is a DataSourceReadError with its line number."""
    path = write(tmp_path / "q.csv", 'a,b\n1,"x"\n2,"y"z\n')

    with pytest.raises(DataSourceReadError, match=r"at line 3.*quotechar"):
        CSVSource(path).to_pandas()


def test_wrong_encoding_is_a_read_error(tmp_path: Path) -> None:
    """A latin-1 file read as UTF-8 is a DataSourceReadError suggesting encoding."""
    path = write(tmp_path / "l.csv", "city\nMálaga\n", encoding="latin-1")

    with pytest.raises(DataSourceReadError, match=r"utf-8.*encoding"):
        CSVSource(path).to_pandas()


def test_corrupt_gzip_is_a_read_error(tmp_path: Path) -> None:
    """A .csv.gz that is not gzip data is a DataSourceReadError naming the file."""
    path = tmp_path / "n.csv.gz"
    path.write_bytes(b"a,b\n1,2\n")

    with pytest.raises(DataSourceReadError, match=r"n\.csv\.gz"):
        CSVSource(path).to_pandas()
