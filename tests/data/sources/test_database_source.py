"""DatabaseSource: SQLite unit tests and PostgreSQL integration tests."""

from __future__ import annotations

import random
import sqlite3
import sys
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import cast

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.core.errors import (
    ConfigValidationError,
    DataSourceError,
    DataSourceNotFoundError,
    DataSourceReadError,
    ForbiddenQueryError,
    QueryError,
    QueryExecutionError,
)
from podium.data.sources.base import hash_file
from podium.data.sources.database_source import DatabaseSource

SECRET = "s3cret-Pa55"


@pytest.fixture
def people() -> pd.DataFrame:
    """Ten seeded rows with an int, a text and a float column."""
    rng = random.Random(7)
    return pd.DataFrame(
        {
            "id": list(range(10)),
            "name": [f"p{rng.randint(100, 999)}" for _ in range(10)],
            "score": [round(rng.uniform(0, 100), 2) for _ in range(10)],
        }
    )


@pytest.fixture
def sqlite_db(tmp_path: Path, people: pd.DataFrame) -> Path:
    """A SQLite file with a ``people`` table and a table whose name needs quoting."""
    path = tmp_path / "clinic.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (id INTEGER, name TEXT, score REAL)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?)", people.itertuples(index=False, name=None)
        )
        conn.execute('CREATE TABLE "Odd ""Name""" (x INTEGER)')
        conn.execute('INSERT INTO "Odd ""Name""" VALUES (42)')
    conn.close()
    return path


@pytest.fixture
def open_source(sqlite_db: Path) -> Iterator[Callable[..., DatabaseSource]]:
    """Build sources on the SQLite file and close them all after the test."""
    made: list[DatabaseSource] = []

    def make(**kwargs: object) -> DatabaseSource:
        source = DatabaseSource(f"sqlite:///{sqlite_db}", **kwargs)  # type: ignore[arg-type]
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "neither"),
        ({"table": "people", "query": "SELECT 1"}, "both"),
        ({"query": "  ; "}, "query is empty"),
        ({"query": "SELECT 1", "db_schema": "main"}, "db_schema applies only with table"),
    ],
)
def test_table_and_query_are_exclusive(kwargs: dict[str, str], fragment: str) -> None:
    """Exactly one of table and query must be given, and db_schema only with a table."""
    with pytest.raises(ConfigValidationError, match=fragment):
        DatabaseSource("sqlite:///x.db", **kwargs)  # type: ignore[arg-type]


def test_invalid_url_is_a_config_error_without_the_url() -> None:
    """A URL SQLAlchemy cannot parse is a config error that does not echo the secret."""
    with pytest.raises(ConfigValidationError, match=r"datasource_args\.url") as info:
        DatabaseSource(f"not a url {SECRET}", table="t")
    assert SECRET not in str(info.value)


def test_unknown_dialect_is_a_config_error() -> None:
    """A dialect SQLAlchemy does not know is reported on first use, password hidden."""
    source = DatabaseSource(f"nosuchdb://u:{SECRET}@h/db", table="t")
    with pytest.raises(ConfigValidationError, match="nosuchdb") as info:
        source.relation_sql()
    assert SECRET not in str(info.value)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """Building a source on a missing SQLite file neither fails nor creates the file."""
    path = tmp_path / "absent.db"
    source = DatabaseSource(f"sqlite:///{path}", table="t")
    assert not path.exists()
    with pytest.raises(DataSourceNotFoundError, match=r"absent\.db"):
        source.record_count()
    assert not path.exists()


def test_password_is_hidden_in_url_key_and_describe() -> None:
    """url_key and describe() mask the password; plain postgresql:// means psycopg 3."""
    source = DatabaseSource(f"postgresql://reader:{SECRET}@db.local:5432/clinic", table="t")
    assert source.url_key == "postgresql+psycopg://reader:***@db.local:5432/clinic"
    assert SECRET not in source.describe()
    assert "***" in source.describe()


