"""SQLEngine: SQL over a pod's CSV, DataFrame and other sources, checked against pandas."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
    ForbiddenQueryError,
    QueryExecutionError,
)
from podium.data.sources.base import DataSource
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.excel_source import ExcelSource
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sources.parquet_source import ParquetSource
from podium.data.sql import SQLEngine

CENSUS = "census-income"


@pytest.fixture(scope="module")
def census_frame(census_csv: Path) -> pd.DataFrame:
    """The census data as pandas reads it, for independent expectations."""
    return pd.read_csv(census_csv)


@pytest.fixture(scope="module")
def engine(census_csv: Path) -> Iterator[SQLEngine]:
    """An engine over the census CSV with ``fnlwgt`` ignored (shared: tests only read)."""
    with SQLEngine({CENSUS: CSVSource(census_csv, ignore_cols=["fnlwgt"])}) as sql_engine:
        yield sql_engine


class CountingSource(DataSource):
    """A source that is neither a file DuckDB scans nor a frame: it must be loaded."""

    kind = "CountingSource"

    def __init__(self, data: pd.DataFrame, *, fail_once: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.data = data
        self.reads = 0
        self.fail_once = fail_once

    def _raw_columns(self) -> list[str]:
        return list(self.data.columns)

    def _raw_record_count(self) -> int:
        return len(self.data)

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        self.reads += 1
        for start in range(0, len(self.data), batch_rows):
            if start and self.fail_once:
                self.fail_once = False
                raise DataSourceReadError("CountingSource: the disk went away")
            yield self.data.iloc[start : start + batch_rows]


# -- queries over the census CSV -------------------------------------------------------------


def test_count_matches_pandas(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """``SELECT COUNT(*)`` over the CSV counts every record."""
    result = engine.query(f'SELECT COUNT(*) AS n FROM "{CENSUS}"')

    assert result["n"].tolist() == [len(census_frame)]


def test_group_by_aggregates_match_pandas(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """GROUP BY counts, means and sums equal pandas' on the same file."""
    result = engine.query(
        f'SELECT education, COUNT(*) AS n, AVG(age) AS mean_age, SUM("hours-per-week") AS hours '
        f'FROM "{CENSUS}" GROUP BY education ORDER BY education'
    )

    grouped = census_frame.groupby("education").agg(
        n=("age", "size"), mean_age=("age", "mean"), hours=("hours-per-week", "sum")
    )
    assert result["education"].tolist() == grouped.index.tolist()
    assert result["n"].tolist() == grouped["n"].tolist()
    np.testing.assert_allclose(result["mean_age"].to_numpy(float), grouped["mean_age"].to_numpy())
    assert result["hours"].tolist() == grouped["hours"].tolist()


