"""DuckDB error messages told without the raw data they quote (for modellers)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from podium.data.sources._duckdb_file import (
    csv_error_summary,
    data_free_error_summary,
    duckdb_error_summary,
)

SECRET = "TOPSECRET-9931"


@pytest.fixture
def people_csv(tmp_path: Path) -> Path:
    """A small CSV whose third column holds a secret."""
    path = tmp_path / "people.csv"
    path.write_text(f"id,city,secret\n1,Leeds,{SECRET}\n2,York,s2\n")
    return path


def _duckdb_error(sql: str) -> duckdb.Error:
    with duckdb.connect() as con:
        try:
            con.sql(sql).fetchall()
        except duckdb.Error as exc:
            return exc
    raise AssertionError(f"DuckDB ran {sql!r} without an error")


def test_detected_header_row_is_not_quoted(people_csv: Path) -> None:
    """The sniffer's "Detected row as Header" quotes a data row; the summary does not."""
    exc = _duckdb_error(
        f"SELECT * FROM read_csv('{people_csv}', column_names=['a', 'b', 'c', 'd'], skip=1)"
    )
    assert SECRET in str(exc)  # DuckDB's own message quotes the row

    summary = data_free_error_summary(exc)

    assert SECRET not in summary
    assert str(people_csv) not in summary
    assert "pod owner must fix" in summary


def test_conversion_error_keeps_column_and_type_only(people_csv: Path) -> None:
    """A value that does not convert is named by column, line and type, never by value."""
    exc = _duckdb_error(f"SELECT * FROM read_csv('{people_csv}', types={{'city': 'INTEGER'}})")

    summary = csv_error_summary(exc)

    assert summary == (
        'column "city" has a value at line 2 of its data file that cannot be converted to INTEGER'
    )
    assert "Leeds" in str(exc)


def test_other_errors_are_the_plain_summary() -> None:
    """An error that is not about a CSV file keeps DuckDB's own words."""
    exc = _duckdb_error("SELECT no_such_column FROM (SELECT 1 AS a)")

    assert csv_error_summary(exc) is None
    assert data_free_error_summary(exc) == duckdb_error_summary(exc)
    assert "no_such_column" in data_free_error_summary(exc)
