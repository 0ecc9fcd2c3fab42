"""A source over a table or a query in any database SQLAlchemy can reach.

Nothing connects until data is asked for: the engine is created on first use, cached, and
disposed by :meth:`DatabaseSource.close` (or on leaving a ``with`` block). Every read runs
in a read-only transaction that is rolled back (PostgreSQL and MySQL: ``SET TRANSACTION
READ ONLY``; SQLite: the file is opened with ``mode=ro`` and ``PRAGMA query_only=ON``), and
streams through a server-side cursor, so a big table never loads whole.

The SQL engine (:mod:`podium.data.sql`) pushes queries down to the database through
:attr:`~DatabaseSource.sql_dialect`, :meth:`~DatabaseSource.relation_sql` and
:meth:`~DatabaseSource.run_query`. Passwords never appear in descriptions or errors.

Column dtypes depend on the columns' types, never on the values in a batch: they are
decided once per read, before the first batch, and every batch (an all-NULL one included)
is cast to them, as the file sources do. Integers (SMALLINT, INTEGER, BIGINT) read as
``Int64``; REAL, DOUBLE and NUMERIC as ``float64`` (NULL is NaN); BOOLEAN as ``boolean``;
text (TEXT, VARCHAR, CHAR, enums, UUID) as ``str``; DATE and TIMESTAMP as
``datetime64[us]``; TIMESTAMP WITH TIME ZONE as ``datetime64[us, UTC]``; anything else
(bytes, JSON, arrays, intervals, ...) as ``object`` with the driver's values.

The types come from the declared column types (SQLAlchemy reflection) with ``table=``, and
from the driver's type codes (PostgreSQL OIDs) with ``query=`` and in
:meth:`~DatabaseSource.run_query`; other drivers' codes are not mapped, so their query
columns are ``object``. SQLite types values, not columns: a query column, a column declared
without a type, and a NUMERIC-affinity column (NUMERIC, DECIMAL, unknown type names) take
their dtype from the storage classes of all their values in the whole result: integers
only ``Int64``; integers and reals ``float64``; text only ``str``; otherwise (all NULL,
blobs, mixed with text) ``object``. A result of one batch is judged from the values at
hand; a longer one costs one aggregate ``typeof()`` pass in SQLite before the first batch.
SQLite does not enforce declared types: a value that does not fit its column's dtype
raises :class:`~podium.core.errors.DataSourceReadError` naming the column.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.sql.compiler import IdentifierPreparer

from podium.core.errors import (
    ConfigValidationError,
    DataSourceError,
    DataSourceNotFoundError,
    DataSourceReadError,
    ForbiddenQueryError,
    QueryError,
    QueryExecutionError,
)
from podium.data._text import one_line
from podium.data.sources import _database_types as dtypes
from podium.data.sources.base import DEFAULT_BATCH_ROWS, DataSource, Modifier

__all__ = ["DatabaseSource"]

logger = logging.getLogger("podium.data.sources.database_source")

#: SQLAlchemy backend name -> sqlglot dialect name, where the two differ.
_SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
}
#: What keeps each backend from pushing outer conditions into an owner's ``query:``.
_FENCES = {"postgresql": "OFFSET 0", "sqlite": "LIMIT -1 OFFSET 0"}
#: Backends whose read-only guard is ``SET TRANSACTION READ ONLY`` as the first statement.
_SET_READ_ONLY_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})
#: PostgreSQL's SQLSTATE for "cannot execute ... in a read-only transaction".
_PG_READ_ONLY_SQLSTATE = "25006"
_CONNECT_TIMEOUT_S = 10
_MAX_LISTED_TABLES = 20
#: How much of the owner's query a source's description quotes.
_DESCRIBED_QUERY_CHARS = 80


def _normalise_url(raw: str | URL) -> URL:
    """Parse a URL; plain ``postgresql://`` uses psycopg 3; SQLite paths become absolute."""
    try:
        url = make_url(raw)
    except sa.exc.ArgumentError as exc:
        # The raw text may hold a password: never echo it.
        raise ConfigValidationError(
            "datasource_args.url is not a valid SQLAlchemy URL. Expected "
            "dialect+driver://user:password@host:port/database, for example "
            "postgresql://reader:${DB_PASSWORD}@db:5432/clinic or sqlite:///data/clinic.db."
        ) from exc
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        url = url.set(drivername=f"postgresql+{driver or 'psycopg'}")
    elif backend == "sqlite" and url.database and not _is_special_sqlite(url.database):
        url = url.set(database=os.path.abspath(os.path.expanduser(url.database)))
    return url


