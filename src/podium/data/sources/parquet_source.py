"""Parquet data: one file, or a folder of ``*.parquet`` files read as one table."""

from __future__ import annotations

from pathlib import Path

from podium.core.errors import DataSourceNotFoundError
from podium.data.sources._duckdb_file import DuckDBFileSource, sql_string_literal

__all__ = ["ParquetSource"]


class ParquetSource(DuckDBFileSource):
    """A Parquet file, or a folder whose ``*.parquet`` files share one set of columns.

    A folder's files (not its sub-folders) are read in name order, so records keep a
    stable order. Columns are matched by name across files.

    Args:
        path: The ``.parquet`` file or the folder.
        ignore_cols: Columns left out of everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` for string values.
        seed: Seed for anything random done with this source.
        batch_rows: Default number of rows per batch.
    """

    kind = "ParquetSource"

    def _paths(self) -> list[Path]:
        self._require_exists()
        if not self.path.is_dir():
            return [self.path]
        files = sorted(p for p in self.path.glob("*.parquet") if p.is_file())
        if not files:
            raise DataSourceNotFoundError(
                f"{self.describe()}: the folder {self.path} holds no *.parquet files. Point "
                f"datasource_args.path at a Parquet file or a folder of them."
            )
        return files

    def duckdb_scan(self, *, verified: bool = True) -> str:
        paths = [sql_string_literal(str(p.resolve())) for p in self._paths()]
        if len(paths) == 1:
            return f"read_parquet({paths[0]})"
        return f"read_parquet([{', '.join(paths)}])"

    def _read_hint(self) -> str:
        return (
            "Check that every file is a complete Parquet file (not another format renamed) "
            "and that all files in a folder have the same column names."
        )

    def _where(self) -> str:
        kind = "folder" if self.path.is_dir() else "file"
        return f"the Parquet {kind} {self.path}"
