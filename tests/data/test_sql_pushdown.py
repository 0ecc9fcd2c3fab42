"""SQL over DatabaseSources runs in the database itself (push-down): SQLite and PostgreSQL.

Each test proves where a query ran with the ``pushed`` fixture, which records every
statement the engine hands to a database (``DatabaseSource.run_query``): a pushed-down
query sends exactly one, a query DuckDB answers sends none. Functions that would name the
server (``version()``, ``current_user``, ...) are refused in push-down.
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

from podium.core.errors import DataSourceReadError, ForbiddenQueryError, QueryExecutionError
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
def pushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement handed to a database by push-down, in order."""
    sent: list[str] = []
    run_query = DatabaseSource.run_query

    def recording(
        self: DatabaseSource, sql: str, *, batch_rows: int | None = None
    ) -> Iterator[pd.DataFrame]:
        sent.append(sql)
        return run_query(self, sql, batch_rows=batch_rows)

    monkeypatch.setattr(DatabaseSource, "run_query", recording)
    return sent


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


def test_query_runs_inside_sqlite(engine: SQLEngine, pushed: list[str]) -> None:
    """A query over one database's tables is answered by that database, in its SQL."""
    result = engine.query("SELECT COUNT(*) AS n FROM visits")

    assert result["n"].tolist() == [40]
    assert len(pushed) == 1
    assert pushed[0].startswith("SELECT COUNT(*) AS `n` FROM (SELECT `id`, `ward`, `cost` FROM ")


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
    engine: SQLEngine, pushed: list[str], visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """Two tables of the same database join inside it."""
    result = engine.query(
        "SELECT w.floor, COUNT(*) AS n FROM visits AS v "
        "JOIN wards AS w ON v.ward = w.ward GROUP BY w.floor ORDER BY w.floor"
    )

    expected = visits.merge(wards, on="ward").groupby("floor").size()
    assert result["floor"].tolist() == expected.index.tolist()
    assert result["n"].tolist() == expected.tolist()
    assert len(pushed) == 1


def test_ignored_column_is_hidden_in_the_database(engine: SQLEngine) -> None:
    """``SELECT *`` lacks the ignored column; naming it fails rather than returning text."""
    everything = engine.query("SELECT * FROM visits LIMIT 2")

    assert list(everything.columns) == ["id", "ward", "cost"]
    with pytest.raises(QueryExecutionError, match="nhs_number"):
        engine.query("SELECT nhs_number FROM visits")


def test_modifiers_are_applied_in_the_database(
    clinic_db: Path, pushed: list[str], visits: pd.DataFrame
) -> None:
    """A prefix and suffix are added to each value by the database's SQL."""
    source = DatabaseSource(
        f"sqlite:///{clinic_db}",
        table="visits",
        modifiers={"ward": {"prefix": "W-", "suffix": "/"}},
    )
    with SQLEngine({"visits": source}) as sql_engine:
        result = sql_engine.query("SELECT DISTINCT ward FROM visits ORDER BY ward")
    source.close()

    assert result["ward"].tolist() == sorted(f"W-{w}/" for w in visits["ward"].unique())
    assert len(pushed) == 1
    assert "'W-' || CAST(`ward` AS TEXT) || '/'" in pushed[0]


def test_backticks_and_ctes_are_pushed_down(
    engine: SQLEngine, pushed: list[str], visits: pd.DataFrame
) -> None:
    """Backtick names and CTEs translate to the database's SQL."""
    result = engine.query(
        "WITH dear AS (SELECT * FROM `visits` WHERE cost > 50) "
        "SELECT COUNT(*) AS n, MAX(dear.cost) AS top FROM dear"
    )

    dear = visits.loc[visits["cost"] > 50, "cost"]
    assert result["n"].tolist() == [len(dear)]
    assert result["top"].tolist() == [dear.max()]
    assert len(pushed) == 1


def test_query_mode_source_is_pushed_down(
    clinic_db: Path, pushed: list[str], visits: pd.DataFrame
) -> None:
    """A source defined by a SQL query is wrapped as a subquery in the database."""
    query = "SELECT id, cost * 2 AS double_cost FROM visits"
    source = DatabaseSource(f"sqlite:///{clinic_db}", query=query)
    with SQLEngine({"doubled": source}) as sql_engine:
        result = sql_engine.query("SELECT SUM(double_cost) AS s FROM doubled")
    source.close()

    np.testing.assert_allclose(result["s"].to_numpy(float), [visits["cost"].sum() * 2])
    assert len(pushed) == 1
    assert f"({query})" in pushed[0]


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


