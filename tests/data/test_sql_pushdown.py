"""SQL over DatabaseSources runs in the database itself (push-down): SQLite and PostgreSQL.

Each test proves where a query ran with a function whose answer differs by engine:
``version()`` is translated to SQLite's ``sqlite_version()`` or PostgreSQL's ``version()``
when pushed down, and is DuckDB's own version (``v2.0.0``) when it runs in DuckDB.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from podium.core.errors import ForbiddenQueryError, QueryExecutionError
from podium.data.sources.database_source import DatabaseSource
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sql import SQLEngine

WARDS = ["Ash", "Birch", "Cedar"]


@pytest.fixture
def visits() -> pd.DataFrame:
    """Forty seeded visits with a column the pod ignores (``nhs_number``)."""
    rng = random.Random(11)
    return pd.DataFrame(
        {
            "id": list(range(40)),
            "ward": [rng.choice(WARDS) for _ in range(40)],
            "cost": [round(rng.uniform(10, 100), 2) for _ in range(40)],
            "nhs_number": [f"943{rng.randint(1000000, 9999999)}" for _ in range(40)],
        }
    )


@pytest.fixture
def wards() -> pd.DataFrame:
    """One row per ward with its floor."""
    return pd.DataFrame({"ward": WARDS, "floor": [1, 2, 3]})


@pytest.fixture
def clinic_db(tmp_path: Path, visits: pd.DataFrame, wards: pd.DataFrame) -> Path:
    """A SQLite file holding ``visits`` and ``wards``."""
    path = tmp_path / "clinic.db"
    with sqlite3.connect(path) as conn:
        visits.to_sql("visits", conn, index=False)
        wards.to_sql("wards", conn, index=False)
    conn.close()
    return path


@pytest.fixture
def engine(clinic_db: Path) -> Iterator[SQLEngine]:
    """Both SQLite tables as pod tables, ``nhs_number`` ignored."""
    url = f"sqlite:///{clinic_db}"
    sources = {
        "visits": DatabaseSource(url, table="visits", ignore_cols=["nhs_number"]),
        "wards": DatabaseSource(url, table="wards"),
    }
    with SQLEngine(sources) as sql_engine:
        yield sql_engine
    for source in sources.values():
        source.close()


# -- SQLite ---------------------------------------------------------------------------------


def test_query_runs_inside_sqlite(engine: SQLEngine) -> None:
    """A query over one database's tables is answered by that database."""
    result = engine.query("SELECT version() AS v FROM visits LIMIT 1")

    assert result["v"].tolist() == [sqlite3.sqlite_version]


def test_group_by_in_sqlite_matches_pandas(engine: SQLEngine, visits: pd.DataFrame) -> None:
    """Aggregates computed by SQLite equal pandas' on the same rows."""
    result = engine.query(
        "SELECT ward, COUNT(*) AS n, SUM(cost) AS total FROM visits GROUP BY ward ORDER BY ward"
    )

    grouped = visits.groupby("ward")["cost"].agg(["size", "sum"])
    assert result["ward"].tolist() == grouped.index.tolist()
    assert result["n"].tolist() == grouped["size"].tolist()
    np.testing.assert_allclose(result["total"].to_numpy(float), grouped["sum"].to_numpy())