def test_url_key_is_equal_for_the_same_database() -> None:
    """Two spellings of the same PostgreSQL database share a url_key; another db does not."""
    plain = DatabaseSource(f"postgresql://u:{SECRET}@h:5432/db", table="a")
    explicit = DatabaseSource("postgresql+psycopg://u:other@h:5432/db", query="SELECT 1")
    other = DatabaseSource("postgresql://u@h:5432/db2", table="a")
    assert plain.url_key == explicit.url_key
    assert plain.url_key != other.url_key


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("postgresql://u@h/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("sqlite:///x.db", "sqlite"),
        ("mysql+pymysql://u@h/db", "mysql"),
        ("mariadb+pymysql://u@h/db", "mysql"),
        ("mssql+pyodbc://u@h/db", "tsql"),
        ("oracle+oracledb://u@h/db", "oracle"),
    ],
)
def test_sql_dialect_names_the_sqlglot_dialect(url: str, dialect: str) -> None:
    """sql_dialect maps SQLAlchemy backends to sqlglot dialect names."""
    assert DatabaseSource(url, table="t").sql_dialect == dialect


def test_relation_sql_quotes_and_qualifies_tables() -> None:
    """relation_sql quotes names that need it and adds db_schema; queries are parenthesised."""
    assert DatabaseSource("postgresql://u@h/db", table="people").relation_sql() == "people"
    qualified = DatabaseSource("postgresql://u@h/db", table="Visits", db_schema="Clinic")
    assert qualified.relation_sql() == '"Clinic"."Visits"'
    query = DatabaseSource("postgresql://u@h/db", query="SELECT 1 AS a;")
    assert query.relation_sql() == "(SELECT * FROM (SELECT 1 AS a) AS podium_owner_query OFFSET 0)"
    mysql = DatabaseSource("mysql://u@h/db", query="SELECT 1 AS a")
    assert mysql.relation_sql() == "(SELECT 1 AS a)"


def test_missing_driver_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing psycopg module is a DataSourceError naming the podium[postgres] extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    source = DatabaseSource(f"postgresql://u:{SECRET}@127.0.0.1:1/db", table="t")
    with pytest.raises(DataSourceError, match=r"pip install 'podium\[postgres\]'") as info:
        source.record_count()
    assert SECRET not in str(info.value)


# -- reading SQLite --------------------------------------------------------------------


def test_table_columns_count_and_rows(
    open_source: Callable[..., DatabaseSource], people: pd.DataFrame
) -> None:
    """A table reads back with its columns, its count and every row in order."""
    source = open_source(table="people")
    assert source.column_names() == ["id", "name", "score"]
    assert source.record_count() == len(people)
    frame = source.to_pandas()
    assert frame["id"].tolist() == people["id"].tolist()
    assert frame["name"].tolist() == people["name"].tolist()
    assert frame["score"].tolist() == pytest.approx(people["score"].tolist())


def test_batches_are_bounded(open_source: Callable[..., DatabaseSource]) -> None:
    """Batches hold at most batch_rows rows and together hold every row once."""
    source = open_source(table="people", batch_rows=3)
    sizes = [len(batch) for batch in source.iter_batches()]
    assert sizes == [3, 3, 3, 1]
    assert [len(b) for b in source.iter_batches(batch_rows=4)] == [4, 4, 2]


def test_query_mode_and_ignore_cols(
    open_source: Callable[..., DatabaseSource], people: pd.DataFrame
) -> None:
    """A query is the data: its columns, its count and its rows, less ignore_cols."""
    source = open_source(
        query="SELECT id, name, score * 2 AS double FROM people WHERE id >= 6;",
        ignore_cols=["name"],
    )
    assert source.column_names() == ["id", "double"]
    assert source.record_count() == 4
    frame = source.to_pandas()
    assert list(frame.columns) == ["id", "double"]
    expected = (people.loc[people["id"] >= 6, "score"] * 2).tolist()
    assert frame["double"].tolist() == pytest.approx(expected)


def test_query_text_with_colons_and_percent_signs(
    open_source: Callable[..., DatabaseSource],
) -> None:
    """Colons and percent signs in a query are SQL text, not bind parameters."""
    source = open_source(query="SELECT '12:30 :x' AS t, 'a%' AS p FROM people WHERE id = 1")
    assert source.to_pandas().to_dict("records") == [{"t": "12:30 :x", "p": "a%"}]


#: String literals that look like bind parameters or driver placeholders, by column.
TRICKY_LITERALS = {"u": "c\\:d", "n": ":name", "p": "50%", "pp": "%%", "s": "%s", "t": "a::b"}
TRICKY_SELECT = ", ".join(f"'{value}' AS {key}" for key, value in TRICKY_LITERALS.items())