def test_iter_query_streams_from_the_database(
    engine: SQLEngine, pushed: list[str], visits: pd.DataFrame
) -> None:
    """Push-down results stream in frames of at most batch_rows rows."""
    batches = list(engine.iter_query("SELECT id FROM visits ORDER BY id", batch_rows=7))

    assert all(len(batch) <= 7 for batch in batches)
    assert pd.concat(batches)["id"].tolist() == visits["id"].tolist()
    assert len(pushed) == 1


def test_query_arrow_from_the_database(engine: SQLEngine, visits: pd.DataFrame) -> None:
    """The Arrow form of a pushed-down result holds the same rows."""
    table = engine.query_arrow("SELECT ward, COUNT(*) AS n FROM visits GROUP BY ward ORDER BY ward")

    expected = visits.groupby("ward").size()
    assert table.column("ward").to_pylist() == expected.index.tolist()
    assert table.column("n").to_pylist() == expected.tolist()


def test_database_mixed_with_a_frame_runs_in_duckdb(
    clinic_db: Path, pushed: list[str], visits: pd.DataFrame
) -> None:
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
    assert result["v"].iloc[0].startswith("v")  # DuckDB's own version, allowed there
    assert result["v"].iloc[0] != sqlite3.sqlite_version
    assert pushed == []


def test_two_databases_are_joined_in_duckdb(
    clinic_db: Path, tmp_path: Path, pushed: list[str], visits: pd.DataFrame, wards: pd.DataFrame
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
    assert pushed == []


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
def test_postgres_query_runs_in_postgres(pg_engine: SQLEngine, pushed: list[str]) -> None:
    """PostgreSQL answers, in its own SQL."""
    result = pg_engine.query(
        "SELECT COUNT(*) AS n, STRING_AGG(DISTINCT WARD, '|') AS w FROM visits"
    )

    assert result["n"].tolist() == [40]
    assert sorted(result["w"].iloc[0].split("|")) == [f"w:{ward}" for ward in WARDS]
    assert len(pushed) == 1
    assert 'STRING_AGG(DISTINCT "WARD", ' in pushed[0]


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


# -- what the modeller's SQL may not reach ----------------------------------------------------

#: Rows the modeller's CTEs make up, to try to stand in for the owner's tables.
FAKE_ROWS = "SELECT 999 AS id, 'Fake' AS ward, 0.5 AS cost, 'x' AS nhs_number"
ALL_FLOORS_ONE = (
    "SELECT 'Ash' AS ward, 1 AS floor UNION ALL SELECT 'Birch', 1 UNION ALL SELECT 'Cedar', 1"
)


@pytest.fixture
def renamed_engine(clinic_db: Path) -> Iterator[SQLEngine]:
    """``patients`` reads table ``visits``; ``first_floor`` is a query filtered by ``wards``."""
    url = f"sqlite:///{clinic_db}"
    sources = {
        "patients": DatabaseSource(url, table="visits", ignore_cols=["nhs_number"]),
        "first_floor": DatabaseSource(
            url,
            query="SELECT id, cost FROM visits WHERE ward IN "
            "(SELECT ward FROM wards WHERE floor = 1)",
        ),
    }
    with SQLEngine(sources) as sql_engine:
        yield sql_engine
    for source in sources.values():
        source.close()


def _first_floor_ids(visits: pd.DataFrame, wards: pd.DataFrame) -> list[int]:
    first = set(wards.loc[wards["floor"] == 1, "ward"])
    return sorted(int(i) for i in visits.loc[visits["ward"].isin(first), "id"])


def test_cte_cannot_stand_in_for_a_sources_table(
    renamed_engine: SQLEngine, pushed: list[str], visits: pd.DataFrame
) -> None:
    """A CTE named like the database table behind a ``table:`` source does not replace it."""
    result = renamed_engine.query(
        f"WITH visits AS ({FAKE_ROWS}) SELECT id FROM patients ORDER BY id"
    )

    assert result["id"].tolist() == visits["id"].tolist()
    assert len(pushed) == 1


def test_cte_cannot_replace_a_table_inside_the_owners_query(
    renamed_engine: SQLEngine, pushed: list[str], visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """A CTE named like a table the owner's ``query:`` filters by cannot widen its rows."""
    result = renamed_engine.query(
        f"WITH wards AS ({ALL_FLOORS_ONE}), visits AS ({FAKE_ROWS}) "
        "SELECT id FROM first_floor ORDER BY id"
    )

    assert result["id"].tolist() == _first_floor_ids(visits, wards)
    assert len(result) < len(visits)
    assert len(pushed) == 1


def test_owners_query_keeps_its_own_ctes(
    clinic_db: Path, pushed: list[str], visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """The owner's query may define a CTE with the same name as one of the modeller's."""
    source = DatabaseSource(
        f"sqlite:///{clinic_db}",
        query="WITH w AS (SELECT ward FROM wards WHERE floor = 1) "
        "SELECT id FROM visits WHERE ward IN (SELECT ward FROM w)",
    )
    with SQLEngine({"first_floor": source}) as sql_engine:
        result = sql_engine.query(
            f"WITH w AS ({ALL_FLOORS_ONE}) SELECT f.id FROM first_floor AS f "
            "WHERE f.id >= (SELECT COUNT(*) - 3 FROM w) ORDER BY f.id"
        )
    source.close()

    assert result["id"].tolist() == _first_floor_ids(visits, wards)
    assert len(pushed) == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("WITH c AS (SELECT id FROM patients) SELECT MAX(c.id) AS x FROM c", 39),
        ("WITH c AS (SELECT id FROM patients) SELECT MAX(z.id) AS x FROM c AS z", 39),
        (
            "WITH c AS (SELECT id FROM patients WHERE id = 1) SELECT (WITH c AS "
            "(SELECT 7 AS id) SELECT MAX(id) FROM c) + MAX(c.id) AS x FROM c",
            8,
        ),
        (
            "WITH a AS (SELECT id FROM patients WHERE id < 10), b AS (SELECT id FROM a "
            "WHERE id > 4) SELECT COUNT(*) AS x FROM b JOIN a USING (id)",
            5,
        ),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4) "
            "SELECT SUM(i) AS x FROM n JOIN patients ON patients.id = n.i",
            10,
        ),
    ],
    ids=["qualified", "aliased", "nested-shadow", "chained", "recursive"],
)
def test_renamed_ctes_keep_their_meaning(
    renamed_engine: SQLEngine, pushed: list[str], query: str, expected: int
) -> None:
    """Qualified columns, aliases, nested shadowing, chains and recursion survive renaming."""
    result = renamed_engine.query(query)

    assert result["x"].tolist() == [expected]
    assert len(pushed) == 1
    assert "WITH `c` AS" not in pushed[0]
    assert "podium_cte_" in pushed[0]


