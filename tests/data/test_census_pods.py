"""Writing the census data as several pods' CSVs and configs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from podium.config import build_datasources, load_pod_config
from podium.core.errors import DataSourceError
from podium.data.census import write_census_pods


def test_pods_hold_every_row_once_and_load_as_configs(tmp_path: Path) -> None:
    """The shares partition the data, and each config loads and reads its own CSV."""
    pods = write_census_pods(tmp_path, 3, by="relationship", seed=4)

    assert [p.name for p in pods] == ["census-1", "census-2", "census-3"]
    assert sum(p.rows for p in pods) == 32_561
    values: list[set[str]] = []
    for pod in pods:
        config = load_pod_config(pod.config)
        source = build_datasources(config)[pod.name]
        frame = source.to_pandas()
        assert config.name == pod.name
        assert len(frame) == pod.rows
        assert "fnlwgt" not in frame.columns
        values.append(set(frame["relationship"]))
    assert all(a.isdisjoint(b) for i, a in enumerate(values) for b in values[i + 1 :])


def test_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    """Two runs with one seed write identical CSVs."""
    first = write_census_pods(tmp_path / "a", 2, seed=9)
    second = write_census_pods(tmp_path / "b", 2, seed=9)
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(pd.read_csv(a.csv), pd.read_csv(b.csv))


def test_unwritable_folder_is_a_data_error(tmp_path: Path) -> None:
    """A folder that cannot be made is a DataSourceError naming it; nothing is written."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataSourceError, match="Cannot write the census pods"):
        write_census_pods(blocker / "pods", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