def test_query_text_is_sent_exactly(open_source: Callable[..., DatabaseSource]) -> None:
    """``\\:``, ``:name``, ``%`` and ``%%`` in the owner's query reach SQLite unchanged."""
    source = open_source(query=f"SELECT {TRICKY_SELECT} FROM people WHERE id = 1")

    assert source.to_pandas().to_dict("records") == [TRICKY_LITERALS]
    sql = f"SELECT {TRICKY_SELECT}, COUNT(*) AS c FROM {source.relation_sql()} q"
    assert pd.concat(source.run_query(sql)).drop(columns="c").to_dict("records") == [
        TRICKY_LITERALS
    ]


def test_table_that_needs_quoting(open_source: Callable[..., DatabaseSource]) -> None:
    """A table name with spaces and quotes is read through its quoted relation."""
    source = open_source(table='Odd "Name"')
    assert source.to_pandas()["x"].tolist() == [42]


def test_missing_table_lists_the_tables(open_source: Callable[..., DatabaseSource]) -> None:
    """A missing table is DataSourceNotFoundError that lists the tables that exist."""
    source = open_source(table="peopel")
    with pytest.raises(DataSourceNotFoundError, match="peopel") as info:
        source.column_names()
    assert "people" in str(info.value)
    with pytest.raises(DataSourceNotFoundError):
        list(source.iter_batches())


def test_bad_query_names_the_query(open_source: Callable[..., DatabaseSource]) -> None:
    """A query the database rejects is DataSourceReadError that names the query."""
    source = open_source(query="SELECT nosuchcol FROM people")
    with pytest.raises(DataSourceReadError, match="SELECT nosuchcol FROM people"):
        source.record_count()