#: String literals that look like bind parameters or driver placeholders.
TRICKY_LITERALS = {"u": "c\\:d", "n": ":name", "p": "50%", "pp": "%%", "s": "%s", "t": "a::b"}
TRICKY_SELECT = ", ".join(f"'{value}' AS {key}" for key, value in TRICKY_LITERALS.items())


def test_literals_with_colons_and_percents_are_returned_exactly(
    engine: SQLEngine, pushed: list[str]
) -> None:
    """``\\:``, ``:name``, ``%`` and ``%%`` inside strings reach SQLite unchanged."""
    result = engine.query(f"SELECT {TRICKY_SELECT} FROM visits LIMIT 1")

    assert result.to_dict("records") == [TRICKY_LITERALS]
    assert len(pushed) == 1


#: Calls that would tell the modeller which server, database, user or session answers.
SERVER_CALLS = [
    "version()",
    "current_user",
    "session_user",
    "current_role()",
    "current_database()",
    "current_schema()",
    "current_catalog",
]


@pytest.mark.parametrize("call", SERVER_CALLS)
def test_server_identity_functions_are_refused(
    engine: SQLEngine, pushed: list[str], call: str
) -> None:
    """Functions naming the server, database or user never run in the database."""
    with pytest.raises(ForbiddenQueryError) as caught:
        engine.query(f"SELECT {call} AS v, COUNT(*) AS n FROM visits")

    assert call.removesuffix("()") in str(caught.value).lower()
    assert pushed == []


def test_time_functions_still_run_in_the_database(engine: SQLEngine, pushed: list[str]) -> None:
    """CURRENT_DATE and CURRENT_TIMESTAMP tell the time, not the server, so they run."""
    result = engine.query("SELECT CURRENT_DATE AS d, COUNT(*) AS n FROM visits")

    assert result["n"].tolist() == [40]
    assert pd.Timestamp(result["d"].iloc[0]).year >= 2024
    assert len(pushed) == 1


