"""SQL and schemas over CSV files whose column types DuckDB guesses from the first rows only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from podium.data.schema import SchemaBuilder, infer_schema
from podium.data.sources.csv_source import CSVSource
from podium.data.sql import SQLEngine

ROWS = 30_000  # more than DuckDB's 20,480-row sample, so the late value is not sniffed


@pytest.fixture
def late_text_csv(tmp_path: Path) -> Path:
    """A CSV whose `code` column is whole numbers except for one text value near the end."""
    codes = [str(i % 97) for i in range(ROWS)]
    codes[-3] = "X-17"
    frame = pd.DataFrame({"id": range(ROWS), "code": codes, "group": ["a", "b"] * (ROWS // 2)})
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    return path


def test_query_reads_a_late_text_value_correctly(late_text_csv: Path) -> None:
    """A query that meets a value the guessed type cannot hold is re-run on checked types."""
    with SQLEngine({"t": CSVSource(late_text_csv)}) as engine:
        result = engine.query("SELECT code FROM t WHERE id >= 29990 ORDER BY id")

    expected = [str(i % 97) for i in range(29_990, ROWS)]
    expected[-3] = "X-17"
    assert list(result["code"]) == expected


def test_queries_before_and_after_the_fallback_agree(late_text_csv: Path) -> None:
    """Results of other columns are the same before and after the types were checked."""
    sql = 'SELECT "group", COUNT(*) AS n, SUM(id) AS s FROM t GROUP BY "group" ORDER BY "group"'
    with SQLEngine({"t": CSVSource(late_text_csv)}) as engine:
        before = engine.query(sql)
        engine.query("SELECT COUNT(DISTINCT code) AS n FROM t")
        after = engine.query(sql)

    pd.testing.assert_frame_equal(before, after)
    assert list(before["n"]) == [ROWS // 2, ROWS // 2]
    assert int(before["s"].sum()) == sum(range(ROWS))


def test_streamed_query_uses_checked_types(late_text_csv: Path) -> None:
    """iter_query streams the text value too: streams never start on guessed types."""
    with SQLEngine({"t": CSVSource(late_text_csv)}) as engine:
        frames = list(engine.iter_query("SELECT code FROM t", batch_rows=4096))

    codes = pd.concat(frames, ignore_index=True)["code"]
    assert len(codes) == ROWS
    assert codes.iloc[-3] == "X-17"
    assert max(len(f) for f in frames) <= 4096


def test_schema_of_a_late_text_value_is_text(late_text_csv: Path) -> None:
    """The full schema sees the late text value: the column is a string, as batches say."""
    source = CSVSource(late_text_csv)
    schema = infer_schema(source, name="late")

    builder = SchemaBuilder("late", columns=source.column_names())
    for batch in source.iter_batches(batch_rows=7_000):
        builder.update(batch)
    assert schema.column("code").dtype == "string"
    assert schema.num_records == ROWS
    assert schema == builder.finish()
