"""SQL on a pod's data is one read-only SELECT over the pod's tables, and nothing else.

Two layers are tested: the sqlglot checks (``validate_query``), and, bypassing them, the
locked-down DuckDB connection that would still refuse files, databases and settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import ForbiddenQueryError, QueryExecutionError
from podium.data import sql as sql_module
from podium.data._sql_check import PodiumDuckDB, quote_identifier
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sources.parquet_source import ParquetSource
from podium.data.sql import SQLEngine, ValidatedQuery, validate_query

TABLES = ("census-income", "other")


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """A small CSV with a column the pod ignores (``secret``)."""
    path = tmp_path / "data" / "people.csv"
    path.parent.mkdir()
    path.write_text("id,city,secret\n1,Leeds,s1\n2,York,s2\n3,Leeds,s3\n")
    return path


@pytest.fixture
def neighbour_file(csv_file: Path) -> Path:
    """Another CSV in the same folder that no source points at."""
    path = csv_file.parent / "neighbour.csv"
    path.write_text("private\nnot-for-you\n")
    return path


@pytest.fixture
def engine(csv_file: Path) -> Iterator[SQLEngine]:
    """An engine over the CSV (``census-income``) and a frame (``other``)."""
    sources = {
        "census-income": CSVSource(csv_file, ignore_cols=["secret"]),
        "other": DataFrameSource(pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})),
    }
    with SQLEngine(sources) as sql_engine:
        yield sql_engine


def raw_connection(engine: SQLEngine) -> duckdb.DuckDBPyConnection:
    """The engine's DuckDB connection itself, bypassing validate_query on purpose."""
    return engine._connection()


# -- validate_query: what is refused -------------------------------------------------------

