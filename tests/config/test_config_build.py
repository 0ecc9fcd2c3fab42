"""Building data sources from datasource configs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from podium.config.build import build_datasource, build_datasources
from podium.config.loader import load_pod_config, validate_config
from podium.config.models import DatasourceConfig, PodConfig
from podium.core.errors import ConfigValidationError, UnknownDataSourceError
from podium.data.census import CENSUS_CATEGORICAL
from podium.data.sources.base import FileSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def frame_container(**data_config: object) -> DatasourceConfig:
    frame = pd.DataFrame({"file": ["a.png", "b.png"], "size": [1, 2], "secret": ["x", "y"]})
    args = {"data": frame}
    return DatasourceConfig.model_validate(
        {
            "datasource": "DataFrameSource",
            "name": "frame",
            "data_config": {"datasource_args": args, **data_config},
        }
    )


def test_ignore_cols_and_modifiers_reach_the_source(tmp_path: Path) -> None:
    """data_config.ignore_cols and modifiers are applied by the built source."""
    container = frame_container(ignore_cols=["secret"], modifiers={"file": {"prefix": "/img/"}})

    source = build_datasource(container, base_dir=tmp_path)

    frame = source.to_pandas()
    assert list(frame.columns) == ["file", "size"]
    assert frame["file"].tolist() == ["/img/a.png", "/img/b.png"]


def test_ignore_cols_given_twice_is_an_error(tmp_path: Path) -> None:
    """ignore_cols in both data_config and datasource_args is rejected, naming both."""
    container = frame_container(ignore_cols=["secret"])
    container.data_config.datasource_args["ignore_cols"] = ["size"]

    with pytest.raises(ConfigValidationError) as caught:
        build_datasource(container, base_dir=tmp_path)

    message = str(caught.value)
    assert "datasource 'frame': data_config.datasource_args.ignore_cols" in message
    assert "keep only data_config.ignore_cols" in message


def test_unexpected_argument_names_the_field(tmp_path: Path) -> None:
    """An argument the source does not take is a ConfigValidationError naming where it is."""
    container = frame_container()
    container.data_config.datasource_args["sheet"] = "x"

    with pytest.raises(ConfigValidationError, match="datasource 'frame': data_config"):
        build_datasource(container, base_dir=tmp_path)


def test_unknown_type_built_directly_is_refused(tmp_path: Path) -> None:
    """A container whose type was never validated still fails with UnknownDataSourceError."""
    container = DatasourceConfig.model_construct(
        datasource="NoSuchSource", name="x", data_config=frame_container().data_config
    )

    with pytest.raises(UnknownDataSourceError):
        build_datasource(container, base_dir=tmp_path)


def make_sqlite(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE visits (id INTEGER, notes TEXT)")
        conn.executemany("INSERT INTO visits VALUES (?, ?)", [(i, "n") for i in range(rows)])
    conn.close()


def test_relative_sqlite_url_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///file.db in a config is the file next to the config, not in the cwd."""
    config_dir = tmp_path / "pod"
    make_sqlite(config_dir / "data" / "clinic.db", rows=3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    container = DatasourceConfig.model_validate(
        {
            "datasource": "DatabaseSource",
            "name": "visits",
            "data_config": {
                "ignore_cols": ["notes"],
                "datasource_args": {"url": "sqlite:///data/clinic.db", "table": "visits"},
            },
        }
    )

    source = build_datasource(container, base_dir=config_dir)

    assert source.record_count() == 3
    assert source.column_names() == ["id"]


def test_relative_path_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """datasource_args.path is resolved against the folder of the config file."""
    config_path = tmp_path / "pod" / "pod.yaml"
    config_path.parent.mkdir()
    config_path.write_text(
        "name: scans\ndatasource: ImageSource\ndata_config:\n"
        "  datasource_args:\n    path: images\n    labels: labels/l.csv\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)

    sources = build_datasources(load_pod_config(config_path, environ={}))

    source = sources["scans"]
    assert isinstance(source, FileSource)
    assert source.path == config_path.resolve().parent / "images"
    assert getattr(source, "labels", None) == config_path.resolve().parent / "labels" / "l.csv"


def test_build_datasources_names_the_list_entry_in_errors() -> None:
    """Errors from building a multi-source pod name datasources[i] in the field path."""
    config = validate_config(
        PodConfig,
        {
            "name": "p",
            "datasources": [
                {
                    "datasource": "ImageSource",
                    "name": "a",
                    "data_config": {"datasource_args": {"path": "x"}},
                },
                {
                    "datasource": "ImageSource",
                    "name": "b",
                    "data_config": {"datasource_args": {"colour": 1}},
                },
            ],
        },
    )

    with pytest.raises(
        ConfigValidationError, match=r"datasources\[1\]\.data_config\.datasource_args"
    ):
        build_datasources(config)


def test_census_example_builds_the_census_source(census_csv: Path) -> None:
    """examples/census-income.yaml builds a CSVSource over the packaged census data."""
    config = load_pod_config(EXAMPLES / "census-income.yaml", environ={})

    source = build_datasources(config)["census-income"]

    assert isinstance(source, FileSource)
    assert source.path.resolve() == census_csv.resolve()
    assert source.record_count() == 32_561
    assert "fnlwgt" not in source.column_names()
    assert set(CENSUS_CATEGORICAL) <= set(source.column_names())


def test_multi_source_example_builds_two_sources() -> None:
    """examples/multi-source.yaml builds two sources with their own ignore_cols."""
    config = load_pod_config(EXAMPLES / "multi-source.yaml", environ={})

    sources = build_datasources(config)

    assert list(sources) == ["census-income", "census-work"]
    assert len(sources["census-income"].column_names()) == 13
    assert sources["census-work"].column_names() == [
        "age",
        "workclass",
        "occupation",
        "hours-per-week",
        "TARGET",
    ]