def test_engine_is_cached_and_disposed(
    open_source: Callable[..., DatabaseSource], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One engine serves every read; close() disposes it and a later read makes a new one."""
    created: list[sa.Engine] = []
    real_create = sa.create_engine

    def counting_create(*args: object, **kwargs: object) -> sa.Engine:
        engine = real_create(*args, **kwargs)  # type: ignore[call-overload]
        created.append(engine)
        return engine  # type: ignore[no-any-return]

    disposed: list[sa.Engine] = []
    real_dispose = sa.Engine.dispose

    def recording_dispose(engine: sa.Engine, close: bool = True) -> None:
        disposed.append(engine)
        real_dispose(engine, close)

    monkeypatch.setattr(sa, "create_engine", counting_create)
    monkeypatch.setattr(sa.Engine, "dispose", recording_dispose)
    source = open_source(table="people")
    with source as entered:
        assert entered is source
        source.record_count()
        source.column_names()
        assert len(created) == 1
        assert disposed == []
    assert disposed == created
    source.record_count()
    assert len(created) == 2


# -- column dtypes on SQLite -----------------------------------------------------------

#: Declared SQLite types and the dtype each gives; the second row of data is all NULL.
DECLARED = {
    "n INTEGER": "Int64",
    "x REAL": "float64",
    "t TEXT": "str",
    "ok BOOLEAN": "boolean",
    "at DATETIME": "datetime64[us]",
    "day DATE": "datetime64[us]",
    "code UUID": "str",  # NUMERIC affinity: typed by its values, all text
    "amount DECIMAL(8, 2)": "float64",  # NUMERIC affinity: integers and reals
    "loose": "Int64",  # no declared type: typed by its values, all integers
}
DECLARED_ROWS = [
    (1, 0.5, "a", 1, "2024-01-02 03:04:05", "2024-01-02", "c0de", 2, 7),
    (None, None, None, None, None, None, None, None, None),
    (3, -2.0, "c", 0, "2024-05-06T07:08:09.5", "2024-05-06", "beef", 2.25, 9),
]


@pytest.fixture
def typed_db(tmp_path: Path) -> Path:
    """A SQLite file with a table ``typed`` of DECLARED columns holding DECLARED_ROWS."""
    path = tmp_path / "typed.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE typed ({', '.join(DECLARED)})")
        conn.executemany(f"INSERT INTO typed VALUES ({', '.join('?' * 9)})", DECLARED_ROWS)
    conn.close()
    return path


@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_sqlite_dtypes_follow_declared_types(typed_db: Path, batch_rows: int) -> None:
    """Every batch, the all-NULL one included, has the dtypes the declared types give."""
    with DatabaseSource(f"sqlite:///{typed_db}", table="typed", batch_rows=batch_rows) as source:
        batches = list(source.iter_batches())
    assert {tuple(map(str, b.dtypes)) for b in batches} == {tuple(DECLARED.values())}
    frame = pd.concat(batches, ignore_index=True)
    assert frame["amount"].tolist()[::2] == [2.0, 2.25]
    assert frame["ok"].tolist()[::2] == [True, False]
    assert frame["at"].tolist() == [
        pd.Timestamp("2024-01-02 03:04:05"),
        pd.NaT,
        pd.Timestamp("2024-05-06 07:08:09.5"),
    ]


@pytest.mark.parametrize("batch_rows", [1, 100])
def test_sqlite_query_columns_follow_the_whole_results_values(
    typed_db: Path, batch_rows: int
) -> None:
    """A query column's dtype comes from all its values, not from the batch at hand."""
    query = """
        SELECT n, amount, n * 1.5 AS scaled, t, at, NULL AS empty,
               CASE WHEN n = 1 THEN t ELSE n END AS mixed
        FROM typed
    """
    with DatabaseSource(f"sqlite:///{typed_db}", query=query, batch_rows=batch_rows) as source:
        batches = list(source.iter_batches())
    # DATETIME values are text to SQLite: without a declared type they read as str.
    expected = ("Int64", "float64", "float64", "str", "str", "object", "object")
    assert {tuple(map(str, b.dtypes)) for b in batches} == {expected}
    frame = pd.concat(batches, ignore_index=True)
    assert frame["scaled"].tolist()[::2] == [1.5, 4.5]
    assert frame["amount"].tolist()[::2] == [2.0, 2.25]
    assert frame["mixed"].tolist() == ["a", None, 3]


def test_sqlite_run_query_keeps_dtypes_across_frames(typed_db: Path) -> None:
    """run_query frames share one dtype per column, a NULL-only frame included."""
    with DatabaseSource(f"sqlite:///{typed_db}", table="typed") as source:
        frames = list(source.run_query("SELECT amount, t FROM typed", batch_rows=1))
    assert [tuple(map(str, f.dtypes)) for f in frames] == [("float64", "str")] * 3


def test_value_not_fitting_its_declared_type_is_an_error(tmp_path: Path) -> None:
    """Text in an INTEGER column (SQLite allows it) is DataSourceReadError naming both."""
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), ("twelve",)])
    conn.close()
    with (
        DatabaseSource(f"sqlite:///{path}", table="t") as source,
        pytest.raises(DataSourceReadError, match=r"'k'.*INTEGER.*'twelve'.*CAST"),
    ):
        list(source.iter_batches())


_SQLITE_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(_SQLITE_VALUES, min_size=1, max_size=6), batch_rows=st.integers(1, 4))
def test_untyped_sqlite_column_has_one_dtype_whatever_the_batches(
    tmp_path: Path, values: list[object], batch_rows: int
) -> None:
    """For any values in an untyped column, every batch has the whole result's dtype."""
    path = tmp_path / f"gen_{uuid.uuid4().hex[:8]}.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE g (i INTEGER, v)")
        conn.executemany("INSERT INTO g VALUES (?, ?)", enumerate(values))
    conn.close()
    with DatabaseSource(f"sqlite:///{path}", query="SELECT v FROM g ORDER BY i") as source:
        batches = list(source.iter_batches(batch_rows))
        (whole,) = list(source.iter_batches(len(values)))
    assert {str(b["v"].dtype) for b in batches} == {str(whole["v"].dtype)}
    combined = pd.concat(batches, ignore_index=True)["v"]
    assert combined.isna().tolist() == [v is None for v in values]


# -- run_query on SQLite ---------------------------------------------------------------


def test_run_query_yields_bounded_frames(open_source: Callable[..., DatabaseSource]) -> None:
    """run_query streams a SELECT's result in frames of at most batch_rows rows."""
    source = open_source(table="people")
    sql = f"SELECT id FROM {source.relation_sql()} ORDER BY id DESC"
    frames = list(source.run_query(sql, batch_rows=4))
    assert [len(f) for f in frames] == [4, 4, 2]
    assert pd.concat(frames)["id"].tolist() == list(range(9, -1, -1))


