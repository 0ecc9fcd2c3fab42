"""SQL on a pod calls only allowed functions: an allow list, checked on sqlglot's tree and again
on DuckDB's own parse, with every function DuckDB offers classified as allowed or refused.

The refusals matter because DuckDB must be able to read a CSV or Parquet source's files in
full: a function that binds SQL given as text, reveals a view's definition or plans a file
scan would show the columns the pod ignores.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel, SqlglotError

from podium.core.errors import ForbiddenQueryError
from podium.data import _sql_check
from podium.data._sql_check import ALLOWED_FUNCTIONS, PodiumDuckDB
from podium.data.sources.csv_source import CSVSource
from podium.data.sql import SQLEngine, validate_query

CENSUS = "census-income"
TABLES = ("people", "other")
SECRETS = ("tiger-lily", "moon-42", "sun-7")
REFUSED_LIST = Path(__file__).with_name("refused_sql_functions.txt")


def refused_functions() -> frozenset[str]:
    """The reviewed names of DuckDB functions a query may not call."""
    names: list[str] = []
    for line in REFUSED_LIST.read_text(encoding="utf-8").splitlines():
        names.extend(line.split("#", 1)[0].split())
    return frozenset(names)


REFUSED = refused_functions()


@pytest.fixture
def people_csv(tmp_path: Path) -> Path:
    """A CSV whose ``secret`` column the pod ignores."""
    path = tmp_path / "people.csv"
    rows = [
        f"{i},{city},{secret}"
        for i, (city, secret) in enumerate(zip("LYL", SECRETS, strict=True), 1)
    ]
    path.write_text("id,city,secret\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def people(people_csv: Path) -> Iterator[SQLEngine]:
    """An engine whose table ``people`` hides ``secret``."""
    with SQLEngine({"people": CSVSource(people_csv, ignore_cols=["secret"])}) as sql_engine:
        yield sql_engine


def sniffer_leak(path: Path) -> str:
    """The reviewer's exploit: plan read_csv on the raw file; the sniffer error echoes rows."""
    return (
        "SELECT json_serialize_plan(format('SELECT * FROM read_csv(''{}'', "
        "column_names=[''a'', ''b'', ''c'', ''d''], skip={})', '" + str(path) + "', i)) AS p "
        "FROM UNNEST(range(0, 4)) AS t(i)"
    )


# -- the reviewer's exploits ---------------------------------------------------------------


def test_sniffer_exploit_leaks_on_the_bare_connection(people: SQLEngine, people_csv: Path) -> None:
    """Without the checks the exploit works: DuckDB's lockdown alone does not hide ``secret``."""
    people.query("SELECT COUNT(*) FROM people")  # the view exists and its file is allowed

    plans = people._connection().sql(sniffer_leak(people_csv)).fetchall()

    assert any(secret in str(plans) for secret in SECRETS)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("SNIFFER", id="json_serialize_plan-sniffer"),
        pytest.param(
            "SELECT pg_get_viewdef(i) AS d FROM UNNEST(range(0, 100000)) AS t(i) "
            "WHERE pg_get_viewdef(i) LIKE 'CREATE VIEW%'",
            id="pg_get_viewdef-scan",
        ),
        pytest.param(
            "SELECT json_serialize_plan('SELECT id FROM read_csv(''PATH'') WHERE secret < ''m''', "
            "optimize := true) AS p",
            id="json_serialize_plan-optimizer-oracle",
        ),
        pytest.param(
            "SELECT \"JSON_SERIALIZE_PLAN\"('SELECT * FROM read_csv(''PATH'')') AS p",
            id="quoted-upper-case",
        ),
        pytest.param("SELECT 'SELECT * FROM read_csv(''PATH'')'.json_serialize_sql()", id="method"),
        pytest.param(
            "SELECT * FROM people WHERE city IN (SELECT json_deserialize_sql("
            "json_serialize_sql('SELECT secret FROM read_csv(''PATH'')')))",
            id="nested-in-subquery",
        ),
    ],
)
def test_exploits_are_refused_without_revealing_a_secret(
    people: SQLEngine, people_csv: Path, query: str
) -> None:
    """Each exploit is a ForbiddenQueryError naming the function; no ignored value leaks."""
    sql = sniffer_leak(people_csv) if query == "SNIFFER" else query.replace("PATH", str(people_csv))

    with pytest.raises(ForbiddenQueryError) as caught:
        people.query(sql)

    message = str(caught.value)
    assert "is not on the list of functions a query may call" in message
    assert "docs/sql.md" in message
    assert not any(secret in message for secret in SECRETS)