def test_join_of_two_tables_runs_in_sqlite(
    engine: SQLEngine, visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """Two tables of the same database join inside it."""
    result = engine.query(
        "SELECT w.floor, COUNT(*) AS n, MAX(version()) AS v FROM visits AS v "
        "JOIN wards AS w ON v.ward = w.ward GROUP BY w.floor ORDER BY w.floor"
    )

    expected = visits.merge(wards, on="ward").groupby("floor").size()
    assert result["floor"].tolist() == expected.index.tolist()
    assert result["n"].tolist() == expected.tolist()
    assert set(result["v"]) == {sqlite3.sqlite_version}


def test_ignored_column_is_hidden_in_the_database(engine: SQLEngine) -> None:
    """``SELECT *`` lacks the ignored column; naming it fails rather than returning text."""
    everything = engine.query("SELECT * FROM visits LIMIT 2")

    assert list(everything.columns) == ["id", "ward", "cost"]
    with pytest.raises(QueryExecutionError, match="nhs_number"):
        engine.query("SELECT nhs_number FROM visits")


def test_modifiers_are_applied_in_the_database(clinic_db: Path, visits: pd.DataFrame) -> None:
    """A prefix and suffix are added to each value by the database's SQL."""
    source = DatabaseSource(
        f"sqlite:///{clinic_db}",
        table="visits",
        modifiers={"ward": {"prefix": "W-", "suffix": "/"}},
    )
    with SQLEngine({"visits": source}) as sql_engine:
        result = sql_engine.query("SELECT DISTINCT ward, version() AS v FROM visits ORDER BY ward")
    source.close()

    assert result["ward"].tolist() == sorted(f"W-{w}/" for w in visits["ward"].unique())
    assert set(result["v"]) == {sqlite3.sqlite_version}


def test_backticks_and_ctes_are_pushed_down(engine: SQLEngine, visits: pd.DataFrame) -> None:
    """Backtick names and CTEs translate to the database's SQL."""
    result = engine.query(
        "WITH dear AS (SELECT * FROM `visits` WHERE cost > 50) "
        "SELECT COUNT(*) AS n, MAX(version()) AS v FROM dear"
    )

    assert result["n"].tolist() == [int((visits["cost"] > 50).sum())]
    assert result["v"].tolist() == [sqlite3.sqlite_version]


def test_query_mode_source_is_pushed_down(clinic_db: Path, visits: pd.DataFrame) -> None:
    """A source defined by a SQL query is wrapped as a subquery in the database."""
    source = DatabaseSource(
        f"sqlite:///{clinic_db}", query="SELECT id, cost * 2 AS double_cost FROM visits"
    )
    with SQLEngine({"doubled": source}) as sql_engine:
        result = sql_engine.query("SELECT SUM(double_cost) AS s, version() AS v FROM doubled")
    source.close()

    np.testing.assert_allclose(result["s"].to_numpy(float), [visits["cost"].sum() * 2])
    assert result["v"].tolist() == [sqlite3.sqlite_version]


def test_unknown_function_is_refused_before_the_database(engine: SQLEngine) -> None:
    """A function sqlglot cannot translate is refused rather than passed through."""
    with pytest.raises(ForbiddenQueryError, match=r"printf\(\)"):
        engine.query("SELECT printf('%d', id) FROM visits")


def test_push_down_error_names_the_modellers_statement(engine: SQLEngine) -> None:
    """A database error quotes the query as written, not the rewritten one."""
    with pytest.raises(QueryExecutionError) as caught:
        engine.query("SELECT nope FROM visits")

    message = str(caught.value)
    assert 'Statement: SELECT "nope" FROM "visits"' in message
    assert "podium_source" not in message


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("SELECT * FROM visits TABLESAMPLE 10%", 'sample on table "visits" has no equivalent'),
        ("SELECT * FROM visits USING SAMPLE 5", "TABLESAMPLE unsupported"),
    ],
)
def test_duckdb_only_sampling_is_reported_not_dropped(
    engine: SQLEngine, query: str, match: str
) -> None:
    """Sampling clauses SQLite lacks fail with the reason instead of being dropped."""
    with pytest.raises(QueryExecutionError, match=match):
        engine.query(query)


def test_iter_query_streams_from_the_database(engine: SQLEngine, visits: pd.DataFrame) -> None:
    """Push-down results stream in frames of at most batch_rows rows."""
    batches = list(engine.iter_query("SELECT id FROM visits ORDER BY id", batch_rows=7))

    assert all(len(batch) <= 7 for batch in batches)
    assert pd.concat(batches)["id"].tolist() == visits["id"].tolist()


def test_query_arrow_from_the_database(engine: SQLEngine, visits: pd.DataFrame) -> None:
    """The Arrow form of a pushed-down result holds the same rows."""
    table = engine.query_arrow("SELECT ward, COUNT(*) AS n FROM visits GROUP BY ward ORDER BY ward")

    expected = visits.groupby("ward").size()
    assert table.column("ward").to_pylist() == expected.index.tolist()
    assert table.column("n").to_pylist() == expected.tolist()


def test_database_mixed_with_a_frame_runs_in_duckdb(clinic_db: Path, visits: pd.DataFrame) -> None:
    """A query that mixes a database table and a frame loads the table into DuckDB."""
    floors = pd.DataFrame({"ward": WARDS, "floor": [7, 8, 9]})
    database = DatabaseSource(f"sqlite:///{clinic_db}", table="visits", ignore_cols=["nhs_number"])
    sources = {"visits": database, "floors": DataFrameSource(floors)}
    with SQLEngine(sources) as sql_engine:
        result = sql_engine.query(
            "SELECT f.floor, COUNT(*) AS n, MAX(version()) AS v FROM visits JOIN floors AS f "
            "USING (ward) GROUP BY f.floor ORDER BY f.floor"
        )
        with pytest.raises(QueryExecutionError, match="nhs_number"):
            sql_engine.query("SELECT nhs_number FROM visits JOIN floors USING (ward)")
    database.close()

    expected = visits.merge(floors, on="ward").groupby("floor").size()
    assert result["n"].tolist() == expected.tolist()
    assert result["v"].iloc[0].startswith("v")
    assert result["v"].iloc[0] != sqlite3.sqlite_version