def test_run_query_empty_result_keeps_columns(
    open_source: Callable[..., DatabaseSource],
) -> None:
    """An empty result is one empty frame that still has the result's columns."""
    source = open_source(table="people")
    frames = list(source.run_query("SELECT id, name FROM people WHERE id < 0"))
    assert len(frames) == 1
    assert frames[0].empty
    assert list(frames[0].columns) == ["id", "name"]


def test_run_query_is_read_only_on_sqlite(
    open_source: Callable[..., DatabaseSource], sqlite_db: Path
) -> None:
    """A write through run_query is refused and leaves the SQLite file untouched."""
    source = open_source(table="people")
    before = hash_file(sqlite_db)
    with pytest.raises(ForbiddenQueryError, match="INSERT INTO people"):
        list(source.run_query("INSERT INTO people VALUES (99, 'x', 1.0)"))
    with pytest.raises(ForbiddenQueryError):
        list(source.run_query("PRAGMA user_version = 5"))
    assert source.record_count() == 10
    assert hash_file(sqlite_db) == before


def test_run_query_sql_error(open_source: Callable[..., DatabaseSource]) -> None:
    """A statement the database rejects is QueryExecutionError naming the statement."""
    source = open_source(table="people")
    with pytest.raises(QueryExecutionError, match="FROM nowhere"):
        list(source.run_query("SELECT * FROM nowhere"))


# -- PostgreSQL ------------------------------------------------------------------------


def _plain_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def pg_table(postgres_engine: sa.Engine) -> Iterator[str]:
    """A uniquely named table of 25 rows in PostgreSQL, dropped after the test."""
    name = f"podium_test_{uuid.uuid4().hex[:10]}"
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {name} (id int, name text, amount numeric(8,2))"))
        conn.execute(
            sa.text(f"INSERT INTO {name} VALUES (:id, :name, :amount)"),
            [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(25)],
        )
    yield name
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


@pytest.fixture
def pg_schema(postgres_engine: sa.Engine) -> Iterator[str]:
    """A uniquely named PostgreSQL schema with one table ``visits``, dropped after."""
    schema = f"podium_s_{uuid.uuid4().hex[:10]}"
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text(f"CREATE TABLE {schema}.visits (v int)"))
        conn.execute(sa.text(f"INSERT INTO {schema}.visits VALUES (1), (2), (3)"))
    yield schema
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.mark.integration
def test_postgres_table(postgres_engine: sa.Engine, pg_table: str) -> None:
    """A PostgreSQL table: columns, count, bounded batches; numeric becomes float."""
    with DatabaseSource(_plain_url(postgres_engine), table=pg_table, batch_rows=10) as source:
        assert source.sql_dialect == "postgres"
        assert source.column_names() == ["id", "name", "amount"]
        assert source.record_count() == 25
        batches = list(source.iter_batches())
    assert [len(b) for b in batches] == [10, 10, 5]
    frame = pd.concat(batches, ignore_index=True).sort_values("id")
    assert frame["id"].tolist() == list(range(25))
    assert frame["amount"].dtype == "float64"
    assert frame["amount"].tolist() == pytest.approx([i * 1.5 for i in range(25)])


@pytest.mark.integration
def test_postgres_query_mode(postgres_engine: sa.Engine, pg_table: str) -> None:
    """A PostgreSQL query is read with its own columns and count."""
    query = f"SELECT id, name FROM {pg_table} WHERE id % 5 = 0 AND name LIKE 'n%'"
    with DatabaseSource(_plain_url(postgres_engine), query=query) as source:
        assert source.column_names() == ["id", "name"]
        assert source.record_count() == 5
        assert sorted(source.to_pandas()["id"]) == [0, 5, 10, 15, 20]