REFUSED: list[tuple[str, str]] = [
    # (query, a fragment the message must quote or name)
    ("SELECT 1; DROP TABLE other", "DROP TABLE other"),
    ("SELECT * FROM \"census-income\"; ATTACH 'x.db'", "ATTACH 'x.db'"),
    ("SELECT 1 -- a comment ends here\n; DROP TABLE other", "DROP TABLE other"),
    ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
    ("SELECT * FROM 'file.csv'", "file.csv"),
    ('SELECT * FROM "data.parquet"', "data.parquet"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("SELECT * FROM read_parquet('x.parquet')", "read_parquet"),
    ("SELECT * FROM read_json('x.json')", "read_json"),
    ("SELECT * FROM read_text('/etc/hostname')", "read_text"),
    ("SELECT * FROM read_blob('/etc/hostname')", "read_blob"),
    ("SELECT * FROM parquet_scan('x.parquet')", "parquet_scan"),
    ("SELECT * FROM glob('/*')", "glob"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
    ("SELECT getenv('HOME')", "getenv"),
    ("SELECT * FROM query('SELECT 1')", "query"),
    ("SELECT * FROM query_table('\"census-income\"')", "query_table"),
    ("SELECT * FROM json_execute_serialized_sql('{}')", "json_execute_serialized_sql"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT current_setting('allowed_paths')", "current_setting"),
    ("SELECT nextval('seq')", "nextval"),
    ("SELECT load_extension('evil.so')", "load_extension"),
    ("SELECT * FROM range(10)", "table function 'RANGE(0, 10)'"),
    ("SELECT * FROM generate_series(1, 3)", "table function 'GENERATE_SERIES(1, 3)'"),
    ("SELECT * FROM ?", "table function '?'"),
    ("SELECT * FROM pragma_table_info('other')", "pragma_table_info"),
    ("SELECT (SELECT COUNT(*) FROM read_csv('/etc/passwd')) AS n", "read_csv"),
    (
        "SELECT * FROM \"census-income\" WHERE id IN (SELECT * FROM read_csv('/etc/passwd'))",
        "read_csv",
    ),
    ("SELECT 1 UNION SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM other, LATERAL read_csv('/etc/passwd')", "read_csv"),
    ("SELECT '/etc/passwd'.read_text()", "read_text"),
    ("SELECT `read_csv`('/etc/passwd')", "read_csv"),
    ("SELECT \"READ_CSV\"('/etc/passwd')", "read_csv"),
    ("SeLeCt * FrOm ReAd_CsV('/etc/passwd')", "read_csv"),
    (
        "WITH \"census-income\" AS (SELECT * FROM read_csv('/etc/passwd')) "
        'SELECT * FROM "census-income"',
        "read_csv",
    ),
    ("COPY (SELECT 1) TO 'out.csv'", "COPY"),
    ("CoPy other TO 'out.csv'", "COPY"),
    ("ATTACH 'other.db' AS o", "ATTACH"),
    ("DETACH o", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD httpfs"),
    ("SET enable_external_access = true", "SET"),
    ("SET VARIABLE x = 1", "SET"),
    ("RESET lock_configuration", "RESET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL duckdb_settings()", "CALL"),
    ("EXPORT DATABASE 'dump'", "EXPORT DATABASE"),
    ("IMPORT DATABASE 'dump'", "IMPORT DATABASE"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("CREATE MACRO m(a) AS a", "CREATE"),
    ("CREATE VIEW v AS SELECT * FROM other", "CREATE"),
    ("INSERT INTO other VALUES (3, 'c')", "INSERT"),
    ("UPDATE other SET v = 'x'", "UPDATE"),
    ("DELETE FROM other", "DELETE"),
    ("DROP TABLE other", "DROP"),
    ("ALTER TABLE other ADD COLUMN z INTEGER", "ALTER"),
    ("SELECT * INTO copied FROM other", "INTO"),
    ("SELECT * FROM other FOR UPDATE", "FOR UPDATE"),
    ("BEGIN TRANSACTION", "transaction"),
    ("USE memory", "USE"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    ("DESCRIBE other", "DESCRIBE"),
    ("SELECT * FROM (DESCRIBE other)", "DESCRIBE"),
    ("SHOW TABLES", "SHOW"),
    ("SUMMARIZE other", "SUMMARIZE"),
    ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("PIVOT other ON v USING COUNT(*)", "PIVOT"),
    ("VALUES (1)", "VALUES"),
    ("SELECT * FROM main.other", "main.other"),
    ("SELECT * FROM memory.main.other", "memory.main.other"),
    ("SELECT * FROM information_schema.tables", "information_schema.tables"),
    ("SELECT * FROM duckdb_settings", "duckdb_settings"),
    ("SELECT * FROM pg_tables", "pg_tables"),
    ('SELECT * FROM "other"";DROP TABLE other;--"', "DROP TABLE other"),
    ("", "empty"),
    ("SELEC 1", "could not be parsed"),
]


@pytest.mark.parametrize(("query", "fragment"), REFUSED, ids=[q for q, _ in REFUSED])
def test_refused_queries_name_the_fragment_and_the_allowed_tables(
    query: str, fragment: str
) -> None:
    """Each forbidden query raises ForbiddenQueryError quoting what was refused."""
    with pytest.raises(ForbiddenQueryError) as caught:
        validate_query(query, TABLES)

    message = str(caught.value)
    assert fragment.lower() in message.lower()
    assert 'the tables "census-income", "other"' in message


def test_deeply_nested_query_is_refused_not_crashed() -> None:
    """A query nested past what the checker can walk is refused with a clear message."""
    query = "SELECT " + "(" * 5_000 + "1" + ")" * 5_000

    with pytest.raises(ForbiddenQueryError, match="nested too deeply"):
        validate_query(query, TABLES)


def test_unknown_table_is_refused() -> None:
    """A table that is not one of the pod's is refused, naming it."""
    with pytest.raises(ForbiddenQueryError, match=r'"patients".*not one of this pod'):
        validate_query("SELECT * FROM patients", TABLES)


def test_table_names_are_case_sensitive_with_a_hint() -> None:
    """A name that differs only in case is refused with the right name suggested."""
    with pytest.raises(ForbiddenQueryError, match='did you mean "census-income"'):
        validate_query('SELECT * FROM "Census-Income"', TABLES)


def test_a_path_as_table_says_files_are_not_readable() -> None:
    """A file path in FROM is refused with a message about reading files."""
    with pytest.raises(ForbiddenQueryError, match="reading files or URLs by path"):
        validate_query("SELECT * FROM 'data/other.csv'", TABLES)


def test_cte_defined_inside_a_subquery_is_not_visible_outside() -> None:
    """A CTE name used outside its scope is an unknown table, not the CTE."""
    query = "SELECT * FROM (WITH x AS (SELECT 1 AS a) SELECT * FROM x) AS s, x"

    with pytest.raises(ForbiddenQueryError, match='table "x"'):
        validate_query(query, TABLES)


def test_cte_cannot_read_a_later_sibling() -> None:
    """In one WITH, a CTE sees only the CTEs before it."""
    query = "WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS n) SELECT * FROM a"

    with pytest.raises(ForbiddenQueryError, match='table "b"'):
        validate_query(query, TABLES)


def test_non_recursive_cte_cannot_shadow_a_system_table_with_itself() -> None:
    """``WITH duckdb_settings AS (SELECT * FROM duckdb_settings)`` reads no system table."""
    query = "WITH duckdb_settings AS (SELECT * FROM duckdb_settings) SELECT * FROM duckdb_settings"

    with pytest.raises(ForbiddenQueryError, match='table "duckdb_settings"'):
        validate_query(query, TABLES)


# -- validate_query: what is accepted -----------------------------------------------------


def test_backticks_are_read_as_identifiers() -> None:
    """Bitfount-style backticks name a table and come out double-quoted."""
    checked = validate_query("SELECT COUNT(*) FROM `census-income`", TABLES)

    assert checked.tables == ("census-income",)
    assert checked.sql == 'SELECT COUNT(*) FROM "census-income"'


def test_comments_are_dropped_from_the_sql_that_runs() -> None:
    """A comment, even one that looks like a second statement, never reaches DuckDB."""
    checked = validate_query("SELECT 1 /* ; DROP TABLE other */ -- ; ATTACH 'x'", TABLES)

    assert checked.sql == "SELECT 1"
    assert checked.tables == ()


def test_ctes_unions_and_subqueries_are_accepted() -> None:
    """WITH, UNION and nested subqueries over the pod's tables pass, listing the tables."""
    query = (
        "WITH a AS (SELECT id FROM other), b AS (SELECT id FROM a) "
        'SELECT id FROM b UNION SELECT id FROM "census-income" '
        "WHERE id IN (SELECT id FROM other)"
    )

    checked = validate_query(query, TABLES)

    assert sorted(checked.tables) == ["census-income", "other"]


def test_recursive_cte_may_read_itself() -> None:
    """``WITH RECURSIVE`` can reference its own name."""
    query = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT * FROM r"
    )

    assert validate_query(query, TABLES).tables == ()


def test_cte_may_shadow_a_table_name_with_a_filter_on_it() -> None:
    """A CTE named like a table, reading that table, is allowed and reads the table."""
    query = 'WITH "other" AS (SELECT * FROM "other" WHERE id > 1) SELECT * FROM "other"'

    assert validate_query(query, TABLES).tables == ("other",)


def test_trailing_semicolon_is_one_statement() -> None:
    """``SELECT 1;`` is one statement."""
    assert validate_query("SELECT 1;", TABLES).sql == "SELECT 1"


def test_values_and_unnest_are_allowed_in_from() -> None:
    """Inline rows (VALUES, UNNEST) read nothing outside the query."""
    query = "SELECT * FROM (VALUES (1), (2)) AS v(a), UNNEST([3, 4]) AS u(b)"

    assert validate_query(query, TABLES).tables == ()


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1))
def test_any_table_name_round_trips_and_nothing_else_passes(name: str) -> None:
    """Any quoted name is accepted exactly when it is one of the tables."""
    query = f"SELECT * FROM {quote_identifier(name)}"

    assert validate_query(query, [name]).tables == (name,)
    with pytest.raises(ForbiddenQueryError):
        validate_query(query, [name + "_other"])


def test_dialect_reads_backticks_with_doubled_backticks() -> None:
    """A doubled backtick inside backticks is one backtick in the name."""
    checked = validate_query("SELECT * FROM `odd``name`", ["odd`name"])

    assert checked.tables == ("odd`name",)
    assert PodiumDuckDB.Tokenizer.IDENTIFIERS == ['"', "`"]


# -- the engine refuses before anything runs ---------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TABLE pwned AS SELECT 1",
        "SELECT 1; CREATE TABLE pwned AS SELECT 1",
        "WITH x AS (SELECT 1) SELECT * FROM x; CREATE TABLE pwned AS SELECT 1",
    ],
)
def test_engine_refuses_writes_and_nothing_is_written(engine: SQLEngine, query: str) -> None:
    """A refused statement never reaches DuckDB: the table does not appear."""
    with pytest.raises(ForbiddenQueryError):
        engine.query(query)

    tables = raw_connection(engine).sql("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("pwned",) not in tables


def test_engine_refuses_copy_and_no_file_is_written(engine: SQLEngine, tmp_path: Path) -> None:
    """``COPY ... TO`` is refused by every query method; the target file never appears."""
    target = tmp_path / "out.csv"
    query = f"COPY (SELECT * FROM other) TO '{target}'"

    for run in (engine.query, engine.query_arrow, engine.iter_query):
        with pytest.raises(ForbiddenQueryError):
            run(query)

    assert not target.exists()


# -- defence in depth: DuckDB itself, with validate_query bypassed --------------------------


def test_duckdb_refuses_reading_other_files(engine: SQLEngine) -> None:
    """The connection cannot read /etc/hostname even when asked directly."""
    con = raw_connection(engine)

    with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
        con.sql("SELECT * FROM read_text('/etc/hostname')").fetchall()


def test_duckdb_refuses_a_file_next_to_an_allowed_one(
    engine: SQLEngine, neighbour_file: Path
) -> None:
    """Only the sources' own files are allowed, not their folder."""
    con = raw_connection(engine)
    engine.query('SELECT COUNT(*) FROM "census-income"')  # the allowed file is readable

    with pytest.raises(duckdb.PermissionException):
        con.sql(f"SELECT * FROM read_csv('{neighbour_file}')").fetchall()


def test_duckdb_refuses_files_beside_a_parquet_folder_source(tmp_path: Path) -> None:
    """A folder source allows its Parquet files, not the folder's other files."""
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_parquet(folder / "one.parquet")
    notes = folder / "notes.csv"
    notes.write_text("private\nnot-for-you\n")
    with SQLEngine({"shards": ParquetSource(folder)}) as sql_engine:
        assert sql_engine.query("SELECT SUM(a) AS s FROM shards")["s"].tolist() == [3]

        with pytest.raises(duckdb.PermissionException):
            raw_connection(sql_engine).sql(f"SELECT * FROM read_csv('{notes}')").fetchall()


def test_duckdb_refuses_attach(engine: SQLEngine, tmp_path: Path) -> None:
    """ATTACH of a database file is refused and creates no file."""
    target = tmp_path / "other.duckdb"

    with pytest.raises(duckdb.PermissionException):
        raw_connection(engine).execute(f"ATTACH '{target}' AS o")

    assert not target.exists()


def test_duckdb_refuses_copy_to_a_file(engine: SQLEngine, tmp_path: Path) -> None:
    """COPY TO is refused by DuckDB too; no file is written."""
    target = tmp_path / "leak.csv"

    with pytest.raises(duckdb.PermissionException):
        raw_connection(engine).execute(f"COPY (SELECT 1) TO '{target}'")

    assert not target.exists()


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET allowed_paths = ['/etc/hostname']",
        "SET allowed_directories = ['/']",
        "SET lock_configuration = false",
        "RESET lock_configuration",
        "SET autoload_known_extensions = true",
        "SET memory_limit = '1TB'",
    ],
)
def test_duckdb_configuration_is_locked(engine: SQLEngine, statement: str) -> None:
    """No setting can change once the engine has connected."""
    con = raw_connection(engine)

    with pytest.raises(duckdb.Error, match="locked"):
        con.execute(statement)

    assert con.sql("SELECT current_setting('enable_external_access')").fetchall() == [(False,)]