def _is_special_sqlite(database: str) -> bool:
    return database == ":memory:" or database.startswith("file:")


def _sqlite_query_only(dbapi_connection: DBAPIConnection, _record: object) -> None:
    """Make every new SQLite connection refuse writes, whatever the statement."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


class DatabaseSource(DataSource):
    """Records from one table (or view) or one SELECT query of a SQL database.

    Args:
        url: A SQLAlchemy URL such as ``postgresql://user:${PW}@host:5432/db`` or
            ``sqlite:///data/clinic.db``. A plain ``postgresql://`` uses psycopg 3.
        table: The table or view to read. Exactly one of ``table`` and ``query``.
        query: One SELECT statement whose result is the data.
        db_schema: The schema that holds ``table`` (PostgreSQL ``search_path`` otherwise).
        statement_timeout_s: PostgreSQL cancels any statement of this source (a read or a
            pushed-down query) that runs longer; ``None`` for no limit.
        ignore_cols: Columns dropped from everything the source yields.
        modifiers: Per-column ``prefix``/``suffix`` added to every (string) value.
        seed: Seed for anything random done with this source.
        batch_rows: Default number of rows per batch.

    The source holds a connection pool once used: call :meth:`close`, or use it as a
    context manager, to release it.
    """

    kind = "DatabaseSource"

    def __init__(
        self,
        url: str | URL,
        *,
        table: str | None = None,
        query: str | None = None,
        db_schema: str | None = None,
        statement_timeout_s: float | None = 300.0,
        ignore_cols: Sequence[str] = (),
        modifiers: Mapping[str, Modifier | Mapping[str, str]] | None = None,
        seed: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(
            ignore_cols=ignore_cols, modifiers=modifiers, seed=seed, batch_rows=batch_rows
        )
        self._url = _normalise_url(url)
        #: The URL with its password hidden; equal keys mean the same database.
        self.url_key: str = self._url.render_as_string(hide_password=True)
        self.table, self.query, self.db_schema = self._check_target(table, query, db_schema)
        if statement_timeout_s is not None and statement_timeout_s <= 0:
            raise ConfigValidationError(
                f"{self.describe()}: datasource_args.statement_timeout_s must be positive "
                f"(or null for no limit), got {statement_timeout_s}."
            )
        self.statement_timeout_s = statement_timeout_s
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def _check_target(
        self, table: str | None, query: str | None, db_schema: str | None
    ) -> tuple[str | None, str | None, str | None]:
        where = f"{self.kind}({self.url_key})"
        if (table is None) == (query is None):
            raise ConfigValidationError(
                f"{where}: give exactly one of datasource_args.table (a table or view name) "
                f"and datasource_args.query (one SELECT statement); got "
                f"{'both' if table is not None else 'neither'}."
            )
        if table is not None and not table.strip():
            raise ConfigValidationError(f"{where}: datasource_args.table is empty.")
        if query is not None:
            query = query.strip().rstrip(";").strip()
            if not query:
                raise ConfigValidationError(f"{where}: datasource_args.query is empty.")
            if db_schema is not None:
                raise ConfigValidationError(
                    f"{where}: datasource_args.db_schema applies only with table; "
                    f"qualify the names inside datasource_args.query instead."
                )
        return table, query, db_schema

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Dispose the engine and its connections; a later read opens a new one."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
            logger.debug("closed engine for %s", self.url_key)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- push-down API for the SQL engine ------------------------------------------------

    @property
    def sql_dialect(self) -> str:
        """The sqlglot dialect name of the database (``postgres``, ``sqlite``, ...)."""
        backend = self._url.get_backend_name()
        return _SQLGLOT_DIALECTS.get(backend, backend)

    def relation_sql(self) -> str:
        """The data as a relation in the database's SQL: a quoted table or ``(<query>)``.

        A query comes back parenthesised and without alias; the caller adds one. On
        PostgreSQL and SQLite it is fenced (``OFFSET 0``), so that the database cannot move a
        caller's conditions into the query and evaluate them on rows the query filters out
        (a "leaky view": an error or a division by zero would then reveal those rows).
        """
        if self.query is not None:
            fence = _FENCES.get(self._backend())
            if fence is None:
                return f"({self.query})"
            return f"(SELECT * FROM ({self.query}) AS podium_owner_query {fence})"
        assert self.table is not None  # guaranteed by _check_target
        preparer = self._preparer()
        name = preparer.quote(self.table)
        if self.db_schema:
            name = f"{preparer.quote_schema(self.db_schema)}.{name}"
        return name

    def run_query(self, sql: str, *, batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """Run one SELECT in a read-only transaction and yield its result in frames.

        ``sql`` reaches the driver exactly as written, with no bind parameters: ``:name``,
        ``\\:``, ``%`` and ``%%`` are SQL text. An empty result yields one empty frame that
        still has the result's columns.

        Raises:
            DataSourceReadError: The database cannot be reached.
            ForbiddenQueryError: The statement tried to write or returns no rows.
            QueryExecutionError: The database rejected or failed the statement.
        """
        size = batch_rows or self.batch_rows
        with self._read_only() as conn:
            try:
                with _execute(conn, sql, batch_rows=size) as result:
                    if not result.returns_rows:
                        raise ForbiddenQueryError(
                            f"{self.describe()}: the statement returns no rows; only "
                            f"SELECT queries run here. Statement: {one_line(sql)}"
                        )
                    yield from self._typed_frames(conn, result, sql, size, empty_frame=True)
            except sa.exc.DBAPIError as exc:
                raise self._query_error(sql, exc) from exc

    # -- DataSource ----------------------------------------------------------------------

    def _raw_columns(self) -> list[str]:
        sql = f"SELECT * FROM {self.relation_sql()} podium_q WHERE 1 = 0"
        with self._reading(), self._read_only() as conn, _execute(conn, sql) as result:
            columns = list(map(str, result.keys()))
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise DataSourceReadError(
                f"{self.describe()}: the result has duplicate column names {duplicates}. "
                f"Give each column a distinct alias in datasource_args.query."
            )
        return columns

    def _raw_record_count(self) -> int:
        sql = f"SELECT COUNT(*) FROM {self.relation_sql()} podium_q"
        with self._reading(), self._read_only() as conn, _execute(conn, sql) as result:
            return int(result.scalar_one())

    def _iter_raw_batches(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        sql = f"SELECT * FROM {self.relation_sql()} podium_q"
        with self._reading(), self._read_only() as conn:
            declared = self._declared_targets(conn)
            with _execute(conn, sql, batch_rows=batch_rows) as result:
                yield from self._typed_frames(conn, result, sql, batch_rows, declared=declared)

    # -- column types --------------------------------------------------------------------

    def _declared_targets(self, conn: sa.Connection) -> dict[str, dtypes.Target | None]:
        """Table mode: each column's target from its declared type (None: SQLite decides).

        Query mode, or a relation reflection cannot find, gives no entries.
        """
        if self.table is None:
            return {}
        try:
            with warnings.catch_warnings():
                # A type SQLAlchemy does not know (PostGIS, ...) reads as object; no warning.
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                reflected = sa.inspect(conn).get_columns(self.table, schema=self.db_schema)
        except sa.exc.NoSuchTableError:
            return {}
        sqlite = self._backend() == "sqlite"
        return {str(c["name"]): dtypes.declared_target(c["type"], sqlite=sqlite) for c in reflected}

    def _typed_frames(
        self,
        conn: sa.Connection,
        result: sa.CursorResult[Any],
        sql: str,
        batch_rows: int,
        *,
        declared: Mapping[str, dtypes.Target | None] | None = None,
        empty_frame: bool = False,
    ) -> Iterator[pd.DataFrame]:
        """Frames of ``result`` whose dtypes are decided before the first one is yielded."""
        columns = list(map(str, result.keys()))
        codes = [column[1] for column in result.cursor.description or ()]
        declared = declared or {}
        targets: list[dtypes.Target | None] = [
            declared[name] if name in declared else self._coded(code)
            for name, code in itertools.zip_longest(columns, codes[: len(columns)])
        ]
        partitions = result.partitions(batch_rows)
        first = next(partitions, None)
        held = [] if first is None else [first]
        undecided = [i for i, target in enumerate(targets) if target is None]
        if undecided:
            second = None if first is None else next(partitions, None)
            if second is None:  # the whole result is at hand
                classes = dtypes.storage_classes(first or [], undecided)
            else:
                held.append(second)
                classes = _scanned_storage_classes(conn, sql, len(columns), undecided)
            for i in undecided:
                targets[i] = dtypes.storage_target(classes[i])
        decided = [target or dtypes.Target("object", "unknown type") for target in targets]
        logger.debug("%s reads columns as %s", self.describe(), [t.dtype for t in decided])
        for rows in itertools.chain(held, partitions):
            yield self._frame(rows, columns, decided)
        if first is None and empty_frame:
            yield self._frame([], columns, decided)

    def _coded(self, type_code: object) -> dtypes.Target | None:
        """The target for a driver's type code; None where SQLite decides from values."""
        backend = self._backend()
        if backend == "sqlite":
            return None
        if backend == "postgresql" and isinstance(type_code, int):
            return dtypes.Target(
                dtypes.PG_OIDS.get(type_code, "object"), f"PostgreSQL type oid {type_code}"
            )
        return dtypes.Target("object", f"driver type code {type_code!r}")

    def _frame(
        self, rows: Sequence[Sequence[object]], columns: list[str], targets: list[dtypes.Target]
    ) -> pd.DataFrame:
        cells: list[Sequence[object]] = list(zip(*rows, strict=True)) or [()] * len(columns)
        arrays = {
            i: self._cast(values, name, target)
            for i, (name, target, values) in enumerate(zip(columns, targets, cells, strict=True))
        }
        return pd.DataFrame(arrays).set_axis(columns, axis=1)

    def _cast(self, values: Sequence[object], name: str, target: dtypes.Target) -> pd.Series[Any]:
        try:
            return dtypes.cast(values, target.dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            bad = next(
                (f"the value {v!r}" for v in values if not dtypes.fits(v, target.dtype)),
                "values that do not fit together",
            )
            raise DataSourceReadError(
                f"{self.describe()}: column {name!r} has {target.origin}, read as "
                f"{target.dtype}, but holds {bad} ({exc}). "
                f"Fix the value, or read the column through datasource_args.query with a "
                f"CAST to the type it holds."
            ) from exc

    def describe(self) -> str:
        if self.query is not None:
            target = f"query={one_line(self.query, _DESCRIBED_QUERY_CHARS)!r}"
        else:
            target = f"table={self.table}"
            if self.db_schema:
                target = f"table={self.db_schema}.{self.table}"
        return f"{self.kind}({self.url_key}, {target})"

    # -- connections ---------------------------------------------------------------------

    def _backend(self) -> str:
        return self._url.get_backend_name()

    def _dialect_class(self) -> type[sa.Dialect]:
        try:
            return self._url.get_dialect()
        except sa.exc.NoSuchModuleError as exc:
            raise ConfigValidationError(
                f"datasource_args.url: SQLAlchemy has no database dialect "
                f"{self._url.drivername!r} ({self.url_key}). Use a known one such as "
                f"postgresql, sqlite or mysql+pymysql, or install the dialect's package."
            ) from exc

    def _preparer(self) -> IdentifierPreparer:
        engine = self._engine
        dialect = engine.dialect if engine is not None else self._dialect_class()()
        return dialect.identifier_preparer

    def _get_engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> sa.Engine:
        url = self._url
        connect_args: dict[str, object] = {}
        if self._backend() == "sqlite":
            url = self._sqlite_read_only_url()
        elif self._url.get_driver_name() == "psycopg" and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        self._dialect_class()  # an unknown dialect is a config error, not a driver one
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except ImportError as exc:
            raise DataSourceError(self._missing_driver_message(exc)) from exc
        if self._backend() == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_query_only)
        logger.debug("created engine for %s", self.url_key)
        return engine

    def _sqlite_read_only_url(self) -> URL:
        database = self._url.database
        if not database or _is_special_sqlite(database):
            return self._url
        if not Path(database).is_file():
            raise DataSourceNotFoundError(
                f"{self.kind}: the SQLite database {database} does not exist. Check the "
                f"path in datasource_args.url (sqlite:///relative/path.db or "
                f"sqlite:////absolute/path.db)."
            )
        if self._url.get_driver_name() != "pysqlite":
            return self._url
        uri = "file:" + quote(Path(database).as_posix())
        return self._url.set(database=uri, query={**self._url.query, "mode": "ro", "uri": "true"})

    def _missing_driver_message(self, exc: ImportError) -> str:
        module = exc.name or "the driver"
        if self._backend() == "postgresql":
            fix = "pip install 'podium[postgres]'"
            if self._url.get_driver_name() != "psycopg":
                fix += " and use a postgresql:// (psycopg 3) URL"
        else:
            fix = f"install the Python package that provides {module!r}"
        return (
            f"{self.describe()}: the database driver {module!r} for "
            f"{self._url.drivername} is not installed. Fix: {fix}."
        )

    @contextmanager
    def _read_only(self) -> Iterator[sa.Connection]:
        """A connection in a read-only transaction that is always rolled back."""
        engine = self._get_engine()
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise DataSourceReadError(
                f"{self.describe()}: cannot connect to the database: "
                f"{self._reason(exc)}. Check the host, port, database name and credentials "
                f"in datasource_args.url (set passwords through ${{VAR}} environment "
                f"variables) and that the server accepts connections from this machine."
            ) from exc
        try:
            trans = conn.begin()
            try:
                if self._backend() in _SET_READ_ONLY_BACKENDS:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                if self._backend() == "postgresql" and self.statement_timeout_s is not None:
                    milliseconds = max(1, round(self.statement_timeout_s * 1000))
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
                yield conn
            finally:
                if trans.is_active:
                    trans.rollback()
        finally:
            conn.close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn a database error while reading the source into a data-source error."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            if self.query is not None:
                raise DataSourceReadError(
                    f"{self.describe()}: datasource_args.query failed: {self._reason(exc)}. "
                    f"Fix the query (run it in a SQL client to check it). "
                    f"Query: {one_line(self.query)}"
                ) from exc
            raise self._table_error(exc) from exc

    def _table_error(self, exc: sa.exc.DBAPIError) -> DataSourceError:
        where = f"{self.db_schema}.{self.table}" if self.db_schema else str(self.table)
        try:
            inspector = sa.inspect(self._get_engine())
            if not inspector.has_table(str(self.table), schema=self.db_schema):
                names = sorted(
                    inspector.get_table_names(schema=self.db_schema)
                    + inspector.get_view_names(schema=self.db_schema)
                )
                shown = ", ".join(names[:_MAX_LISTED_TABLES]) or "none"
                if len(names) > _MAX_LISTED_TABLES:
                    shown += f", ... ({len(names)} in all)"
                return DataSourceNotFoundError(
                    f"{self.describe()}: there is no table or view {where}. Tables and "
                    f"views there: {shown}. Fix datasource_args.table"
                    f"{' or datasource_args.db_schema' if self.db_schema else ''}."
                )
        except sa.exc.DBAPIError:
            logger.debug("could not inspect %s for missing tables", self.url_key)
        return DataSourceReadError(
            f"{self.describe()}: reading table {where} failed: {self._reason(exc)}. "
            f"Check that the database user may SELECT from it."
        )

    def _query_error(self, sql: str, exc: sa.exc.DBAPIError) -> QueryError:
        orig = exc.orig
        read_only = getattr(orig, "sqlstate", None) == _PG_READ_ONLY_SQLSTATE or str(
            getattr(orig, "sqlite_errorname", "")
        ).startswith("SQLITE_READONLY")
        if read_only:
            return ForbiddenQueryError(
                f"{self.describe()}: the statement tried to write to a read-only "
                f"connection ({self._reason(exc)}); only SELECT queries run here. "
                f"Statement: {one_line(sql)}"
            )
        return QueryExecutionError(
            f"{self.describe()}: the database rejected the query: {self._reason(exc)}. "
            f"Statement: {one_line(sql)}"
        )

    def _reason(self, exc: sa.exc.DBAPIError) -> str:
        """The driver's own message, on one line, with the password scrubbed out."""
        reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
        password = self._url.password
        if password:
            reason = reason.replace(str(password), "***")
        return reason