@pytest.mark.integration
def test_postgres_query_text_is_sent_exactly(postgres_engine: sa.Engine, pg_table: str) -> None:
    """``\\:``, ``:name``, ``%`` and ``%%`` reach PostgreSQL unchanged, streamed or not."""
    query = f"SELECT {TRICKY_SELECT}, id FROM {pg_table} WHERE id % 10 = 3 AND name LIKE 'n%'"
    with DatabaseSource(_plain_url(postgres_engine), query=query, batch_rows=1) as source:
        frames = list(source.iter_batches())
        ran = pd.concat(source.run_query(f"SELECT {TRICKY_SELECT} FROM {pg_table} LIMIT 1"))

    assert [len(frame) for frame in frames] == [1, 1, 1]
    frame = pd.concat(frames, ignore_index=True)
    assert frame["id"].tolist() == [3, 13, 23]
    assert frame.drop(columns="id").drop_duplicates().to_dict("records") == [TRICKY_LITERALS]
    assert ran.to_dict("records") == [TRICKY_LITERALS]


@pytest.mark.integration
def test_postgres_duplicate_query_columns(postgres_engine: sa.Engine, pg_table: str) -> None:
    """A query with two columns of one name is refused with a hint to alias them."""
    query = f"SELECT id, id FROM {pg_table}"
    with (
        DatabaseSource(_plain_url(postgres_engine), query=query) as source,
        pytest.raises(DataSourceReadError, match="alias"),
    ):
        source.column_names()


@pytest.mark.integration
def test_postgres_db_schema(postgres_engine: sa.Engine, pg_schema: str) -> None:
    """db_schema reads a table outside search_path; a wrong name lists that schema's tables."""
    url = _plain_url(postgres_engine)
    with DatabaseSource(url, table="visits", db_schema=pg_schema) as source:
        assert source.relation_sql() == f"{pg_schema}.visits"
        assert sorted(source.to_pandas()["v"]) == [1, 2, 3]
    with (
        DatabaseSource(url, table="visit", db_schema=pg_schema) as wrong,
        pytest.raises(DataSourceNotFoundError, match="visits"),
    ):
        wrong.record_count()


@pytest.mark.integration
def test_postgres_run_query_is_read_only(postgres_engine: sa.Engine, pg_table: str) -> None:
    """run_query reads, but an INSERT or a writing SELECT fails and changes nothing."""
    with DatabaseSource(_plain_url(postgres_engine), table=pg_table) as source:
        sql = f"SELECT COUNT(*) AS n FROM {source.relation_sql()} t"
        assert pd.concat(source.run_query(sql))["n"].tolist() == [25]
        with pytest.raises(QueryError, match="INSERT"):
            list(source.run_query(f"INSERT INTO {pg_table} VALUES (100, 'x', 1)"))
        seq = f"{pg_table}_seq"
        with postgres_engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SEQUENCE {seq}"))
        try:
            with pytest.raises(ForbiddenQueryError, match="read-only"):
                list(source.run_query(f"SELECT nextval('{seq}')"))
        finally:
            with postgres_engine.begin() as conn:
                conn.execute(sa.text(f"DROP SEQUENCE {seq}"))
        assert source.record_count() == 25


@pytest.mark.integration
@pytest.mark.parametrize(
    "change",
    [{"port": 1}, {"username": "podium_no_such_role"}],
    ids=["wrong-port", "wrong-credentials"],
)
def test_postgres_connection_errors_hide_the_password(
    postgres_engine: sa.Engine, change: dict[str, object]
) -> None:
    """A wrong port or role is DataSourceReadError that never shows the password."""
    url = postgres_engine.url.set(password=SECRET, **change)  # type: ignore[arg-type]
    with (
        DatabaseSource(url.render_as_string(hide_password=False), table="t") as source,
        pytest.raises(DataSourceReadError, match="cannot connect") as info,
    ):
        source.column_names()
    message = str(info.value)
    assert SECRET not in message
    assert "***" in message


@pytest.mark.integration
def test_postgres_streams_through_a_server_side_cursor(postgres_engine: sa.Engine) -> None:
    """Batches are fetched from a server-side cursor; abandoning them ends the transaction."""
    app = f"podium_stream_{uuid.uuid4().hex[:10]}"
    url = postgres_engine.url.update_query_dict({"application_name": app})
    activity = sa.text("SELECT state, query FROM pg_stat_activity WHERE application_name = :app")
    query = "SELECT g FROM generate_series(1, 50000) g"
    with (
        DatabaseSource(url.render_as_string(hide_password=False), query=query) as source,
        postgres_engine.connect() as watcher,
    ):
        batches = cast(Generator[pd.DataFrame], source.iter_batches(batch_rows=100))
        assert len(next(batches)) == 100
        during = watcher.execute(activity, {"app": app}).all()
        watcher.rollback()  # pg_stat_activity is a snapshot per transaction
        assert [(row.state, row.query.split()[0]) for row in during] == [
            ("idle in transaction", "FETCH")
        ]
        batches.close()
        after = watcher.execute(activity, {"app": app}).all()
        assert [row.state for row in after] == ["idle"]