@pytest.mark.parametrize("statement", ["INSTALL httpfs", "LOAD httpfs"])
def test_duckdb_refuses_extensions(engine: SQLEngine, statement: str) -> None:
    """Extensions can be neither installed nor loaded."""
    with pytest.raises(duckdb.Error, match="disabled"):
        raw_connection(engine).execute(statement)


def test_duckdb_does_not_scan_python_variables(engine: SQLEngine) -> None:
    """A DataFrame in the caller's scope is not reachable by name (no replacement scans)."""
    leak = pd.DataFrame({"secret": ["x"]})
    assert len(leak) == 1

    with pytest.raises(duckdb.CatalogException):
        raw_connection(engine).sql("SELECT * FROM leak").fetchall()


def test_duckdb_parser_refuses_a_second_statement_the_checks_missed(
    engine: SQLEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were validate_query fooled, DuckDB's own parser still runs only one SELECT."""
    smuggled = "SELECT 1; CREATE TABLE pwned AS SELECT 1"

    def fooled(sql: str, tables: object) -> ValidatedQuery:
        checked = validate_query("SELECT 1", TABLES)
        return ValidatedQuery(tree=checked.tree, tables=(), sql=smuggled)

    monkeypatch.setattr(sql_module, "validate_query", fooled)

    with pytest.raises(ForbiddenQueryError, match="not one SELECT"):
        engine.query("SELECT 1")

    tables = raw_connection(engine).sql("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("pwned",) not in tables


def test_duckdb_refusal_of_a_smuggled_file_read_is_a_forbidden_query(
    engine: SQLEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file read that got past the checks fails as ForbiddenQueryError, not a crash."""

    def fooled(sql: str, tables: object) -> ValidatedQuery:
        checked = validate_query("SELECT 1", TABLES)
        return ValidatedQuery(
            tree=checked.tree, tables=(), sql="SELECT * FROM read_text('/etc/hostname')"
        )

    monkeypatch.setattr(sql_module, "validate_query", fooled)

    with pytest.raises(ForbiddenQueryError, match="disabled by configuration"):
        engine.query("SELECT 1")


def test_ignored_column_is_not_in_the_view(engine: SQLEngine) -> None:
    """The table a query sees has no ignored column, even through ``SELECT *``."""
    frame = engine.query('SELECT * FROM "census-income"')

    assert list(frame.columns) == ["id", "city"]
    with pytest.raises(QueryExecutionError, match="secret"):
        engine.query('SELECT secret FROM "census-income"')