def test_where_filter_matches_pandas(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """A WHERE clause over text and numbers selects the rows pandas selects."""
    result = engine.query(
        f"SELECT COUNT(*) AS n FROM \"{CENSUS}\" WHERE gender = 'Female' AND age BETWEEN 30 AND 40"
    )

    expected = census_frame[
        (census_frame["gender"] == "Female") & census_frame["age"].between(30, 40)
    ]
    assert result["n"].tolist() == [len(expected)]


def test_backticks_and_double_quotes_read_the_same_table(engine: SQLEngine) -> None:
    """Bitfount's backtick form gives the same answer as standard quoting."""
    quoted = engine.query(f'SELECT race, COUNT(*) AS n FROM "{CENSUS}" GROUP BY race ORDER BY race')
    ticked = engine.query(f"SELECT race, COUNT(*) AS n FROM `{CENSUS}` GROUP BY race ORDER BY race")

    pd.testing.assert_frame_equal(quoted, ticked)


def test_cte_query_matches_pandas(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """A query through a CTE reads the source through the CTE."""
    result = engine.query(
        f'WITH older AS (SELECT * FROM "{CENSUS}" WHERE age >= 60) '
        "SELECT TARGET, COUNT(*) AS n FROM older GROUP BY TARGET ORDER BY TARGET"
    )

    expected = census_frame[census_frame["age"] >= 60].groupby("TARGET").size()
    assert result["TARGET"].tolist() == expected.index.tolist()
    assert result["n"].tolist() == expected.tolist()


def test_ignored_column_is_hidden(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """``SELECT *`` lacks the ignored column, and naming it fails like any unknown column."""
    everything = engine.query(f'SELECT * FROM "{CENSUS}" LIMIT 3')

    assert "fnlwgt" in census_frame.columns
    assert list(everything.columns) == [c for c in census_frame.columns if c != "fnlwgt"]
    with pytest.raises(QueryExecutionError, match='"fnlwgt" not found'):
        engine.query(f'SELECT SUM(fnlwgt) FROM "{CENSUS}"')


def test_csv_modifiers_are_applied(census_csv: Path, census_frame: pd.DataFrame) -> None:
    """A column's prefix and suffix are added to every value a query sees."""
    source = CSVSource(census_csv, modifiers={"race": {"prefix": "race:", "suffix": "!"}})
    with SQLEngine({CENSUS: source}) as sql_engine:
        result = sql_engine.query(f'SELECT DISTINCT race FROM "{CENSUS}" ORDER BY race')

    expected = sorted("race:" + value + "!" for value in census_frame["race"].unique())
    assert result["race"].tolist() == expected


def test_unknown_column_error_names_the_statement(engine: SQLEngine) -> None:
    """A binder error becomes QueryExecutionError with DuckDB's message and the statement."""
    with pytest.raises(QueryExecutionError) as caught:
        engine.query(f'SELECT no_such_column FROM "{CENSUS}"')

    message = str(caught.value)
    assert 'Referenced column "no_such_column" not found' in message
    assert f'Statement: SELECT "no_such_column" FROM "{CENSUS}"' in message
    assert "LINE 1" not in message


def test_conversion_error_names_the_column_not_the_line(
    engine: SQLEngine, census_frame: pd.DataFrame
) -> None:
    """A value that cannot be converted names its column and type, never the raw line."""
    with pytest.raises(QueryExecutionError) as caught:
        engine.query(f'SELECT CAST(workclass AS INTEGER) FROM "{CENSUS}"')

    message = str(caught.value)
    assert 'column "workclass" has a value at line 2' in message
    assert "cannot be converted to INTEGER" in message
    first = census_frame.iloc[0]
    assert str(first["workclass"]) not in message
    assert str(first["fnlwgt"]) not in message  # the ignored column of the raw line


# -- errors never quote the raw data -------------------------------------------------------------

SECRET_VALUE = "TOPSECRET-4417"


@pytest.fixture
def ragged_csv(tmp_path: Path) -> Path:
    """3,000 good rows, then a line with an extra field past DuckDB's sniffing sample."""
    rows = ["id,city,secret"] + [f"{i},Leeds,s{i}" for i in range(3000)]
    rows += [f"3000,York,{SECRET_VALUE},extra", "3001,Hull,s3001"]
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("call", ["query", "query_arrow", "iter_query"])
def test_csv_parse_error_quotes_no_data(
    ragged_csv: Path, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    """A bad CSV line is reported by number; its text (an ignored column's too) stays out."""
    with SQLEngine({"t": CSVSource(ragged_csv, ignore_cols=["secret"])}) as sql_engine:
        run = getattr(sql_engine, call)
        with pytest.raises((QueryExecutionError, DataSourceReadError)) as caught:
            list(run("SELECT city FROM t WHERE id > 2990"))

    message = str(caught.value)
    assert "line 3002" in message
    assert "expected 3 columns, found 4" in message
    assert "pod owner must fix" in message
    for raw in (SECRET_VALUE, "York", "3000,", str(ragged_csv)):
        assert raw not in message
    assert SECRET_VALUE in caplog.text  # the owner can still find the line


def test_csv_sniffing_error_quotes_no_data(tmp_path: Path) -> None:
    """A file DuckDB cannot even sniff is refused without quoting a line of it."""
    path = tmp_path / "broken.csv"
    path.write_text(f'id,city,secret\n1,"Leeds,{SECRET_VALUE}\n2,b"",c,,,d\n')
    with (
        SQLEngine({"t": CSVSource(path, ignore_cols=["secret"])}) as sql_engine,
        pytest.raises(DataSourceReadError) as caught,
    ):
        sql_engine.query("SELECT COUNT(*) AS n FROM t")

    message = str(caught.value)
    assert 'SQL table "t" cannot be read' in message
    assert SECRET_VALUE not in message
    assert "Leeds" not in message


# -- frames, joins and other sources ------------------------------------------------------------


def test_frame_source_respects_ignore_cols_and_modifiers() -> None:
    """A DataFrame table shows only kept columns, modified, with missing values kept missing."""
    frame = pd.DataFrame({"id": [1, 2, 3], "image": ["a.png", None, "c.png"], "pin": [11, 22, 33]})
    source = DataFrameSource(frame, ignore_cols=["pin"], modifiers={"image": {"prefix": "/img/"}})
    with SQLEngine({"scans": source}) as sql_engine:
        result = sql_engine.query("SELECT * FROM scans ORDER BY id")
        with pytest.raises(QueryExecutionError, match="pin"):
            sql_engine.query("SELECT pin FROM scans")

    assert list(result.columns) == ["id", "image"]
    assert result["image"].tolist()[0] == "/img/a.png"
    assert pd.isna(result["image"].tolist()[1])
    assert frame["image"].tolist()[0] == "a.png"  # the caller's frame is untouched


def test_join_of_csv_and_frame_matches_pandas(census_csv: Path, census_frame: pd.DataFrame) -> None:
    """A join across a CSV source and a DataFrame source equals pandas' merge."""
    levels = pd.DataFrame({"education": ["Bachelors", "Masters", "Doctorate"], "level": [1, 2, 3]})
    sources = {CENSUS: CSVSource(census_csv), "levels": DataFrameSource(levels)}
    with SQLEngine(sources) as sql_engine:
        result = sql_engine.query(
            f'SELECT l.level, COUNT(*) AS n, AVG(c.age) AS mean_age FROM "{CENSUS}" AS c '
            "JOIN levels AS l ON c.education = l.education GROUP BY l.level ORDER BY l.level"
        )

    merged = (
        census_frame.merge(levels, on="education").groupby("level")["age"].agg(["size", "mean"])
    )
    assert result["level"].tolist() == merged.index.tolist()
    assert result["n"].tolist() == merged["size"].tolist()
    np.testing.assert_allclose(result["mean_age"].to_numpy(float), merged["mean"].to_numpy())


def test_join_of_two_frame_sources() -> None:
    """Two DataFrame tables join by key."""
    left = pd.DataFrame({"k": [1, 2, 3], "a": ["x", "y", "z"]})
    right = pd.DataFrame({"k": [2, 3, 4], "b": [20.0, 30.0, 40.0]})
    sources = {"left": DataFrameSource(left), "right": DataFrameSource(right)}
    with SQLEngine(sources) as sql_engine:
        result = sql_engine.query("SELECT a, b FROM `left` JOIN `right` USING (k) ORDER BY k")

    expected = left.merge(right, on="k")[["a", "b"]]
    assert result["a"].tolist() == expected["a"].tolist()
    assert result["b"].tolist() == expected["b"].tolist()


def test_parquet_folder_is_one_table(tmp_path: Path, census_frame: pd.DataFrame) -> None:
    """A folder of Parquet files is queried in place as one table, ignore_cols applied."""
    folder = tmp_path / "shards"
    folder.mkdir()
    rows = census_frame.iloc[:6000]
    rows.iloc[:2500].to_parquet(folder / "a.parquet")
    rows.iloc[2500:].to_parquet(folder / "b.parquet")
    source = ParquetSource(folder, ignore_cols=["fnlwgt"])
    with SQLEngine({"shards": source}) as sql_engine:
        result = sql_engine.query(
            "SELECT gender, COUNT(*) AS n, SUM(age) AS ages FROM shards GROUP BY gender "
            "ORDER BY gender"
        )
        with pytest.raises(QueryExecutionError, match="fnlwgt"):
            sql_engine.query("SELECT fnlwgt FROM shards")

    grouped = rows.groupby("gender")["age"].agg(["size", "sum"])
    assert result["n"].tolist() == grouped["size"].tolist()
    assert result["ages"].tolist() == grouped["sum"].tolist()


def test_excel_source_is_loaded_into_a_table(tmp_path: Path) -> None:
    """An Excel sheet (not scannable by DuckDB here) is queried after loading."""
    path = tmp_path / "sites.xlsx"
    sheet = pd.DataFrame({"site": ["a", "b", "c", "d"], "beds": [10, 20, 30, 40]})
    sheet.to_excel(path, index=False)
    with SQLEngine({"sites": ExcelSource(path, batch_rows=3)}) as sql_engine:
        result = sql_engine.query("SELECT SUM(beds) AS beds, COUNT(*) AS n FROM sites")

    assert result["beds"].tolist() == [sheet["beds"].sum()]
    assert result["n"].tolist() == [len(sheet)]


def test_other_sources_are_loaded_once_in_batches() -> None:
    """A source DuckDB cannot scan is copied in batch by batch, on first use only."""
    data = pd.DataFrame({"g": list("abcab" * 5), "x": range(25), "hidden": range(25)})
    source = CountingSource(data, ignore_cols=["hidden"], batch_rows=4)
    with SQLEngine({"things": source}) as sql_engine:
        first = sql_engine.query("SELECT g, SUM(x) AS s FROM things GROUP BY g ORDER BY g")
        columns = sql_engine.query("SELECT * FROM things LIMIT 1").columns.tolist()

    expected = data.groupby("g")["x"].sum()
    assert first["s"].tolist() == expected.tolist()
    assert columns == ["g", "x"]
    assert source.reads == 1


def test_a_load_that_fails_half_way_is_retried_whole() -> None:
    """A source that fails while loading leaves no partial table; the next query reloads it."""
    data = pd.DataFrame({"x": range(10)})
    source = CountingSource(data, fail_once=True, batch_rows=3)
    with SQLEngine({"things": source}) as sql_engine:
        with pytest.raises(DataSourceReadError, match='SQL table "things" cannot be read'):
            sql_engine.query("SELECT COUNT(*) AS n FROM things")
        result = sql_engine.query("SELECT COUNT(*) AS n, SUM(x) AS s FROM things")

    assert result["n"].tolist() == [len(data)]
    assert result["s"].tolist() == [data["x"].sum()]
    assert source.reads == 2


def test_other_sources_are_not_loaded_unless_queried() -> None:
    """A query that does not read a source never loads it."""
    source = CountingSource(pd.DataFrame({"x": [1]}))
    frames = {"things": source, "small": DataFrameSource(pd.DataFrame({"y": [5]}))}
    with SQLEngine(frames) as sql_engine:
        result = sql_engine.query("SELECT y FROM small")

    assert result["y"].tolist() == [5]
    assert source.reads == 0


def test_empty_other_source_is_an_empty_table() -> None:
    """A source with no rows is a table with its columns and no rows."""
    source = CountingSource(pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": []}))
    with SQLEngine({"empty": source}) as sql_engine:
        result = sql_engine.query("SELECT COUNT(*) AS n, COUNT(b) AS nb FROM empty")
        columns = sql_engine.query("SELECT * FROM empty").columns.tolist()

    assert result["n"].tolist() == [0]
    assert columns == ["a", "b"]


# -- result forms -------------------------------------------------------------------------------


def test_query_arrow_matches_query(engine: SQLEngine) -> None:
    """The Arrow result holds the same rows as the DataFrame result."""
    sql = f'SELECT race, COUNT(*) AS n FROM "{CENSUS}" GROUP BY race ORDER BY race'

    table = engine.query_arrow(sql)
    frame = engine.query(sql)

    assert isinstance(table, pa.Table)
    assert table.column_names == ["race", "n"]
    assert table.column("race").to_pylist() == frame["race"].tolist()
    assert table.column("n").to_pylist() == frame["n"].tolist()


def test_iter_query_streams_bounded_batches(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """iter_query yields frames of at most batch_rows rows that add up to the result."""
    batches = list(engine.iter_query(f'SELECT age FROM "{CENSUS}"', batch_rows=5_000))

    assert len(batches) >= len(census_frame) // 5_000
    assert all(len(batch) <= 5_000 for batch in batches)
    total = pd.concat(batches, ignore_index=True)
    assert sorted(total["age"].tolist()) == sorted(census_frame["age"].tolist())
    assert {str(batch["age"].dtype) for batch in batches} == {str(total["age"].dtype)}


def test_iter_query_refuses_and_binds_before_iteration(engine: SQLEngine) -> None:
    """A forbidden or unbindable query raises at the call, not at the first batch."""
    with pytest.raises(ForbiddenQueryError):
        engine.iter_query("DROP TABLE x")
    with pytest.raises(QueryExecutionError, match="nope"):
        engine.iter_query(f'SELECT nope FROM "{CENSUS}"')


def test_iter_query_reports_errors_raised_while_streaming(engine: SQLEngine) -> None:
    """A failure while rows stream out is a QueryExecutionError naming the statement."""
    with pytest.raises(QueryExecutionError, match="Statement: SELECT CAST"):
        list(engine.iter_query(f'SELECT CAST(workclass AS INTEGER) FROM "{CENSUS}"'))


def test_iter_query_rejects_a_batch_size_below_one(engine: SQLEngine) -> None:
    """batch_rows must be positive."""
    with pytest.raises(ConfigValidationError, match="batch_rows"):
        engine.iter_query("SELECT 1", batch_rows=0)


def test_streams_are_independent(engine: SQLEngine) -> None:
    """Two open streams and a query in between do not disturb each other."""
    first = engine.iter_query(f'SELECT age FROM "{CENSUS}" ORDER BY age', batch_rows=1000)
    second = engine.iter_query(f'SELECT age FROM "{CENSUS}" ORDER BY age DESC', batch_rows=1000)

    head_first = next(first)
    count = engine.query(f'SELECT COUNT(*) AS n FROM "{CENSUS}"')
    head_second = next(second)
    rest_first = pd.concat([head_first, *first], ignore_index=True)

    assert head_first["age"].iloc[0] == rest_first["age"].min()
    assert head_second["age"].iloc[0] == rest_first["age"].max()
    assert len(rest_first) == count["n"].iloc[0]


def test_queries_from_several_threads(engine: SQLEngine, census_frame: pd.DataFrame) -> None:
    """Queries from parallel threads each get the right answer."""
    results: dict[int, int] = {}

    def run(age: int) -> None:
        frame = engine.query(f'SELECT COUNT(*) AS n FROM "{CENSUS}" WHERE age = {age}')
        results[age] = int(frame["n"].iloc[0])

    threads = [threading.Thread(target=run, args=(age,)) for age in (25, 35, 45, 55)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = census_frame["age"].value_counts()
    assert results == {age: int(expected[age]) for age in (25, 35, 45, 55)}


# -- construction and lifecycle --------------------------------------------------------------------


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """A missing file is only noticed by the first query."""
    missing = tmp_path / "missing.csv"
    sql_engine = SQLEngine({"gone": CSVSource(missing)})

    assert sql_engine.tables == ["gone"]
    with pytest.raises(DataSourceNotFoundError, match='SQL table "gone" cannot be read'):
        sql_engine.query("SELECT * FROM gone")
    sql_engine.close()


def test_source_errors_keep_the_owners_details_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing source names only its table to the caller; its own message goes to the log."""
    missing = tmp_path / "private" / "missing.csv"
    with (
        SQLEngine({"gone": CSVSource(missing)}) as sql_engine,
        pytest.raises(DataSourceNotFoundError) as caught,
    ):
        sql_engine.query("SELECT * FROM gone")

    assert "private" not in str(caught.value)
    assert "the pod owner must fix the source" in str(caught.value)
    assert str(missing) in caplog.text


def test_tables_are_the_source_names_in_order() -> None:
    """``tables`` lists the datasource names as given."""
    frame = pd.DataFrame({"a": [1]})
    sources = {"zeta": DataFrameSource(frame), "alpha": DataFrameSource(frame)}

    assert SQLEngine(sources).tables == ["zeta", "alpha"]


def test_closed_engine_refuses_queries() -> None:
    """After close(), a query is an error that says to make a new engine."""
    sql_engine = SQLEngine({"t": DataFrameSource(pd.DataFrame({"a": [1]}))})
    assert sql_engine.query("SELECT a FROM t")["a"].tolist() == [1]
    sql_engine.close()

    with pytest.raises(QueryExecutionError, match="closed"):
        sql_engine.query("SELECT a FROM t")


def test_memory_limit_and_threads_are_applied(census_csv: Path) -> None:
    """The DuckDB connection runs with the given memory limit and thread count."""
    with SQLEngine({CENSUS: CSVSource(census_csv)}, memory_limit="256MB", threads=1) as sql_engine:
        con = sql_engine._connection()
        settings = con.sql(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        ).fetchall()

    assert settings[0][0] == 1
    assert settings[0][1] in {"256.0 MiB", "244.1 MiB"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threads": 0}, "threads must be at least 1"),
        ({"memory_limit": "lots"}, "memory_limit='lots'"),
    ],
)
def test_bad_engine_settings_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    """A bad memory limit or thread count raises ConfigValidationError."""
    with pytest.raises(ConfigValidationError, match=match):
        SQLEngine({"t": DataFrameSource(pd.DataFrame({"a": [1]}))}, **kwargs).query(  # type: ignore[arg-type]
            "SELECT 1"
        )


def test_empty_source_name_is_a_config_error() -> None:
    """Every table needs a name."""
    with pytest.raises(ConfigValidationError, match="name is empty"):
        SQLEngine({" ": DataFrameSource(pd.DataFrame({"a": [1]}))})
