"""The shared base of file sources that DuckDB scans in place (CSV, Parquet).

Every query runs on a private in-memory DuckDB connection that may open exactly the
source's own files and nothing else (:func:`restricted_connection`); the SQL engine uses
the same helper. Batches stream out of DuckDB as Arrow record batches and become pandas
frames with the same dtypes in every batch (:func:`arrow_to_frame`).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from podium.core.errors import (
    ConfigValidationError,
    DataSourceError,
    DataSourceNotFoundError,
    DataSourceReadError,
)
from podium.data._text import quote_identifier, sql_string_literal
from podium.data.sources.base import FileSource

__all__ = [
    "DuckDBFileSource",
    "arrow_to_frame",
    "csv_error_summary",
    "data_free_error_summary",
    "duckdb_error_summary",
    "quote_identifier",
    "restricted_connection",
    "sql_string_literal",
]

_T = TypeVar("_T")

#: DuckDB messages that mean the file is not there (rather than unreadable).
_NOT_FOUND_MARKERS = ("No files found", "No such file or directory")

#: Where DuckDB's advice starts; it names DuckDB options a pod owner cannot set.
_ADVICE_MARKERS = (
    "Possible fix",
    "Possible Solution",
    "Possible solutions",
    "If you are trying",
    "  file = ",
)

#: DuckDB's error class prefix, such as ``Invalid Input Error: ``.
_ERROR_PREFIX = re.compile(r"^[A-Z][A-Za-z ]* Error: ")

#: Signs of an error met while parsing a CSV file; such messages quote the file's content.
_CSV_ERROR_MARKERS = (
    "CSV Error on Line",
    "Original Line:",
    "when sniffing file",
    "Detected row as",
)
_CSV_ERROR_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_COLUMN_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_CSV_CONVERSION = re.compile(
    r'Error when converting column "(.*?)"\..* to \'([^\']*)\'$', re.MULTILINE
)

#: Arrow integer types map to pandas' nullable integers so that a batch with a missing
#: value has the same dtype as one without; booleans likewise.
_NULLABLE_DTYPES: dict[pa.DataType, pd.api.extensions.ExtensionDtype] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def restricted_connection(
    paths: Sequence[Path], *, memory_limit: str | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection that can read exactly ``paths``.

    External access is disabled, extensions are neither installed nor loaded on demand,
    names never resolve to Python variables (no replacement scans), and the configuration
    is locked, so no later statement can widen the access. Paths are resolved to absolute
    paths; scans must name them the same way.
    """
    allowed = ", ".join(sql_string_literal(str(Path(p).resolve())) for p in paths)
    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    if threads is not None:
        config["threads"] = threads
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise ConfigValidationError(
            f"DuckDB rejected memory_limit={memory_limit!r} or threads={threads!r}: "
            f"{duckdb_error_summary(exc)}. Use a size such as '2GB' and a positive thread count."
        ) from exc
    try:
        # The order matters: allowed_paths cannot be set once external access is off,
        # and nothing can be set once the configuration is locked.
        con.execute(f"SET allowed_paths=[{allowed}]")
        con.execute("SET enable_external_access=false")
        con.execute("SET autoinstall_known_extensions=false")
        con.execute("SET autoload_known_extensions=false")
        # No replacement scans: a table name must never resolve to a Python variable.
        con.execute("SET python_enable_replacements=false")
        con.execute("SET enable_progress_bar=false")  # library code never prints
        con.execute("SET lock_configuration=true")
    except duckdb.Error:
        con.close()
        raise
    return con


def duckdb_error_summary(exc: BaseException | str) -> str:
    """DuckDB's message (an exception or its text) without its advice section, on one line."""
    kept: list[str] = []
    for line in str(exc).splitlines():
        if any(line.startswith(marker) for marker in _ADVICE_MARKERS):
            break
        if line.strip():
            kept.append(line.strip())
    return _ERROR_PREFIX.sub("", " ".join(kept)).rstrip(".")


def csv_error_summary(exc: BaseException) -> str | None:
    """A CSV parsing error of DuckDB told without the file's content; None for other errors.

    DuckDB's CSV errors quote the file's raw content (the failing line, a detected header
    row, column names, values -- ignored columns included). What is kept: the line number;
    for a value that does not convert, its column and the type; otherwise the column
    counts where they are the problem, with a note that the pod owner must fix the file.
    """
    text = str(exc)
    if not any(marker in text for marker in _CSV_ERROR_MARKERS):
        return None
    line = _CSV_ERROR_LINE.search(text)
    where = f" at line {line.group(1)}" if line else ""
    conversion = _CSV_CONVERSION.search(text)
    if conversion is not None:
        column, target = conversion.groups()
        return (
            f"column {quote_identifier(column)} has a value{where} of its data file that "
            f"cannot be converted to {target}"
        )
    count = _CSV_COLUMN_COUNT.search(text)
    why = f" (expected {count.group(1)} columns, found {count.group(2)})" if count else ""
    return (
        f"a data file of this pod cannot be parsed{where}{why}; the pod owner must fix the "
        f"file or its datasource_args (the pod's log has the details)"
    )


