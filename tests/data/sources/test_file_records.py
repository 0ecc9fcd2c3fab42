"""FileSource.files(): a file that cannot be hashed is a read error, not an OSError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from podium.core.errors import DataSourceReadError
from podium.data.sources.base import FileSource


class _FolderSource(FileSource):
    """A file source whose one "file" is whatever path it was given, unchecked."""

    kind = "FolderSource"

    def _raw_columns(self) -> list[str]:
        return []

    def _raw_record_count(self) -> int:
        return 0

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        yield from ()


def test_unhashable_file_is_a_read_error(tmp_path: Path) -> None:
    """files() on a path that cannot be opened raises DataSourceReadError naming it."""
    folder = tmp_path / "images.csv"
    folder.mkdir()

    with pytest.raises(DataSourceReadError, match=r"images\.csv.*Is a directory"):
        _FolderSource(folder).files()
