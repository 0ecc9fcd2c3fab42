"""SQL on a pod's data: DuckDB over the pod's sources, or the source database itself.

Each source is a table named by its datasource name (``SELECT COUNT(*) FROM
"census-income"``; Bitfount's backticks work too). Every query is checked first by
:func:`validate_query`: exactly one read-only query over the pod's tables. It then runs:

* **pushed down** to the database, when every table it reads is a ``DatabaseSource`` of
  one and the same database: each table reference becomes a subquery over the source's
  relation (only the kept columns, modifiers applied), the query is translated to the
  database's dialect with sqlglot (every name quoted, so column names must match the
  database's exactly) and runs in the source's read-only transaction; functions sqlglot
  does not know are refused there, as they would reach the database untranslated, and
  so are functions that name the server, database or user (``version()``, ...); the
  query's CTEs are renamed so that none can stand in for a table the owner's SQL reads
  (see :mod:`podium.data._sql_pushdown`);
* otherwise **in DuckDB**, in memory: CSV and Parquet files are queried in place through
  views (``duckdb_scan``), DataFrames are registered without copying (unless modifiers
  apply), and every other source (Excel, images, DICOM, a database in a mixed query) is
  loaded into a DuckDB table batch by batch the first time a query reads it.

The DuckDB connection is locked down before any query runs: it may read exactly the files
of the pod's CSV and Parquet sources (``allowed_paths``), external access is off,
extensions never load or install, Python replacement scans are off and the configuration
is locked, so even a query that slipped past the checks could not read other files,
attach databases, COPY, install extensions or change a setting.

Errors are written for a caller who may be a modeller: they never quote the raw data
(DuckDB's CSV errors quote whole lines, ignored columns included, so only the line number
is kept), and a source that fails names only its table, while its own message -- paths,
the database URL, the text of a ``query:`` -- goes to the pod's log for the owner.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar, cast

import duckdb
import pandas as pd
import pyarrow as pa

from podium.core.errors import (
    ConfigValidationError,
    DataSourceError,
    DataSourceReadError,
    ForbiddenQueryError,
    QueryError,
    QueryExecutionError,
)
from podium.data._sql_check import (
    ValidatedQuery,
    check_pushdown,
    validate_query,
)
from podium.data._sql_pushdown import pushdown_sql, refuse_server_functions
from podium.data._text import one_line, quote_identifier, sql_string_literal
from podium.data.sources._duckdb_file import (
    arrow_to_frame,
    csv_error_summary,
    data_free_error_summary,
    duckdb_error_summary,
    restricted_connection,
)
from podium.data.sources.base import DEFAULT_BATCH_ROWS, DataSource, FileSource
from podium.data.sources.frame_source import DataFrameSource

if TYPE_CHECKING:
    from podium.data.sources.database_source import DatabaseSource

__all__ = ["DEFAULT_MEMORY_LIMIT", "SQLEngine", "ValidatedQuery", "validate_query"]

logger = logging.getLogger("podium.data.sql")

_T = TypeVar("_T")
_DATABASE_MODULE = "podium.data.sources.database_source"
_BATCH_VIEW = "podium_batch"
#: DuckDB's memory cap per engine unless the caller sets one (DuckDB's own default is 80%
#: of the machine's memory): a query that needs more fails instead of starving the pod.
DEFAULT_MEMORY_LIMIT = "2GB"


class SQLEngine:
    """Run checked, read-only SQL over a pod's data sources.

    Args:
        sources: Datasource name -> source. Each name is a table in SQL.
        memory_limit: DuckDB's memory limit, such as ``"2GB"`` (DuckDB's default if None).
        threads: DuckDB's worker threads (DuckDB's default if None).

    Nothing is opened until the first query. Use it as a context manager or call
    :meth:`close`. Queries may run from several threads; each runs on its own cursor.
    """

    def __init__(
        self,
        sources: Mapping[str, DataSource],
        *,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
    ) -> None:
        empty = [name for name in sources if not name.strip()]
        if empty:
            raise ConfigValidationError(
                "SQLEngine: a datasource name is empty; every source needs a name to be "
                "queried by (the datasource's name in the pod config)."
            )
        if threads is not None and threads < 1:
            raise ConfigValidationError(f"SQLEngine: threads must be at least 1, got {threads}.")
        self._sources: dict[str, DataSource] = dict(sources)
        self._memory_limit = memory_limit
        self._threads = threads
        self._lock = threading.RLock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._frames: dict[str, pd.DataFrame] = {}
        self._ready: set[str] = set()
        self._guessed: set[str] = set()
        self._columns: dict[str, list[str]] = {}
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def tables(self) -> list[str]:
        """The table names queries may read: the datasource names, in the given order."""
        return list(self._sources)

    def close(self) -> None:
        """Close the DuckDB connection; the engine cannot be used afterwards."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._closed = True
            self._frames.clear()
        if conn is not None:
            conn.close()
            logger.debug("closed the DuckDB connection")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------------

    def query(self, sql: str) -> pd.DataFrame:
        """Run one query and return its whole result as a DataFrame.

        Raises:
            ForbiddenQueryError: The query is not one read-only SELECT over the tables.
            QueryExecutionError: The query is allowed but failed (unknown column, ...).
        """
        checked = validate_query(sql, self._sources)
        database = self._pushdown_source(checked)
        if database is not None:
            frames = list(self._run_pushdown(checked, database, None))
            return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        table = self._arrow_table(checked)
        # The same conversion as each batch of iter_query (a Table converts like a batch).
        return arrow_to_frame(table)

    def query_arrow(self, sql: str) -> pa.Table:
        """Run one query and return its whole result as an Arrow table.

        Raises:
            ForbiddenQueryError: The query is not one read-only SELECT over the tables.
            QueryExecutionError: The query is allowed but failed.
        """
        checked = validate_query(sql, self._sources)
        database = self._pushdown_source(checked)
        if database is not None:
            frames = list(self._run_pushdown(checked, database, None))
            return pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
        return self._arrow_table(checked)

    def iter_query(
        self, sql: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pd.DataFrame]:
        """Run one query and yield its result in frames of at most ``batch_rows`` rows.

        The result streams: memory stays bounded by the batch size, whatever the size of
        the result. The query is checked and started when this is called, so a refused
        or unbindable query raises here, not at the first ``next()``.

        Raises:
            ForbiddenQueryError: The query is not one read-only SELECT over the tables.
            QueryExecutionError: The query is allowed but failed.
        """
        if batch_rows < 1:
            raise ConfigValidationError(
                f"iter_query: batch_rows must be at least 1, got {batch_rows}."
            )
        checked = validate_query(sql, self._sources)
        database = self._pushdown_source(checked)
        if database is not None:
            frames = self._run_pushdown(checked, database, batch_rows)
            first = next(frames, None)  # runs the query now, as the DuckDB path binds now
            return iter(()) if first is None else _chain(first, frames)
        # A stream cannot start again half-way, so it reads only verified column types.
        self._verify_views(checked.tables)
        stack = ExitStack()
        try:
            relation = stack.enter_context(self._relation(checked))
            reader = _guard(checked.sql, lambda: relation.to_arrow_reader(batch_rows))
        except BaseException:
            stack.close()
            raise
        return _stream(checked.sql, reader, stack)

    # -- DuckDB ------------------------------------------------------------------------------

    def _arrow_table(self, checked: ValidatedQuery) -> pa.Table:
        """The whole result; re-run once on verified types if a guessed type did not fit."""
        try:
            with self._relation(checked) as relation:
                table: pa.Table = _guard(checked.sql, relation.to_arrow_table)
        except QueryExecutionError as exc:
            if not isinstance(exc.__cause__, duckdb.ConversionException):
                raise
            if not self._verify_views(checked.tables):
                raise
            with self._relation(checked) as relation:
                table = _guard(checked.sql, relation.to_arrow_table)
        return table

    def _verify_views(self, tables: tuple[str, ...]) -> bool:
        """Re-create the views of ``tables`` that still read guessed column types.

        Returns whether any view changed.
        """
        conn = self._connection()
        changed = False
        with self._lock:
            for name in tables:
                if name not in self._guessed:
                    continue
                source = self._sources[name]
                with _source_errors(name):
                    scan = source.duckdb_scan(verified=True)
                    if scan is not None:
                        self._create_view(conn, name, source, scan, replace=True)
                self._guessed.discard(name)
                changed = True
        return changed

    @contextmanager
    def _relation(self, checked: ValidatedQuery) -> Iterator[duckdb.DuckDBPyRelation]:
        """A relation for ``checked`` on a fresh cursor that sees the pod's tables."""
        conn = self._connection()
        self._load_tables(conn, checked.tables)
        cursor = conn.cursor()
        try:
            for name in checked.tables:
                frame = self._frames.get(name)
                if frame is not None:
                    cursor.register(name, frame)
            _require_one_select(cursor, checked.sql)
            relation = _guard(checked.sql, lambda: cursor.sql(checked.sql))
            if relation is None:  # pragma: no cover -- a SELECT always gives a relation
                raise QueryExecutionError(f"DuckDB returned no result for {one_line(checked.sql)}.")
            yield relation
        finally:
            cursor.close()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._closed:
                raise QueryExecutionError(
                    "This SQLEngine is closed; create a new one to run more queries."
                )
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> duckdb.DuckDBPyConnection:
        scans: dict[str, str] = {}
        paths: list[Path] = []
        for name, source in self._sources.items():
            # Guessed types first: verifying them costs a pass over the whole file, which
            # only a query that meets a value of another type needs (see _arrow_table).
            with _source_errors(name):
                scan = source.duckdb_scan(verified=False)
                if scan is not None:
                    scans[name] = scan
                    paths.extend(_source_paths(source))
        conn = restricted_connection(paths, memory_limit=self._memory_limit, threads=self._threads)
        try:
            for name, scan in scans.items():
                with _source_errors(name):
                    self._create_view(conn, name, self._sources[name], scan)
            frames: dict[str, pd.DataFrame] = {}
            for name, source in self._sources.items():
                if name not in scans and isinstance(source, DataFrameSource):
                    with _source_errors(name):
                        frames[name] = _frame_of(source)
        except BaseException:
            conn.close()
            raise
        self._frames = frames
        self._ready.update(scans, frames)
        self._guessed = set(scans)
        logger.debug(
            "DuckDB ready: %s file view(s), %s frame(s), %s allowed path(s)",
            len(scans),
            len(self._frames),
            len(paths),
        )
        return conn

    def _create_view(
        self,
        conn: duckdb.DuckDBPyConnection,
        name: str,
        source: DataSource,
        scan: str,
        *,
        replace: bool = False,
    ) -> None:
        # `* EXCLUDE (...) REPLACE (...)` needs no list of the columns, which would cost
        # reading (sniffing) the file once more before the first query.
        columns = "*"
        if source.ignore_cols:
            ignored = ", ".join(quote_identifier(c) for c in source.ignore_cols)
            columns += f" EXCLUDE ({ignored})"
        kept_modifiers = [c for c in source.modifiers if c not in source.ignore_cols]
        if kept_modifiers:
            modified = ", ".join(_column_sql(source, c) for c in kept_modifiers)
            columns += f" REPLACE ({modified})"
        verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
        sql = f"{verb} {quote_identifier(name)} AS SELECT {columns} FROM {scan}"
        try:
            conn.execute(sql)
        except duckdb.Error as exc:
            source.column_names()  # a clearer error when ignore_cols or modifiers name no column
            raise DataSourceReadError(
                f"{source.describe()}: DuckDB cannot read the source for SQL table "
                f"{quote_identifier(name)}: {duckdb_error_summary(exc)}. Check the file and the "
                f"datasource_args."
            ) from exc

    def _load_tables(self, conn: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
        """Load every not-yet-loaded source in ``names`` into a DuckDB table."""
        with self._lock:
            for name in names:
                if name not in self._ready:
                    with _source_errors(name):
                        _load_table(conn, name, self._sources[name])
                    self._ready.add(name)

    # -- push-down -------------------------------------------------------------------------

    def _pushdown_source(self, checked: ValidatedQuery) -> DatabaseSource | None:
        """The database source to run ``checked`` in, or None to run it in DuckDB."""
        module = sys.modules.get(_DATABASE_MODULE)
        if module is None or not checked.tables:
            return None  # no DatabaseSource can exist before its module is imported
        database_class: type[DatabaseSource] = module.DatabaseSource
        used = [self._sources[name] for name in checked.tables]
        databases = [s for s in used if isinstance(s, database_class)]
        if len(databases) != len(used) or len({s.url_key for s in databases}) != 1:
            return None
        return databases[0]

    def _run_pushdown(
        self, checked: ValidatedQuery, database: DatabaseSource, batch_rows: int | None
    ) -> Iterator[pd.DataFrame]:
        dialect = database.sql_dialect
        check_pushdown(checked, dialect)
        refuse_server_functions(checked, dialect)
        sources = {name: cast("DatabaseSource", self._sources[name]) for name in checked.tables}
        columns = {name: self._columns_of(name) for name in checked.tables}
        sql = pushdown_sql(checked, dialect, sources, columns)
        logger.debug("pushing down to %s: %s", database.url_key, sql)
        frames = database.run_query(sql, batch_rows=batch_rows)
        return _database_errors(checked, frames)

    def _columns_of(self, name: str) -> list[str]:
        """The kept columns of table ``name``, read from its source once."""
        with self._lock:
            columns = self._columns.get(name)
            if columns is None:
                with _source_errors(name):
                    columns = self._columns[name] = self._sources[name].column_names()
            return columns


# -- DuckDB helpers ----------------------------------------------------------------------------


def _source_paths(source: DataSource) -> list[Path]:
    """The files a natively scanned source reads (without hashing them)."""
    if isinstance(source, FileSource):
        return source._paths()
    return [record.path for record in source.files()]


def _column_sql(source: DataSource, column: str) -> str:
    ident = quote_identifier(column)
    modifier = source.modifiers.get(column)
    if modifier is None:
        return ident
    return (
        f"{sql_string_literal(modifier.prefix)} || CAST({ident} AS VARCHAR) || "
        f"{sql_string_literal(modifier.suffix)} AS {ident}"
    )


def _frame_of(source: DataFrameSource) -> pd.DataFrame:
    """The frame as the source yields it: not copied unless modifiers apply."""
    batches = list(source.iter_batches(max(1, len(source.data))))
    if batches:
        return batches[0]
    return source.data[source.column_names()]


def _load_table(conn: duckdb.DuckDBPyConnection, name: str, source: DataSource) -> None:
    """Copy a source into a DuckDB table named ``name``, one batch at a time.

    A load that fails part-way leaves no table behind, so the next query tries again.
    """
    table = quote_identifier(name)
    cursor = conn.cursor()
    try:
        try:
            _copy_batches(cursor, table, source)
        except duckdb.Error as exc:
            raise DataSourceReadError(
                f"{source.describe()}: loading it into SQL table {table} failed: "
                f"{duckdb_error_summary(exc)}. A column whose values change type between "
                f"batches is the usual cause; fix the data or force the column's type."
            ) from exc
    except BaseException:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        raise
    finally:
        cursor.close()
    logger.debug("loaded %s into DuckDB table %s", source.describe(), table)


def _copy_batches(cursor: duckdb.DuckDBPyConnection, table: str, source: DataSource) -> None:
    created = False
    for batch in source.iter_batches():
        cursor.register(_BATCH_VIEW, batch)
        verb = f"INSERT INTO {table} BY NAME" if created else f"CREATE TABLE {table} AS"
        cursor.execute(f"{verb} SELECT * FROM {_BATCH_VIEW}")
        cursor.unregister(_BATCH_VIEW)
        created = True
    if not created:
        columns = ", ".join(f"{quote_identifier(c)} VARCHAR" for c in source.column_names())
        cursor.execute(f"CREATE TABLE {table} ({columns})")


def _require_one_select(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    """DuckDB's own parser must also see exactly one SELECT (defence in depth)."""
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error as exc:
        raise ForbiddenQueryError(
            f"Query refused: DuckDB could not parse it: {duckdb_error_summary(exc)}. "
            f"Statement: {one_line(sql)}"
        ) from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(str(s.type) for s in statements)
        raise ForbiddenQueryError(
            f"Query refused: DuckDB reads it as {len(statements)} statement(s) ({kinds}), "
            f"not one SELECT. Statement: {one_line(sql)}"
        )


def _guard(sql: str, call: Callable[[], _T]) -> _T:
    """Run ``call`` and turn a DuckDB error into a :class:`QueryError` naming ``sql``."""
    try:
        return call()
    except duckdb.PermissionException as exc:
        raise ForbiddenQueryError(
            f"Query refused by DuckDB: {_query_reason(exc, sql)}. Statement: {one_line(sql)}"
        ) from exc
    except duckdb.Error as exc:
        raise QueryExecutionError(
            f"Query failed: {_query_reason(exc, sql)}. Statement: {one_line(sql)}"
        ) from exc


def _query_reason(exc: BaseException, sql: str) -> str:
    """DuckDB's reason for a failed query, without the raw data some reasons quote.

    The full reason goes to the pod's log, for the owner, when parts of it were left out.
    """
    reason = data_free_error_summary(exc)
    if csv_error_summary(exc) is not None:
        logger.warning(
            "query %s failed reading a source file: %s", one_line(sql), duckdb_error_summary(exc)
        )
    return reason


def _stream(sql: str, reader: pa.RecordBatchReader, stack: ExitStack) -> Iterator[pd.DataFrame]:
    """Yield ``reader``'s batches as frames; close the cursor when done or abandoned."""
    with stack:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, OSError) as exc:
                # DuckDB's errors inside the stream reach Arrow's reader as OSError.
                raise QueryExecutionError(
                    f"Query failed: {_query_reason(exc, sql)}. Statement: {one_line(sql)}"
                ) from exc
            yield arrow_to_frame(batch)


def _database_errors(
    checked: ValidatedQuery, frames: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """Report a failed push-down with the modeller's statement, not the rewritten one.

    The rewritten statement holds the owner's SQL (a ``query:`` source's text), so neither
    it nor the database's excerpt of it (PostgreSQL's ``LINE 1: ...``) is shown.
    """
    shown = one_line(checked.sql)
    with _source_errors(*checked.tables):
        try:
            yield from frames
        except ForbiddenQueryError as exc:
            raise ForbiddenQueryError(
                f"Query refused by the database: {_database_reason(exc)}. Statement: {shown}"
            ) from exc
        except QueryError as exc:
            raise QueryExecutionError(
                f"Query failed in the database: {_database_reason(exc)}. Statement: {shown}"
            ) from exc


def _database_reason(exc: QueryError) -> str:
    """The kind of error the database reported, never its message.

    A database's message can quote a value (PostgreSQL: ``invalid input syntax for type
    integer: "HIV"``), and that value may come from a row the owner's ``query:`` filters
    out, so the modeller gets the error's class and SQLSTATE; the pod's log keeps the text.
    """
    orig = getattr(exc.__cause__, "orig", None)
    if orig is None:
        return "the statement could not run there"
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    logger.warning("push-down failed in the database: %s", one_line(str(primary or orig)))
    kind = " ".join(re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", type(orig).__name__)).lower()
    sqlstate = getattr(orig, "sqlstate", None)
    code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return f"the database reported {kind or 'an error'}{code}; the pod's log has the details"


@contextmanager
def _source_errors(*names: str) -> Iterator[None]:
    """Report a source that fails while a query reads it without the source's own words.

    Sources word their errors for the pod owner (file paths, the database URL, the text
    of a ``query:``, a raw line of a file). A query's caller may be a modeller: they get
    the table, and for a CSV file where it failed, while the pod's log keeps the rest.
    """
    try:
        yield
    except DataSourceError as exc:
        tables = ", ".join(quote_identifier(name) for name in names)
        logger.warning("SQL table %s cannot be read: %s", tables, exc)
        reason = _csv_reason(exc) or (
            "its data source failed; the pod owner must fix the source or its "
            "datasource_args (the pod's log has the details)"
        )
        raise type(exc)(f"SQL table {tables} cannot be read: {reason}.") from exc


def _csv_reason(exc: BaseException) -> str | None:
    """The data-free CSV parsing reason anywhere in ``exc``'s chain of causes, if any."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, duckdb.Error):
            return csv_error_summary(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest
