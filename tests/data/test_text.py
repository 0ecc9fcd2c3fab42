"""The data layer's shared text helpers: one-line excerpts and SQL quoting."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.data._text import one_line, quote_identifier, sql_string_literal


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory DuckDB connection for the round trips."""
    with duckdb.connect() as connection:
        yield connection


def test_one_line_flattens_whitespace() -> None:
    """Newlines, tabs and runs of spaces become single spaces; the ends are trimmed."""
    assert one_line("  SELECT a,\n\tb   FROM t \n") == "SELECT a, b FROM t"


def test_one_line_cuts_long_text_with_an_ellipsis() -> None:
    """A text over the limit is cut to exactly the limit, ending in ``...``."""
    assert one_line("abcdefghij", 8) == "abcde..."
    assert one_line("abcdefgh", 8) == "abcdefgh"


@given(text=st.text(), limit=st.integers(min_value=3, max_value=400))
def test_one_line_is_never_longer_than_the_limit(text: str, limit: int) -> None:
    """Whatever the text, the excerpt has no line break and fits the limit."""
    shown = one_line(text, limit)

    assert len(shown) <= limit
    assert "\n" not in shown


@given(name=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1))
def test_quote_identifier_round_trips_through_duckdb(
    con: duckdb.DuckDBPyConnection, name: str
) -> None:
    """Any name, quotes included, comes back from DuckDB as the column name."""
    row = con.execute(f"SELECT 1 AS {quote_identifier(name)}").description

    assert row is not None
    assert row[0][0] == name


@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")))
def test_sql_string_literal_round_trips_through_duckdb(
    con: duckdb.DuckDBPyConnection, text: str
) -> None:
    """Any text, single quotes included, comes back from DuckDB unchanged."""
    value = con.execute(f"SELECT {sql_string_literal(text)}").fetchone()

    assert value == (text,)
