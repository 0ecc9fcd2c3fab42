"""Column statistics computed in DuckDB, for sources that DuckDB scans in place.

Private to :mod:`podium.data.schema`. Instead of streaming batches through pandas, two
aggregate queries run over the source's scan (``ignore_cols`` dropped and ``modifiers``
applied as :class:`~podium.data.sources.base.DataSource` does):

1. a *sample* query over the first ``batch_rows`` rows computes every statistic, with
   each column's value set only when it is small; it gives the partial schema and tells
   the second query what it can skip;
2. one *full* query over every row: counts, plus only the checks the sample left open
   (whole numbers, image paths) and value sets only for columns whose sample had at most
   ``cap`` distinct values (a column with more in the sample has more overall).

The result equals what :meth:`ColumnStats.observe` gives on the source's own batches:
types are cast the way the source converts them to pandas (decimals and huge integers to
DOUBLE, dates to TIMESTAMP, UUIDs and enums to text), float ``NaN`` counts as missing, and
values are rendered by the same function. A column whose sample is low-cardinality but
whose whole is not costs DuckDB a large distinct set in the full query; that needs data
sorted adversarially and only costs memory, never correctness.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from podium.core.errors import DataSourceReadError, PodiumError
from podium.data import _schema_stats as st
from podium.data._schema_stats import ColumnStats
from podium.data.sources._duckdb_file import (
    DuckDBFileSource,
    duckdb_error_summary,
    quote_identifier,
    restricted_connection,
    sql_string_literal,
)
from podium.data.sources.base import DataSource, FileSource

__all__ = ["scan_stats"]

logger = logging.getLogger("podium.data.schema")

_INTEGER_TYPES = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint"}
)
#: DuckDB types read as they are: logical type and whether values can be listed.
_PLAIN_TYPES: dict[str, tuple[str, bool]] = {
    "boolean": (st.BOOLEAN, True),
    "float": (st.FLOAT, True),
    "double": (st.FLOAT, True),
    "varchar": (st.STRING, True),
    "time": (st.TIME, True),
    "blob": (st.BINARY, True),
    # pandas holds time-zone-aware datetimes, whose values Podium does not list.
    "timestamp with time zone": (st.DATETIME, False),
}
_AS_DOUBLE = frozenset({"decimal", "hugeint", "uhugeint"})
_AS_TEXT = frozenset({"uuid", "enum"})
_DATETIME_TYPES = frozenset({"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"})

_IMAGE_SQL = sql_string_literal(st.IMAGE_PATTERN)


@dataclass(frozen=True)
class _Column:
    """How one column is read and which statistics the next query computes for it."""

    name: str
    kind: str  # logical type of its non-missing values before the whole-number check
    listable: bool
    cap: int
    collect: bool
    check_whole: bool = True
    check_image: bool = True

    @property
    def ident(self) -> str:
        return quote_identifier(self.name)

    @property
    def is_float(self) -> bool:
        return self.kind == st.FLOAT

    def aggregates(self, *, guard: bool) -> list[str]:
        """The SELECT items for this column, in the order :meth:`read` consumes them."""
        c = self.ident
        present = f"NOT isnan({c})" if self.is_float else f"{c} IS NOT NULL"
        items = [f"count({c})"]
        if self.is_float:
            items.append(f"count(*) FILTER (WHERE isnan({c}))")
            if self.check_whole:
                items.append(
                    f"bool_and({c} = floor({c}) AND abs({c}) <= {st.MAX_EXACT_FLOAT}) "
                    f"FILTER (WHERE {present})"
                )
        if self.kind == st.STRING and self.check_image:
            items.append(f"bool_and(regexp_matches({c}, {_IMAGE_SQL}, 'i'))")
        if self.collect:
            # An empty list, not NULL, when there is no value; NULL means "too many".
            values = f"coalesce(list(DISTINCT {c}) FILTER (WHERE {present}), [])"
            if guard:
                distinct = f"count(DISTINCT {c}) FILTER (WHERE {present})"
                values = f"CASE WHEN {distinct} <= {self.cap} THEN {values} END"
            items.append(values)
        return items

    def read(self, row: Iterator[object], total: int) -> ColumnStats:
        """Statistics from this column's items of a result row (see :meth:`aggregates`)."""
        counted = _as_int(next(row))
        nan = _as_int(next(row)) if self.is_float else 0
        whole = next(row) if self.is_float and self.check_whole else self.check_whole
        image = next(row) if self.kind == st.STRING and self.check_image else False
        values = next(row) if self.collect else None
        stats = ColumnStats(cap=self.cap, non_missing=counted - nan, missing=total - counted + nan)
        if stats.non_missing:
            stats.dtype = st.INTEGER if self.is_float and whole is not False else self.kind
        stats.image = self.kind == st.STRING and self.check_image and image is not False
        stats.listable = self.listable or not stats.non_missing
        stats.values = set() if not stats.non_missing else None
        if isinstance(values, list):
            stats.values = set()
            stats.add_values(values)
        return stats


def _as_int(value: object) -> int:
    if not isinstance(value, int):  # pragma: no cover - count() always returns an integer
        raise TypeError(f"expected a count, got {value!r}")
    return value