@contextmanager
def _execute(
    conn: sa.Connection, sql: str, *, batch_rows: int | None = None
) -> Iterator[sa.CursorResult[Any]]:
    """Run ``sql`` exactly as written (streamed when ``batch_rows`` is set); close its cursor.

    The text goes to the driver without parameters (``no_parameters``), so nothing in it is
    a placeholder: ``:name``, ``\\:``, ``%`` and ``%%`` all reach the database unchanged
    (``sqlalchemy.text`` would read ``:name`` as a parameter and unescape ``\\:``, and
    psycopg would read ``%`` as a placeholder if given parameters).
    """
    options: dict[str, object] = {"no_parameters": True}
    if batch_rows:
        options["yield_per"] = batch_rows
    result = conn.exec_driver_sql(sql, execution_options=options)
    try:
        yield result
    finally:
        result.close()


def _scanned_storage_classes(
    conn: sa.Connection, sql: str, width: int, indices: Sequence[int]
) -> dict[int, set[str]]:
    """SQLite storage classes of each column in ``indices`` over the whole result of ``sql``.

    The result's columns are renamed by position, so duplicate or odd names do not matter.
    """
    names = ", ".join(f"c{i}" for i in range(width))
    found = ", ".join(f"group_concat(DISTINCT typeof(c{i}))" for i in indices)
    scan = f"WITH podium_t({names}) AS ({sql}) SELECT {found} FROM podium_t"
    with _execute(conn, scan) as result:
        row = result.one()
    return {i: set(str(row[n] or "").split(",")) - {"", "null"} for n, i in enumerate(indices)}
