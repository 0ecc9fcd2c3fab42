"""An owner's row filter in a ``query:`` source holds against a modeller's conditions.

Databases may move a query's conditions into a subquery and evaluate them on rows the
subquery filters out ("leaky views"); an error or a division by zero would then reveal
those rows. The owner's query is fenced, and database errors carry no values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium.core.errors import ConfigValidationError, QueryExecutionError
from podium.data.sources.database_source import DatabaseSource
from podium.data.sql import SQLEngine
from tests.conftest import POSTGRES_URL

PROBES = [
    "SELECT * FROM patients WHERE id = 2 AND CAST(diagnosis AS INT) = 1",
    "SELECT * FROM patients WHERE 1 / (CASE WHEN diagnosis = 'HIV' THEN 0 ELSE 1 END) = 1",
]


def _make_tables(engine: sa.Engine, suffix: str) -> str:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE patients_{suffix} (id INTEGER, diagnosis TEXT)")
        conn.exec_driver_sql(
            f"INSERT INTO patients_{suffix} VALUES (1, 'flu'), (2, 'HIV'), (3, 'cancer')"
        )
        conn.exec_driver_sql(f"CREATE TABLE consent_{suffix} (id INTEGER)")
        conn.exec_driver_sql(f"INSERT INTO consent_{suffix} VALUES (1)")
    return (
        f"SELECT id, diagnosis FROM patients_{suffix} WHERE id IN (SELECT id FROM consent_{suffix})"
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SQLEngine, str]]:
    """A SQL engine over a consent-filtered ``query:`` source, and the backend's name."""
    suffix = uuid.uuid4().hex[:10]
    if request.param == "postgresql":
        admin: sa.Engine = request.getfixturevalue("postgres_engine")
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
        admin = sa.create_engine(url)
    owner_query = _make_tables(admin, suffix)
    source = DatabaseSource(url, query=owner_query)
    try:
        with SQLEngine({"patients": source}) as sql:
            yield sql, request.param
    finally:
        source.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE patients_{suffix}")
            conn.exec_driver_sql(f"DROP TABLE consent_{suffix}")
        if request.param == "sqlite":
            admin.dispose()


def test_owner_filter_shows_only_consented_rows(engine: tuple[SQLEngine, str]) -> None:
    """The source shows the rows the owner's query lets through and no others."""
    sql, _ = engine
    assert sql.query("SELECT * FROM patients").to_dict("list") == {
        "id": [1],
        "diagnosis": ["flu"],
    }


@pytest.mark.parametrize("probe", PROBES)
def test_conditions_never_see_filtered_rows(engine: tuple[SQLEngine, str], probe: str) -> None:
    """Conditions that would fail on a filtered-out row run only on the rows let through."""
    sql, _ = engine
    result = sql.query(probe)
    assert set(result["id"].tolist()) <= {1}


def test_database_errors_quote_no_values(engine: tuple[SQLEngine, str]) -> None:
    """A cast failing on a visible row reports the error's kind and SQLSTATE, not the value."""
    sql, backend = engine
    query = "SELECT CAST(diagnosis AS INT) + 1 AS n FROM patients"
    if backend == "sqlite":  # SQLite casts text to 0 instead of failing
        assert sql.query(query)["n"].tolist() == [1]
        return
    with pytest.raises(QueryExecutionError) as caught:
        sql.query(query)
    assert "flu" not in str(caught.value)
    assert "SQLSTATE 22P02" in str(caught.value)


@pytest.mark.integration
def test_postgres_statements_are_cancelled_after_the_timeout(
    postgres_engine: sa.Engine,
) -> None:
    """A pushed-down query running past statement_timeout_s is cancelled by PostgreSQL."""
    del postgres_engine  # only ensures the server is there
    source = DatabaseSource(POSTGRES_URL, query="SELECT 1 AS one", statement_timeout_s=0.2)
    runaway = (
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) "
        "SELECT COUNT(*) AS n FROM r, one_table"
    )
    try:
        with (
            SQLEngine({"one_table": source}) as sql,
            pytest.raises(QueryExecutionError, match="SQLSTATE 57014"),
        ):
            sql.query(runaway)
    finally:
        source.close()


def test_timeout_must_be_positive() -> None:
    """A zero or negative statement_timeout_s is a config error naming the field."""
    with pytest.raises(ConfigValidationError, match="statement_timeout_s"):
        DatabaseSource(POSTGRES_URL, table="t", statement_timeout_s=0)