def test_two_databases_are_joined_in_duckdb(
    clinic_db: Path, tmp_path: Path, visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """Tables of two different databases cannot be pushed down together; DuckDB joins them."""
    other = tmp_path / "wards.db"
    with sqlite3.connect(other) as conn:
        wards.to_sql("wards", conn, index=False)
    conn.close()
    sources = {
        "visits": DatabaseSource(f"sqlite:///{clinic_db}", table="visits"),
        "wards": DatabaseSource(f"sqlite:///{other}", table="wards"),
    }
    with SQLEngine(sources) as sql_engine:
        result = sql_engine.query(
            "SELECT COUNT(*) AS n, MAX(version()) AS v FROM visits JOIN wards USING (ward)"
        )
    for source in sources.values():
        source.close()

    assert result["n"].tolist() == [len(visits.merge(wards, on="ward"))]
    assert result["v"].iloc[0].startswith("v")


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_visits(postgres_engine: sa.Engine, visits: pd.DataFrame) -> Iterator[str]:
    """The visits as a uniquely named PostgreSQL table (with an upper-case column)."""
    name = f"podium_sql_{uuid.uuid4().hex[:10]}"
    frame = visits.rename(columns={"ward": "WARD"})
    frame.to_sql(name, postgres_engine, index=False)
    yield name
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))


@pytest.fixture
def pg_engine(postgres_engine: sa.Engine, pg_visits: str) -> Iterator[SQLEngine]:
    """An engine whose one table ``visits`` lives in PostgreSQL."""
    url = postgres_engine.url.render_as_string(hide_password=False)
    source = DatabaseSource(
        url, table=pg_visits, ignore_cols=["nhs_number"], modifiers={"WARD": {"prefix": "w:"}}
    )
    with SQLEngine({"visits": source}) as sql_engine:
        yield sql_engine
    source.close()


@pytest.mark.integration
def test_postgres_query_runs_in_postgres(postgres_engine: sa.Engine, pg_engine: SQLEngine) -> None:
    """PostgreSQL answers: its database name and version string come back."""
    result = pg_engine.query(
        "SELECT current_database() AS db, version() AS v, COUNT(*) AS n FROM visits"
    )

    assert result["db"].tolist() == [postgres_engine.url.database]
    assert result["v"].iloc[0].startswith("PostgreSQL")
    assert result["n"].tolist() == [40]


@pytest.mark.integration
def test_postgres_group_by_matches_pandas(pg_engine: SQLEngine, visits: pd.DataFrame) -> None:
    """Aggregates computed by PostgreSQL (names exact, modifiers applied) match pandas."""
    result = pg_engine.query(
        "SELECT WARD, COUNT(*) AS n, AVG(cost) AS mean_cost FROM visits GROUP BY WARD ORDER BY WARD"
    )

    grouped = visits.groupby("ward")["cost"].agg(["size", "mean"])
    assert result["WARD"].tolist() == [f"w:{ward}" for ward in grouped.index]
    assert result["n"].tolist() == grouped["size"].tolist()
    np.testing.assert_allclose(result["mean_cost"].to_numpy(float), grouped["mean"].to_numpy())


@pytest.mark.integration
def test_postgres_ignored_column_is_hidden(pg_engine: SQLEngine) -> None:
    """The ignored column is neither in ``SELECT *`` nor reachable by name."""
    columns = pg_engine.query("SELECT * FROM visits LIMIT 1").columns.tolist()

    assert columns == ["id", "WARD", "cost"]
    with pytest.raises(QueryExecutionError, match="nhs_number"):
        pg_engine.query("SELECT nhs_number FROM visits")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
        ("SELECT query_to_xml('SELECT * FROM pg_authid', true, true, '')", "query_to_xml"),
        ("SELECT pg_sleep(5) FROM visits", "pg_sleep"),
        ("SELECT * FROM visits FOR UPDATE", "FOR UPDATE"),
        ("SELECT * FROM pg_catalog.pg_authid", "pg_catalog.pg_authid"),
    ],
)
def test_postgres_dangerous_sql_never_reaches_the_database(
    pg_engine: SQLEngine, query: str, fragment: str
) -> None:
    """Server-side file reads, SQL-in-a-string, sleeps and locks are refused up front."""
    with pytest.raises(ForbiddenQueryError) as caught:
        pg_engine.query(query)

    assert fragment.lower() in str(caught.value).lower()
