"""The DuckDB helpers shared by the file sources and the SQL engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import DataSourceReadError
from podium.data.sources._duckdb_file import (
    arrow_to_frame,
    duckdb_error_summary,
    quote_identifier,
    restricted_connection,
    sql_string_literal,
)
from podium.data.sources.csv_source import CSVSource


@pytest.fixture
def allowed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "allowed.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    return path


def test_restricted_connection_reads_its_own_file(allowed_csv: Path) -> None:
    """A file named in allowed_paths can be scanned."""
    con = restricted_connection([allowed_csv])
    try:
        rows = con.sql(f"SELECT SUM(a) FROM read_csv({sql_string_literal(str(allowed_csv))})")
        assert rows.fetchall() == [(3,)]
    finally:
        con.close()


def test_restricted_connection_refuses_other_files(allowed_csv: Path) -> None:
    """A file outside the allowed paths (here /etc/hostname) cannot be read."""
    con = restricted_connection([allowed_csv])
    try:
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            con.sql("SELECT * FROM read_csv('/etc/hostname')").fetchall()
    finally:
        con.close()


def test_restricted_connection_refuses_a_sibling_file(allowed_csv: Path) -> None:
    """Another file in the same folder as an allowed one is still refused."""
    sibling = allowed_csv.with_name("secret.csv")
    sibling.write_text("s\n1\n")
    con = restricted_connection([allowed_csv])
    try:
        with pytest.raises(duckdb.PermissionException):
            con.sql(f"SELECT * FROM read_csv({sql_string_literal(str(sibling))})").fetchall()
    finally:
        con.close()


def test_restricted_connection_refuses_writing_files(allowed_csv: Path, tmp_path: Path) -> None:
    """COPY ... TO a file is refused, so a query cannot write to the pod's disk."""
    target = tmp_path / "out.csv"
    con = restricted_connection([allowed_csv])
    try:
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY (SELECT 1) TO {sql_string_literal(str(target))}")
    finally:
        con.close()
    assert not target.exists()


def test_restricted_connection_does_not_see_python_variables(allowed_csv: Path) -> None:
    """A table name never resolves to a DataFrame in the caller's scope."""
    secret = pd.DataFrame({"password": ["hunter2"]})
    con = restricted_connection([allowed_csv])
    try:
        with pytest.raises(duckdb.CatalogException, match="secret"):
            con.sql("SELECT * FROM secret").fetchall()
    finally:
        con.close()
    assert len(secret) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access=true",
        "SET allowed_paths=['/etc/hostname']",
        "SET autoload_known_extensions=true",
        "RESET lock_configuration",
    ],
)
def test_restricted_connection_configuration_is_locked(allowed_csv: Path, statement: str) -> None:
    """No statement can loosen the restrictions afterwards."""
    con = restricted_connection([allowed_csv])
    try:
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute(statement)
    finally:
        con.close()


def test_restricted_connection_with_no_paths_reads_nothing(allowed_csv: Path) -> None:
    """With an empty list no file at all can be read."""
    con = restricted_connection([])
    try:
        with pytest.raises(duckdb.PermissionException):
            con.sql(f"SELECT * FROM read_csv({sql_string_literal(str(allowed_csv))})").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def plain_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")))
def test_sql_string_literal_round_trips(plain_duckdb: duckdb.DuckDBPyConnection, text: str) -> None:
    """Any text (quotes included) quoted as a literal comes back from DuckDB unchanged."""
    assert plain_duckdb.sql(f"SELECT {sql_string_literal(text)}").fetchall() == [(text,)]


@settings(max_examples=50, deadline=None)
@given(name=st.text(min_size=1, alphabet=st.characters(codec="utf-8", exclude_characters="\x00")))
def test_quote_identifier_round_trips(plain_duckdb: duckdb.DuckDBPyConnection, name: str) -> None:
    """Any column name quoted as an identifier names that column in DuckDB."""
    assert plain_duckdb.sql(f"SELECT 1 AS {quote_identifier(name)}").columns == [name]


def test_arrow_to_frame_dtypes_do_not_depend_on_missing_values() -> None:
    """A batch with missing values has the same dtypes as one without."""
    full = pa.record_batch(
        {"i": pa.array([1, 2], pa.int64()), "b": pa.array([True, False]), "s": ["x", "y"]}
    )
    gappy = pa.record_batch(
        {"i": pa.array([None, 2], pa.int64()), "b": pa.array([None, False]), "s": [None, "y"]}
    )

    assert arrow_to_frame(full).dtypes.to_dict() == arrow_to_frame(gappy).dtypes.to_dict()
    assert str(arrow_to_frame(gappy)["i"].dtype) == "Int64"


def test_arrow_to_frame_turns_decimals_into_floats() -> None:
    """DuckDB DECIMAL (and HUGEINT) columns arrive as float64, not Python Decimal objects."""
    con = duckdb.connect()
    try:
        reader = con.sql("SELECT 1.25::DECIMAL(5,2) AS d, 7::HUGEINT AS h").to_arrow_reader(10)
        assert reader is not None
        frame = arrow_to_frame(reader.read_next_batch())
    finally:
        con.close()

    assert frame.dtypes.to_dict() == {"d": "float64", "h": "float64"}
    assert frame.iloc[0].tolist() == [1.25, 7.0]


def test_arrow_to_frame_dates_become_datetimes() -> None:
    """DATE columns become datetime64, not Python date objects."""
    batch = pa.record_batch({"d": pa.array([pd.Timestamp("2020-01-02").date()], pa.date32())})

    frame = arrow_to_frame(batch)

    assert pd.api.types.is_datetime64_any_dtype(frame["d"])
    assert frame["d"].iloc[0] == pd.Timestamp("2020-01-02")


def test_error_summary_drops_duckdb_advice() -> None:
    """The summary keeps DuckDB's reason and drops its option advice and class prefix."""
    exc = duckdb.InvalidInputException(
        "Invalid Input Error: CSV Error on Line: 3\nExpected 2 columns\n\n"
        "Possible fixes:\n* Enable null padding (null_padding=true)"
    )

    summary = duckdb_error_summary(exc)

    assert summary == "CSV Error on Line: 3 Expected 2 columns"


def test_permission_denied_from_duckdb_is_a_read_error(tmp_path: Path) -> None:
    """DuckDB's 'Permission denied' becomes a DataSourceReadError naming the file."""
    source = CSVSource(tmp_path / "locked.csv")
    exc = duckdb.IOException(
        f'IO Error: Cannot open file "{tmp_path / "locked.csv"}": Permission denied'
    )

    error = source._read_error(exc)

    assert isinstance(error, DataSourceReadError)
    assert "Permission denied" in str(error)
    assert "locked.csv" in str(error)