def _read_as(type_id: str, ident: str) -> tuple[str, str, bool]:
    """(expression, logical type, listable) for a column of DuckDB type ``type_id``."""
    if type_id in _INTEGER_TYPES:
        return ident, st.INTEGER, True
    if type_id in _AS_DOUBLE:
        return f"CAST({ident} AS DOUBLE)", st.FLOAT, True
    if type_id in _AS_TEXT:
        return f"CAST({ident} AS VARCHAR)", st.STRING, True
    if type_id in _DATETIME_TYPES:
        return ident, st.DATETIME, True
    if type_id == "date":
        return f"CAST({ident} AS TIMESTAMP)", st.DATETIME, True
    kind, listable = _PLAIN_TYPES.get(type_id, (st.OTHER, False))
    return ident, kind, listable


def _projection(source: DataSource, columns: Sequence[str]) -> str:
    """SELECT list of the kept columns with modifiers applied (as ``base._apply_modifiers``)."""
    items = []
    for column in columns:
        ident = quote_identifier(column)
        modifier = source.modifiers.get(column)
        if modifier is None:
            items.append(ident)
        else:
            prefix = sql_string_literal(modifier.prefix)
            suffix = sql_string_literal(modifier.suffix)
            items.append(f"{prefix} || CAST({ident} AS VARCHAR) || {suffix} AS {ident}")
    return ", ".join(items) or "NULL AS _"


def _paths(source: DataSource) -> list[Path]:
    if isinstance(source, FileSource):
        return source._paths()  # the files the scan reads, without hashing them
    return [record.path for record in source.files()]


def _read_error(source: DataSource, exc: duckdb.Error) -> PodiumError:
    if isinstance(source, DuckDBFileSource):
        return source._read_error(exc)
    return DataSourceReadError(f"{source.describe()}: cannot read: {duckdb_error_summary(exc)}.")


def _stats_query(relation: str, columns: Sequence[_Column], *, guard: bool) -> str:
    items = ["count(*)"] + [item for col in columns for item in col.aggregates(guard=guard)]
    return f"SELECT {', '.join(items)} FROM ({relation}) AS t"


def _run(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[_Column], *, guard: bool
) -> tuple[int, dict[str, ColumnStats]]:
    (result,) = con.sql(_stats_query(relation, columns, guard=guard)).fetchall()
    row = iter(result)
    total = _as_int(next(row))
    return total, {col.name: col.read(row, total) for col in columns}


def _plan(
    con: duckdb.DuckDBPyConnection,
    base: str,
    caps: Mapping[str, int],
    forced: Mapping[str, str],
) -> tuple[str, list[_Column]]:
    """The relation over ``base`` cast as pandas sees it, and the sample query's plan."""
    described = con.sql(base)
    exprs, columns = [], []
    for name, duck_type in zip(described.columns, described.types, strict=True):
        if name not in caps:  # the placeholder of a source without columns
            continue
        expr, kind, listable = _read_as(duck_type.id, quote_identifier(name))
        exprs.append(f"{expr} AS {quote_identifier(name)}")
        stype = forced.get(name)
        wanted = stype == "categorical" or (stype is None and kind in (st.BOOLEAN, st.STRING))
        columns.append(
            _Column(
                name=name,
                kind=kind,
                listable=listable,
                cap=caps[name],
                collect=wanted and listable,
                check_image=stype is None,
            )
        )
    return f"SELECT {', '.join(exprs) or 'NULL AS _'} FROM ({base}) AS b", columns


def _after_sample(column: _Column, sample: ColumnStats) -> _Column:
    """The full query's plan for a column, given its sample's statistics."""
    return _Column(
        name=column.name,
        kind=column.kind,
        listable=column.listable,
        cap=column.cap,
        collect=column.collect and sample.values is not None,
        check_whole=sample.dtype != st.FLOAT,
        check_image=column.check_image and (sample.image or sample.non_missing == 0),
    )


def scan_stats(
    source: DataSource,
    scan: str,
    columns: Sequence[str],
    *,
    caps: Mapping[str, int],
    forced: Mapping[str, str],
) -> Iterator[tuple[int | None, dict[str, ColumnStats]]]:
    """Yield ``(None, sample statistics)`` if the source has rows, then ``(count, full)``.

    Args:
        source: The source; ``scan`` is its ``duckdb_scan()``.
        scan: DuckDB table expression reading the raw data.
        columns: The kept columns (``source.column_names()``).
        caps: Per column, the most distinct values to collect.
        forced: Per forced column, its semantic type's name.
    """
    con = _connect(source)
    try:
        base = f"SELECT {_projection(source, columns)} FROM {scan}"
        relation, plan = _plan(con, base, caps, forced)
        sample_rel = f"SELECT * FROM ({relation}) AS r LIMIT {source.batch_rows}"
        sampled, sample = _run(con, sample_rel, plan, guard=True)
        if sampled:
            yield None, sample
        full_plan = [_after_sample(col, sample[col.name]) for col in plan]
        logger.debug("schema: full pass over %s for %s column(s)", scan, len(full_plan))
        yield _run(con, relation, full_plan, guard=False)
    except duckdb.Error as exc:
        raise _read_error(source, exc) from exc
    finally:
        con.close()


def _connect(source: DataSource) -> duckdb.DuckDBPyConnection:
    try:
        return restricted_connection(_paths(source))
    except duckdb.Error as exc:
        raise _read_error(source, exc) from exc
