"""The one interface every data source implements.

A data source is a table of records that a pod reads in bounded batches. Constructing a
source does no I/O: files are opened when a method that needs them is called. Column
selection (``ignore_cols``) and path modifiers (``modifiers``) are applied here, once, for
every kind of source, so that schema inference, SQL and training see the same columns.

Subclasses implement three raw methods (``_raw_columns``, ``_raw_record_count``,
``_iter_raw_batches``); file-based sources also implement ``_paths``. Sources that DuckDB
can scan natively (CSV, Parquet) return a table expression from ``duckdb_scan``; the SQL
engine then queries the file in place instead of streaming batches through Python.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from podium.core.errors import (
    ConfigValidationError,
    DataSourceNotFoundError,
    DataSourceReadError,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DataSource",
    "FileRecord",
    "FileSource",
    "Modifier",
    "hash_file",
]

#: Rows per batch unless a caller asks for another size. Small enough that a batch of a
#: wide table stays in tens of MiB, large enough that per-batch overhead is negligible.
DEFAULT_BATCH_ROWS = 50_000

_HASH_CHUNK = 1 << 20


class Modifier(BaseModel):
    """Text added before and after every value of a column (Bitfount's ``modifiers``).

    Typical use: a column of image file names made into full paths with a ``prefix``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file behind a file-based source: its content hash and modification time."""

    path: Path
    sha256: str
    size: int
    modified: float


def hash_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DataSource(ABC):
    """A table of records read in bounded batches.

    Args:
        ignore_cols: Columns dropped from everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` added to every (string) value.
        seed: Seed for anything random done with this source (shuffles, splits).
        batch_rows: Default number of rows per batch.
    """

    #: The type name used in YAML (``datasource: CSVSource``).
    kind: ClassVar[str] = "DataSource"

    def __init__(
        self,
        *,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        if batch_rows < 1:
            raise ConfigValidationError(
                f"{self.kind}: batch_rows must be at least 1, got {batch_rows}."
            )
        self.ignore_cols: tuple[str, ...] = tuple(ignore_cols)
        self.modifiers: dict[str, Modifier] = {
            col: mod if isinstance(mod, Modifier) else Modifier.model_validate(mod)
            for col, mod in (modifiers or {}).items()
        }
        self.seed = seed
        self.batch_rows = batch_rows

    # -- what subclasses implement -------------------------------------------------------

    @abstractmethod
    def _raw_columns(self) -> list[str]:
        """Every column of the underlying data, before ``ignore_cols``."""

    @abstractmethod
    def _raw_record_count(self) -> int:
        """The number of records."""

    @abstractmethod
    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        """Yield the data in order, at most ``batch_rows`` rows per frame, all columns."""

    # -- the public interface ------------------------------------------------------------

    def column_names(self) -> list[str]:
        """The columns this source yields: the underlying ones less ``ignore_cols``."""
        columns = self._raw_columns()
        self._check_known_columns(columns)
        ignored = set(self.ignore_cols)
        return [c for c in columns if c not in ignored]

    def record_count(self) -> int:
        """The number of records."""
        return self._raw_record_count()

    def iter_batches(self, batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """Yield the records in order as frames of at most ``batch_rows`` rows.

        ``ignore_cols`` are dropped and ``modifiers`` applied. Memory stays bounded by the
        batch size whatever the size of the source.
        """
        size = batch_rows or self.batch_rows
        keep = self.column_names()
        for batch in self._iter_raw_batches(size):
            yield self._apply_modifiers(batch[keep])

    def to_pandas(self, *, max_rows: int | None = None) -> pd.DataFrame:
        """Load the source (or its first ``max_rows`` rows) as one frame.

        Only for data known to fit in memory; everything else uses ``iter_batches``.
        """
        frames: list[pd.DataFrame] = []
        taken = 0
        for batch in self.iter_batches():
            if max_rows is not None and taken + len(batch) >= max_rows:
                frames.append(batch.iloc[: max_rows - taken])
                break
            frames.append(batch)
            taken += len(batch)
        if not frames:
            return pd.DataFrame(columns=self.column_names())
        return pd.concat(frames, ignore_index=True)

    def files(self) -> list[FileRecord]:
        """The files behind this source with content hashes; empty for non-file sources."""
        return []

    def unavailable(self) -> str | None:
        """Why the data cannot be read right now (a file gone, say), or None when it can.
        Cheap: a pod asks before admitting each task."""
        return None

    def duckdb_scan(self, *, verified: bool = True) -> str | None:
        """A DuckDB table expression that reads the raw data in place, if there is one.

        With ``verified=False`` a source may return a cheaper expression whose column types
        were guessed from a sample (CSV). Reading it either gives exactly what the verified
        expression gives or fails with ``duckdb.ConversionException``; a caller that gets
        that exception falls back to the verified expression.

        Returning an expression (for example ``read_csv('/data/x.csv', header=true)``)
        lets the SQL engine and schema inference push work into DuckDB. The paths it reads
        must be exactly those of ``files()``.
        """
        return None

    def describe(self) -> str:
        """A short human description, such as ``CSVSource(/data/census.csv)``."""
        return f"{self.kind}()"

    # -- helpers -------------------------------------------------------------------------

    def _check_known_columns(self, columns: Sequence[str]) -> None:
        known = set(columns)
        for field, names in (
            ("ignore_cols", list(self.ignore_cols)),
            ("modifiers", list(self.modifiers)),
        ):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigValidationError(
                    f"{self.describe()}: {field} names column(s) {unknown} that the data "
                    f"does not have; the columns are {list(columns)}. Fix the names in "
                    f"data_config.{field}."
                )

    def _apply_modifiers(self, batch: pd.DataFrame) -> pd.DataFrame:
        if not self.modifiers:
            return batch
        batch = batch.copy()
        for column, mod in self.modifiers.items():
            if column in batch.columns:
                batch[column] = _modified(batch[column], mod)
        return batch


def _modified(values: pd.Series, mod: Modifier) -> pd.Series:
    """``prefix + value + suffix`` as text, written as DuckDB's ``CAST(x AS VARCHAR)`` writes
    it (booleans ``true``/``false``), so batches and SQL give the same text; missing stays
    missing."""
    if pd.api.types.is_bool_dtype(values):
        text = values.map({True: "true", False: "false"}).astype("str")
    else:
        text = values.astype("str")
    return (mod.prefix + text + mod.suffix).where(values.notna())


class FileSource(DataSource):
    """A source backed by one or more files on the pod's disk.

    Args:
        path: The file (or folder, for sources that read folders).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(
            ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        self.path = Path(path).expanduser()

    def _paths(self) -> list[Path]:
        """The files this source reads, in a stable order. Default: ``self.path``."""
        self._require_exists()
        return [self.path]

    def _walk_folder(
        self, what: str, accept: Callable[[Path], bool], hint: str
    ) -> list[tuple[str, Path]]:
        """Every accepted file under the folder ``path``, sorted, hidden entries skipped.

        Returns (relative POSIX path, absolute path) pairs. ``what`` names the files in
        errors ("images"); ``hint`` says which setting to check when none are found.
        """
        self._require_exists()
        if not self.path.is_dir():
            raise DataSourceNotFoundError(
                f"{self.describe()}: {self.path} is a file, not a folder. Point "
                f"datasource_args.path at the folder that holds the {what}."
            )
        root = self.path.resolve()
        found: list[tuple[str, Path]] = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                file = Path(folder, name)
                if not name.startswith(".") and accept(file):
                    found.append((file.relative_to(root).as_posix(), file))
        if not found:
            raise DataSourceNotFoundError(f"{self.describe()}: no {what} under {root}. {hint}")
        found.sort(key=lambda item: item[0])
        return found

    def unavailable(self) -> str | None:
        if not self.path.exists():
            return f"{self.describe()}: {self.path} is gone"
        if not os.access(self.path, os.R_OK):
            return f"{self.describe()}: {self.path} cannot be read"
        return None

    def _require_exists(self) -> None:
        if not self.path.exists():
            raise DataSourceNotFoundError(
                f"{self.kind}: {self.path} does not exist. Check datasource_args.path "
                f"(relative paths are resolved against the config file's folder)."
            )

    def files(self) -> list[FileRecord]:
        records = []
        for path in self._paths():
            try:
                stat = path.stat()
                digest = hash_file(path)
            except OSError as exc:
                raise DataSourceReadError(
                    f"{self.describe()}: cannot read {path} ({exc.strerror or exc}). Check "
                    f"that it is a file and that the pod's user may read it."
                ) from exc
            records.append(
                FileRecord(
                    path=path.resolve(),
                    sha256=digest,
                    size=stat.st_size,
                    modified=stat.st_mtime,
                )
            )
        return records

    def describe(self) -> str:
        return f"{self.kind}({self.path})"