REVIEWED_EXTRAS = [
    "json_serialize_plan('SELECT 1')",
    "json_serialize_sql('SELECT 1')",
    "json_deserialize_sql('{}')",
    "pg_get_viewdef(1)",
    "pg_get_constraintdef(1)",
    "format_type(1, 1)",
    "get_block_size('memory')",
    "index_key('i', 1)",
    "sleep_ms(1000)",
    "pg_sleep(1)",
    "setseed(0.5)",
    "write_log('x')",
    "getvariable('x')",
    "current_setting('allowed_paths')",
    "current_query()",
    "list_aggregate([1], 'sum')",
    "nextval('s')",
    "error('boom')",
]


@pytest.mark.parametrize("call", REVIEWED_EXTRAS)
def test_functions_the_review_found_are_refused(call: str) -> None:
    """Every function the security review got past the old deny list is refused by name."""
    name = call.split("(", 1)[0]

    with pytest.raises(ForbiddenQueryError, match=rf"function {name}\(\) in .* not on the list"):
        validate_query(f"SELECT {call} AS x FROM people", TABLES)


# -- the allow list covers DuckDB's functions ----------------------------------------------


def test_every_duckdb_function_is_allowed_or_reviewed_as_refused() -> None:
    """A function a DuckDB upgrade adds fails here until someone classifies it."""
    with duckdb.connect() as con:
        rows = con.sql("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()
    offered = {str(row[0]).lower() for row in rows}

    unclassified = offered - ALLOWED_FUNCTIONS - REFUSED
    assert not unclassified, f"add each to ALLOWED_FUNCTIONS or {REFUSED_LIST.name}"
    assert not ALLOWED_FUNCTIONS & REFUSED
    assert offered >= ALLOWED_FUNCTIONS  # no misspelt allowed name


def test_every_refused_function_is_refused_by_name() -> None:
    """Each refused name, called bare or quoted, is refused naming it (none slips through)."""
    slipped: list[str] = []
    unnamed: list[str] = []
    for name in sorted(REFUSED):
        named = False
        for call in (f"{name}()", f"{name}(1)", f"{name}(1, 2)", f'"{name}"(1)'):
            try:
                validate_query(f"SELECT {call} FROM people", TABLES)
            except ForbiddenQueryError as exc:
                named = named or f"{name}() is not on the list" in str(exc).lower()
            else:
                slipped.append(call)
        if not named:
            unnamed.append(name)

    assert slipped == []
    assert unnamed == []


def test_every_allowed_function_passes_both_checks() -> None:
    """Each allowed function, in a call sqlglot can read, passes (sqlglot spellings agree)."""
    refused: dict[str, str] = {}
    for name in sorted(n for n in ALLOWED_FUNCTIONS if n.replace("_", "").isalnum()):
        sql = _first_readable_call(name)
        if sql is None:
            continue
        try:
            validate_query(sql, TABLES)
        except ForbiddenQueryError as exc:
            refused[sql] = str(exc)

    assert refused == {}


def _first_readable_call(name: str) -> str | None:
    for arguments in ("", "a", "a, b", "a, b, c"):
        sql = f"SELECT {name}({arguments}) FROM people"
        try:
            sqlglot.parse_one(sql, read=PodiumDuckDB).sql(
                dialect=PodiumDuckDB, unsupported_level=ErrorLevel.RAISE
            )
        except SqlglotError:
            continue
        return sql
    return None


# -- DuckDB's own parse is checked too -------------------------------------------------------


@pytest.fixture
def sqlglot_checks_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn off the sqlglot function check, leaving the DuckDB-parse check alone."""
    monkeypatch.setattr(_sql_check, "_check_functions", lambda query, allowed: None)


@pytest.mark.usefixtures("sqlglot_checks_off")
@pytest.mark.parametrize(
    ("query", "function"),
    [
        ("SELECT json_serialize_plan('SELECT 1') FROM people", "json_serialize_plan"),
        ("SELECT pg_get_viewdef(1)", "pg_get_viewdef"),
        ("SELECT id FROM people WHERE sleep_ms(10) IS NULL", "sleep_ms"),
        ("SELECT list_transform([1], x -> getvariable('v'))", "getvariable"),
        ("SELECT current_user", "current_user"),
        ("SELECT COUNT(*) OVER (ORDER BY setseed(0.1))", "setseed"),
    ],
)
def test_duckdb_parse_check_refuses_what_the_sqlglot_check_missed(
    query: str, function: str
) -> None:
    """With the sqlglot check off, DuckDB's parse of the SQL to run still refuses the call."""
    with pytest.raises(ForbiddenQueryError, match=rf"function {function}\(\) .* not on the list"):
        validate_query(query, TABLES)


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT * FROM read_csv('people.csv')", "read_csv"),
        ("SELECT * FROM 'people.csv'", "FROM item"),
        ("SELECT * FROM main.people", "FROM item"),
        ("SELECT * FROM (DESCRIBE people)", "FROM item"),
        ("SELECT * FROM range(3)", "FROM item"),
        ("SELECT * FROM duckdb_settings", "FROM item"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
    ],
)
def test_duckdb_parse_check_refuses_other_reads(sql: str, fragment: str) -> None:
    """DuckDB's parse allows only the pod's tables, CTEs, subqueries, VALUES and UNNEST."""
    with pytest.raises(ForbiddenQueryError, match=fragment):
        _sql_check._check_duckdb_reading(sql, TABLES)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT lower(city) FROM people JOIN other USING (id)",
        "WITH p AS (SELECT * FROM people) SELECT * FROM p, UNNEST([1, 2]) AS u(x)",
        "SELECT * FROM (VALUES (1)) AS v(a), (SELECT 1) AS s",
        "SELECT 1 +",  # DuckDB cannot parse it, so cannot run it: left to fail when run
    ],
)
def test_duckdb_parse_check_accepts_ordinary_queries(sql: str) -> None:
    """Tables, CTEs, joins, VALUES, UNNEST and subqueries pass the DuckDB-parse check."""
    _sql_check._check_duckdb_reading(sql, TABLES)


