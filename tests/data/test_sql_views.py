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