#: Columns of every common PostgreSQL type; odd rows are all NULL.
_PG_TYPED = """
    SELECT g AS id,
           CASE WHEN g % 2 = 0 THEN g * 1.25 END AS amount,
           CASE WHEN g % 2 = 0 THEN g::float8 / 4 END AS ratio,
           CASE WHEN g % 2 = 0 THEN g > 2 END AS big,
           CASE WHEN g % 2 = 0 THEN 'v' || g END AS label,
           CASE WHEN g % 2 = 0 THEN gen_random_uuid() END AS key,
           CASE WHEN g % 2 = 0 THEN DATE '2024-01-01' + g END AS day,
           CASE WHEN g % 2 = 0 THEN TIMESTAMP '2024-01-01 10:00' END AS at,
           CASE WHEN g % 2 = 0 THEN TIMESTAMPTZ '2024-01-01 10:00+02' END AS at_tz,
           CASE WHEN g % 2 = 0 THEN jsonb_build_object('g', g) END AS doc
    FROM generate_series(1, 4) g
"""
_PG_DTYPES = (
    "Int64",
    "float64",
    "float64",
    "boolean",
    "str",
    "str",
    "datetime64[us]",
    "datetime64[us]",
    "datetime64[us, UTC]",
    "object",
)


@pytest.fixture
def pg_typed(postgres_engine: sa.Engine) -> Iterator[str]:
    """A table holding _PG_TYPED, dropped after the test."""
    name = f"podium_typed_{uuid.uuid4().hex[:10]}"
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {name} AS {_PG_TYPED} ORDER BY id"))
    yield name
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def _check_pg_typed(frames: list[pd.DataFrame]) -> None:
    assert [tuple(map(str, f.dtypes)) for f in frames] == [_PG_DTYPES] * 4
    frame = pd.concat(frames, ignore_index=True).sort_values("id")
    assert frame["amount"].tolist()[1::2] == [2.5, 5.0]
    assert frame["big"].tolist()[1::2] == [False, True]
    assert frame["day"].tolist()[1::2] == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-05")]
    assert frame["at_tz"].tolist()[1::2] == [pd.Timestamp("2024-01-01 08:00", tz="UTC")] * 2
    assert frame["doc"].tolist()[1::2] == [{"g": 2}, {"g": 4}]


@pytest.mark.integration
def test_postgres_table_dtypes_follow_declared_types(
    postgres_engine: sa.Engine, pg_typed: str
) -> None:
    """A table's batches, all-NULL ones included, take their dtypes from its column types."""
    url = _plain_url(postgres_engine)
    with DatabaseSource(url, table=pg_typed, batch_rows=1) as source:
        _check_pg_typed(list(source.iter_batches()))


@pytest.mark.integration
def test_postgres_query_dtypes_follow_type_oids(postgres_engine: sa.Engine) -> None:
    """A query's batches take their dtypes from the result's type OIDs (numeric, bool, ...)."""
    with DatabaseSource(_plain_url(postgres_engine), query=_PG_TYPED, batch_rows=1) as source:
        _check_pg_typed(list(source.iter_batches()))


@pytest.mark.integration
def test_postgres_run_query_dtypes_follow_type_oids(
    postgres_engine: sa.Engine, pg_typed: str
) -> None:
    """run_query frames take their dtypes from type OIDs; an empty result keeps them too."""
    with DatabaseSource(_plain_url(postgres_engine), table=pg_typed) as source:
        _check_pg_typed(list(source.run_query(f"{_PG_TYPED} ORDER BY id", batch_rows=1)))
        (empty,) = source.run_query(f"SELECT amount, big FROM {pg_typed} WHERE id < 0")
    assert list(map(str, empty.dtypes)) == ["float64", "boolean"]