# -- allowed functions work on real data ----------------------------------------------------


@pytest.fixture(scope="module")
def census_frame(census_csv: Path) -> pd.DataFrame:
    """The census data as pandas reads it, for independent expectations."""
    return pd.read_csv(census_csv)


@pytest.fixture(scope="module")
def census(census_csv: Path) -> Iterator[SQLEngine]:
    """An engine over the census CSV, ``fnlwgt`` ignored."""
    with SQLEngine({CENSUS: CSVSource(census_csv, ignore_cols=["fnlwgt"])}) as sql_engine:
        yield sql_engine


def test_group_by_with_rounding_and_text_functions(
    census: SQLEngine, census_frame: pd.DataFrame
) -> None:
    """lower, round, avg, count, coalesce/nullif and string tests give pandas' answers."""
    result = census.query(
        "SELECT lower(coalesce(nullif(workclass, '?'), 'Unknown')) AS work, "
        "round(avg(age), 2) AS mean_age, count(*) AS n, "
        "count_if(starts_with(education, 'Some') OR contains(education, 'grad')) AS some "
        f'FROM "{CENSUS}" GROUP BY 1 ORDER BY 1'
    )

    frame = census_frame.assign(
        work=census_frame["workclass"].replace("?", "Unknown").str.lower(),
        some=census_frame["education"].str.startswith("Some")
        | census_frame["education"].str.contains("grad"),
    )
    expected = frame.groupby("work").agg(
        mean_age=("age", "mean"), n=("age", "size"), some=("some", "sum")
    )
    assert result["work"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(result["mean_age"].to_numpy(float), expected["mean_age"], atol=0.005)
    assert result["n"].tolist() == expected["n"].tolist()
    assert result["some"].tolist() == expected["some"].tolist()


def test_statistics_functions_match_numpy(census: SQLEngine, census_frame: pd.DataFrame) -> None:
    """median, stddev_samp, quantile_cont, corr and greatest/least agree with numpy."""
    result = census.query(
        "SELECT median(age) AS med, stddev_samp(age) AS sd, quantile_cont(age, 0.9) AS q90, "
        'corr(age, "hours-per-week") AS r, max(greatest(age, "hours-per-week")) AS top, '
        f'min(least(age, "hours-per-week")) AS bottom FROM "{CENSUS}"'
    ).iloc[0]

    age = census_frame["age"].to_numpy(float)
    hours = census_frame["hours-per-week"].to_numpy(float)
    np.testing.assert_allclose(
        [result["med"], result["sd"], result["q90"], result["r"]],
        [np.median(age), age.std(ddof=1), np.quantile(age, 0.9), np.corrcoef(age, hours)[0, 1]],
    )
    assert result["top"] == np.maximum(age, hours).max()
    assert result["bottom"] == np.minimum(age, hours).min()


def test_date_functions_on_a_generated_date(census: SQLEngine, census_frame: pd.DataFrame) -> None:
    """make_date, year, date_trunc, strftime and date_diff agree with pandas' dates."""
    result = census.query(
        'WITH d AS (SELECT make_date(1900 + age, 1 + age % 12, 1 + "hours-per-week" % 28) AS day '
        f'FROM "{CENSUS}") '
        "SELECT year(day) AS y, strftime(min(date_trunc('month', day)), '%Y-%m') AS first_month, "
        "sum(date_diff('day', DATE '1900-01-01', day)) AS days, count(*) AS n "
        "FROM d GROUP BY 1 ORDER BY 1"
    )

    days = pd.to_datetime(
        pd.DataFrame(
            {
                "year": 1900 + census_frame["age"],
                "month": 1 + census_frame["age"] % 12,
                "day": 1 + census_frame["hours-per-week"] % 28,
            }
        )
    )
    expected = (
        pd.DataFrame({"y": days.dt.year, "day": days})
        .groupby("y")
        .agg(first=("day", "min"), n=("day", "size"), days=("day", _days_since_1900))
    )
    assert result["y"].tolist() == expected.index.tolist()
    assert result["first_month"].tolist() == expected["first"].dt.strftime("%Y-%m").tolist()
    assert result["days"].tolist() == expected["days"].tolist()
    assert result["n"].tolist() == expected["n"].tolist()


def _days_since_1900(days: pd.Series) -> int:
    return int((days - pd.Timestamp("1900-01-01")).dt.days.sum())


def test_window_functions(census: SQLEngine, census_frame: pd.DataFrame) -> None:
    """row_number, dense_rank and lag over partitions agree with pandas."""
    result = census.query(
        "SELECT gender, age, "
        'row_number() OVER (PARTITION BY gender ORDER BY age DESC, "hours-per-week" DESC) AS rn, '
        "dense_rank() OVER (PARTITION BY gender ORDER BY age) AS age_rank, "
        "age - lag(age) OVER (PARTITION BY gender ORDER BY age) AS step "
        f'FROM "{CENSUS}" QUALIFY rn = 1 ORDER BY gender'
    )

    by_gender = census_frame.groupby("gender")["age"]
    assert result["gender"].tolist() == sorted(census_frame["gender"].unique())
    assert result["age"].tolist() == by_gender.max().tolist()
    assert result["age_rank"].tolist() == by_gender.nunique().tolist()
    assert (result["step"] >= 0).all()


def test_hashes_and_splits_match_python(census: SQLEngine, census_frame: pd.DataFrame) -> None:
    """md5, split_part, regexp_replace and length give Python's answers."""
    result = census.query(
        "SELECT DISTINCT md5(education) AS h, split_part(\"marital-status\", '-', 1) AS first, "
        "length(regexp_replace(education, '[^0-9]', '', 'g')) AS digits "
        f"FROM \"{CENSUS}\" WHERE education = '11th' AND \"marital-status\" = 'Never-married'"
    )

    rows = census_frame.query("education == '11th' and `marital-status` == 'Never-married'")
    education, status = rows[["education", "marital-status"]].drop_duplicates().iloc[0]
    assert result["h"].tolist() == [hashlib.md5(education.encode()).hexdigest()]
    assert result["first"].tolist() == [status.split("-")[0]]
    assert result["digits"].tolist() == [len(re.sub(r"[^0-9]", "", education))]


def test_docs_list_exactly_the_allowed_functions() -> None:
    """docs/sql.md's "Functions" section names every allowed function and no other."""
    docs = (Path(__file__).parents[2] / "docs" / "sql.md").read_text(encoding="utf-8")
    section = docs.split("## Functions", 1)[1].split("- **Operators**", 1)[0]
    listed = set(re.findall(r"`([a-z_0-9]+)`", section)) | {"version"}

    named = {name for name in ALLOWED_FUNCTIONS if re.fullmatch(r"[a-z_0-9]+", name)}
    assert listed == named