def test_failing_owner_query_is_reported_without_its_text(
    clinic_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The modeller learns which table failed; the owner's SQL and URL stay in the log."""
    source = DatabaseSource(f"sqlite:///{clinic_db}", query="SELECT * FROM consent_register_2024")
    with SQLEngine({"cohort": source}) as sql_engine, pytest.raises(DataSourceReadError) as caught:
        sql_engine.query("SELECT COUNT(*) AS n FROM cohort")
    source.close()

    message = str(caught.value)
    assert 'SQL table "cohort" cannot be read' in message
    assert "consent_register_2024" not in message
    assert str(clinic_db) not in message
    assert "consent_register_2024" in caplog.text


# -- PostgreSQL: the same guarantees -------------------------------------------------------------


@pytest.fixture
def pg_clinic(
    postgres_engine: sa.Engine, visits: pd.DataFrame, wards: pd.DataFrame
) -> Iterator[str]:
    """A uniquely named PostgreSQL schema holding ``visits`` and ``wards``."""
    schema = f"podium_cte_{uuid.uuid4().hex[:10]}"
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    visits.to_sql("visits", postgres_engine, schema=schema, index=False)
    wards.to_sql("wards", postgres_engine, schema=schema, index=False)
    yield schema
    with postgres_engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture
def pg_renamed_engine(postgres_engine: sa.Engine, pg_clinic: str) -> Iterator[SQLEngine]:
    """``patients`` and ``first_floor`` as in ``renamed_engine``, on PostgreSQL.

    The query source names its tables unqualified, through ``search_path``, so that a CTE
    of the same name would shadow them if the modeller's CTEs kept their names.
    """
    url = postgres_engine.url.update_query_dict({"options": f"-csearch_path={pg_clinic}"})
    plain = url.render_as_string(hide_password=False)
    sources = {
        "patients": DatabaseSource(plain, table="visits", ignore_cols=["nhs_number"]),
        "first_floor": DatabaseSource(
            plain,
            query="SELECT id, cost FROM visits WHERE ward IN "
            "(SELECT ward FROM wards WHERE floor = 1 AND ward <> 'hidden-filter')",
        ),
    }
    with SQLEngine(sources) as sql_engine:
        yield sql_engine
    for source in sources.values():
        source.close()


@pytest.mark.integration
def test_postgres_cte_cannot_stand_in_for_a_sources_table(
    pg_renamed_engine: SQLEngine, pushed: list[str], visits: pd.DataFrame
) -> None:
    """In PostgreSQL too, a CTE named like the source's table does not replace it."""
    result = pg_renamed_engine.query(
        f"WITH visits AS ({FAKE_ROWS}) SELECT id FROM patients ORDER BY id"
    )

    assert result["id"].tolist() == visits["id"].tolist()
    assert len(pushed) == 1
    assert 'FROM visits AS "podium_source"' in pushed[0]  # the name a CTE could shadow


@pytest.mark.integration
def test_postgres_cte_cannot_replace_a_table_inside_the_owners_query(
    pg_renamed_engine: SQLEngine, pushed: list[str], visits: pd.DataFrame, wards: pd.DataFrame
) -> None:
    """In PostgreSQL too, the owner's filter table cannot be swapped by a CTE."""
    result = pg_renamed_engine.query(
        f"WITH wards AS ({ALL_FLOORS_ONE}) SELECT id FROM first_floor ORDER BY id"
    )

    assert result["id"].tolist() == _first_floor_ids(visits, wards)
    assert len(pushed) == 1


@pytest.mark.integration
def test_postgres_error_hides_the_owners_query(pg_renamed_engine: SQLEngine) -> None:
    """A database error gives its kind and SQLSTATE, not its text or the owner's query."""
    with pytest.raises(QueryExecutionError) as caught:
        pg_renamed_engine.query("SELECT id FROM first_floor WHERE nope = 1")

    message = str(caught.value)
    assert "undefined column (SQLSTATE 42703)" in message
    assert "hidden-filter" not in message
    assert "LINE 1" not in message


@pytest.mark.integration
def test_postgres_literals_with_colons_and_percents_are_returned_exactly(
    pg_engine: SQLEngine, pushed: list[str]
) -> None:
    """``\\:``, ``:name``, ``%`` and ``%%`` inside strings reach PostgreSQL unchanged."""
    result = pg_engine.query(f"SELECT {TRICKY_SELECT} FROM visits LIMIT 1")

    assert result.to_dict("records") == [TRICKY_LITERALS]
    assert len(pushed) == 1


@pytest.mark.integration
@pytest.mark.parametrize("call", [*SERVER_CALLS, "inet_server_addr()", "pg_backend_pid()"])
def test_postgres_server_identity_functions_are_refused(
    pg_engine: SQLEngine, pushed: list[str], call: str
) -> None:
    """Functions naming the PostgreSQL server, database or user never run there."""
    with pytest.raises(ForbiddenQueryError) as caught:
        pg_engine.query(f"SELECT {call} AS v, COUNT(*) AS n FROM visits")

    assert call.removesuffix("()") in str(caught.value).lower()
    assert pushed == []


@pytest.mark.integration
@pytest.mark.parametrize("word", ["user", "current_role", "current_schema"])
def test_postgres_bare_keywords_are_column_names(pg_engine: SQLEngine, word: str) -> None:
    """A bare ``user`` is quoted as a column, so it cannot return the session's user."""
    with pytest.raises(QueryExecutionError, match=r"undefined column \(SQLSTATE 42703\)"):
        pg_engine.query(f"SELECT {word} AS v FROM visits")
