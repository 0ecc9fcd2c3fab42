"""How the SQL engine exposes file sources: ignored columns and modifiers in the view."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.core.errors import ConfigValidationError, QueryExecutionError
from podium.data.sources.csv_source import CSVSource
from podium.data.sql import SQLEngine


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("id,scan,secret\n1,a.png,x\n2,b.png,y\n")
    return path


def test_view_keeps_column_order_and_applies_modifiers(people: Path) -> None:
    """The table shows the file's columns in order, less ignored ones, with modifiers applied."""
    source = CSVSource(people, ignore_cols=["secret"], modifiers={"scan": {"prefix": "/img/"}})
    with SQLEngine({"people": source}) as engine:
        result = engine.query('SELECT * FROM "people" ORDER BY id')

    assert list(result.columns) == ["id", "scan"]
    assert list(result["scan"]) == ["/img/a.png", "/img/b.png"]


def test_ignored_column_cannot_be_queried(people: Path) -> None:
    """An ignored column does not exist for SQL."""
    with (
        SQLEngine({"people": CSVSource(people, ignore_cols=["secret"])}) as engine,
        pytest.raises(QueryExecutionError, match="secret"),
    ):
        engine.query('SELECT secret FROM "people"')


def test_modifier_on_an_ignored_column_is_harmless(people: Path) -> None:
    """A modifier for a column that is also ignored changes nothing and breaks nothing."""
    source = CSVSource(people, ignore_cols=["secret"], modifiers={"secret": {"prefix": "!"}})
    with SQLEngine({"people": source}) as engine:
        assert list(engine.query('SELECT * FROM "people"').columns) == ["id", "scan"]


def test_unknown_ignored_column_is_a_config_error(people: Path) -> None:
    """ignore_cols naming no column is a ConfigValidationError naming the field."""
    with (
        SQLEngine({"people": CSVSource(people, ignore_cols=["nope"])}) as engine,
        pytest.raises(ConfigValidationError, match=r"ignore_cols.*nope"),
    ):
        engine.query('SELECT * FROM "people"')


def test_modifiers_give_the_same_text_in_batches_and_sql(tmp_path: Path) -> None:
    """Modified columns read the same through iter_batches and through SQL, gaps included."""
    path = tmp_path / "mixed.csv"
    path.write_text("b,i,f,s\ntrue,1,1.5,a\n,,,\nfalse,3,2.0,c\n")
    mods = {c: {"prefix": "<", "suffix": ">"} for c in ("b", "i", "f", "s")}
    source = CSVSource(path, modifiers=mods)

    batches = source.to_pandas()
    with SQLEngine({"t": source}) as engine:
        queried = engine.query("SELECT * FROM t")

    assert batches["b"].dropna().tolist() == ["<true>", "<false>"]
    assert batches["i"].dropna().tolist() == ["<1>", "<3>"]
    for column in ("b", "i", "f", "s"):
        assert batches[column].dropna().tolist() == queried[column].dropna().tolist(), column
        assert batches[column].isna().tolist() == queried[column].isna().tolist(), column