def data_free_error_summary(exc: BaseException) -> str:
    """DuckDB's message for someone who may not see the raw data behind a pod's tables.

    A CSV parsing error is :func:`csv_error_summary`; any other is :func:`duckdb_error_summary`.
    """
    return csv_error_summary(exc) or duckdb_error_summary(exc)


def _pandas_dtype(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    return _NULLABLE_DTYPES.get(arrow_type)


def _target_schema(schema: pa.Schema) -> pa.Schema:
    """Decimals (and DuckDB's HUGEINT, exported as decimal) become float64."""
    fields = [
        field.with_type(pa.float64()) if pa.types.is_decimal(field.type) else field
        for field in schema
    ]
    return pa.schema(fields)


def arrow_to_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """Convert an Arrow batch to pandas with batch-independent dtypes.

    Integers and booleans become pandas' nullable dtypes (``Int64``, ``boolean``),
    decimals ``float64``, dates ``datetime64``, text pandas' ``str``; floats keep NaN for
    missing values. The dtypes depend only on the Arrow schema, never on the values.
    """
    target = _target_schema(batch.schema)
    if target != batch.schema:
        batch = batch.cast(target)
    frame: pd.DataFrame = batch.to_pandas(types_mapper=_pandas_dtype, date_as_object=False)
    return frame


class DuckDBFileSource(FileSource):
    """A file source that DuckDB reads natively; subclasses give the table expression.

    Column names come from ``DESCRIBE``, the record count from ``COUNT(*)``, and batches
    stream from ``SELECT *`` in bounded Arrow batches, so a file larger than memory is
    never loaded whole.
    """

    @abstractmethod
    def duckdb_scan(self, *, verified: bool = True) -> str:
        """The DuckDB table expression that reads exactly the files of ``files()``."""

    # -- overridable pieces --------------------------------------------------------------

    def _metadata_scan(self) -> str:
        """The expression used for names and counts; may skip work ``duckdb_scan`` does."""
        return self.duckdb_scan()

    def _read_error(self, exc: Exception) -> DataSourceError:
        """Translate an error DuckDB raised while reading this source."""
        summary = duckdb_error_summary(exc)
        if any(marker in summary for marker in _NOT_FOUND_MARKERS):
            return DataSourceNotFoundError(
                f"{self.describe()}: a file is missing ({summary}). Check "
                f"datasource_args.path and that no other process removed the file."
            )
        return DataSourceReadError(
            f"{self.describe()}: cannot read {self._where()}: {summary}. {self._read_hint()}"
        )

    def _read_hint(self) -> str:
        """How to fix an unreadable file; subclasses name their own options."""
        return "Check that the file is complete, readable and of the expected format."

    # -- the raw interface ---------------------------------------------------------------

    def _raw_columns(self) -> list[str]:
        rows = self._query(lambda con: con.sql(f"DESCRIBE SELECT * FROM {self._metadata_scan()}"))
        return [str(row[0]) for row in rows]

    def _raw_record_count(self) -> int:
        rows = self._query(lambda con: con.sql(f"SELECT COUNT(*) FROM {self._metadata_scan()}"))
        count = rows[0][0]
        assert isinstance(count, int)  # COUNT(*) is a BIGINT
        return count

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        scan = self.duckdb_scan()
        con = self._connect()
        try:
            try:
                reader = con.sql(f"SELECT * FROM {scan}").to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise self._read_error(exc) from exc
            if reader is None:  # only for statements without a result, never a SELECT
                return
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (duckdb.Error, OSError) as exc:
                    # Errors inside DuckDB's stream reach us through Arrow as OSError.
                    raise self._read_error(exc) from exc
                for start in range(0, batch.num_rows, batch_rows):
                    yield arrow_to_frame(batch.slice(start, batch_rows))
        finally:
            con.close()

    # -- helpers -------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        paths = self._paths()
        try:
            return restricted_connection(paths)
        except duckdb.Error as exc:
            raise self._read_error(exc) from exc

    def _query(
        self, run: Callable[[duckdb.DuckDBPyConnection], duckdb.DuckDBPyRelation]
    ) -> list[tuple[object, ...]]:
        """Run one query on a fresh restricted connection and fetch every row."""
        return self._with_connection(lambda con: run(con).fetchall())

    def _with_connection(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        con = self._connect()
        try:
            return work(con)
        except duckdb.Error as exc:
            raise self._read_error(exc) from exc
        finally:
            con.close()

    def _where(self) -> str:
        return str(self.path)
