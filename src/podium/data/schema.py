"""Table schemas: column names, logical and semantic types, value sets, record counts.

A pod publishes one :class:`Schema` per data source. Schemas are inferred from the data,
incrementally, so that a large source has a ``partial`` schema after its first batch and
a ``full`` one after a complete pass (levels ``empty < partial < full``).

Inference rules (``force_stypes`` always wins over them):

- ``boolean`` columns are ``categorical``; ``integer`` and ``float`` columns are
  ``continuous``.
- ``string`` columns are ``image`` when every non-missing value ends with an image file
  extension (``.png .jpg .jpeg .bmp .gif .tif .tiff .dcm``, any case); otherwise
  ``categorical`` when they have at most ``max_categories`` (default 50) distinct values
  and at most one distinct value per two non-missing values; otherwise ``text``.
- Everything else is ``text``: dates, datetimes, times, durations, bytes, other objects,
  and columns without any non-missing value (logical type ``null``).

Forcing checks the data: ``categorical`` needs at most :data:`FORCED_CATEGORIES_LIMIT`
(10,000) distinct listable values (the value set is collected past ``max_categories``),
``continuous`` needs numbers, booleans or temporal values, ``image`` needs strings, bytes
or objects; anything else is a :class:`SchemaError`.

The logical type (``dtype``) describes the values, not how a reader stored them (see
``_schema_stats``): whole numbers (up to 2**53) stored as floats are ``integer``, so an
integer CSV column with blanks stays ``integer``; a column mixing types widens
(``integer`` + ``float`` is ``float``, ``date`` + ``datetime`` is ``datetime``, most other
mixes are ``string``). Float ``NaN`` counts as missing. Sources read through DuckDB (CSV,
Parquet) hand dates over as datetimes, so their date columns are ``datetime``.

Categorical columns carry their value set sorted as text (booleans ``true``/``false``,
whole numbers without a decimal point, floats as Python's shortest repr). A partial schema
has no record count and no missing counts, and its value sets are those seen so far.

The schema hash (:attr:`Schema.hash`) covers the column names, semantic types and logical
types in order, and nothing else: not the table name, descriptions, value sets, counts or
level; two pods whose columns agree have equal hashes.

Files that DuckDB scans in place (CSV, Parquet) are profiled with aggregate SQL (one query
over the first batch, one over the whole file) instead of streaming batches through
pandas; both paths give the same schema for the same data.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence

import pandas as pd

from podium.core.errors import ConfigValidationError, DataSourceError, SchemaError
from podium.data import _schema_stats as st
from podium.data._schema_model import (
    SCHEMA_VERSION,
    ColumnSchema,
    Schema,
    SchemaLevel,
    SemanticType,
)
from podium.data._schema_stats import ColumnStats
from podium.data.sources.base import DataSource

__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "FORCED_CATEGORIES_LIMIT",
    "SCHEMA_VERSION",
    "ColumnSchema",
    "ForceStypes",
    "Schema",
    "SchemaBuilder",
    "SchemaLevel",
    "SemanticType",
    "infer_schema",
    "iter_schema",
    "normalize_force_stypes",
]

logger = logging.getLogger("podium.data.schema")

#: A string column with more distinct values than this is not inferred categorical.
DEFAULT_MAX_CATEGORIES = 50

#: The most values a column forced to ``categorical`` may have.
FORCED_CATEGORIES_LIMIT = 10_000

_FORCE_FIELD = "data_config.force_stypes"
_DESCRIPTIONS_FIELD = "data_config.column_descriptions"

#: ``force_stypes`` as written in a pod config: ``{stype: [columns]}`` or
#: ``{datasource_name: {stype: [columns]}}``.
ForceStypes = Mapping[str, Sequence[str]] | Mapping[str, Mapping[str, Sequence[str]]]


# -- force_stypes ----------------------------------------------------------------------


def _parse_stype(value: object, where: str) -> SemanticType:
    try:
        return SemanticType(str(value))
    except ValueError:
        raise ConfigValidationError(
            f"{where}: unknown semantic type {value!r}; use one of "
            f"{', '.join(s.value for s in SemanticType)}."
        ) from None


def _flat_stypes(mapping: Mapping[str, object], where: str) -> dict[str, SemanticType]:
    result: dict[str, SemanticType] = {}
    for key, columns in mapping.items():
        stype = _parse_stype(key, where)
        if isinstance(columns, str | bytes) or not isinstance(columns, Sequence):
            raise ConfigValidationError(
                f"{where}.{key}: expected a list of column names, got {columns!r}."
            )
        for column in columns:
            if not isinstance(column, str):
                raise ConfigValidationError(
                    f"{where}.{key}: column names must be text, got {column!r}."
                )
            previous = result.setdefault(column, stype)
            if previous is not stype:
                raise ConfigValidationError(
                    f"{where}: column {column!r} is listed under both {previous} and {stype}; "
                    "list it under one semantic type only."
                )
    return result


def normalize_force_stypes(
    force_stypes: ForceStypes | None, datasource_name: str
) -> dict[str, SemanticType]:
    """Turn ``force_stypes`` in either config form into ``{column: stype}``.

    The flat form ``{stype: [columns]}`` applies as it is. In the nested form
    ``{datasource_name: {stype: [columns]}}`` every key must be ``datasource_name`` (a
    key naming another datasource is almost always a typo, which would otherwise silently
    force nothing); an empty mapping forces nothing.

    Raises:
        ConfigValidationError: An unknown semantic type, a column under two semantic types,
            a key that is not this datasource, or the two forms mixed.
    """
    if not force_stypes:
        return {}
    if not isinstance(force_stypes, Mapping):
        raise ConfigValidationError(
            f"{_FORCE_FIELD}: expected {{stype: [columns]}} or "
            f"{{datasource_name: {{stype: [columns]}}}}, got {force_stypes!r}."
        )
    nested = [key for key, value in force_stypes.items() if isinstance(value, Mapping)]
    if not nested:
        return _flat_stypes(force_stypes, _FORCE_FIELD)
    if len(nested) < len(force_stypes):
        raise ConfigValidationError(
            f"{_FORCE_FIELD}: mixes {{stype: [columns]}} and {{datasource_name: {{stype: "
            "[columns]}}}; use one form throughout."
        )
    others = [key for key in nested if key != datasource_name]
    if others:
        raise ConfigValidationError(
            f"{_FORCE_FIELD}: keyed by {others[0]!r} but this datasource is named "
            f"{datasource_name!r}; use {datasource_name!r} as the key, or drop the key level: "
            "{stype: [columns]}."
        )
    inner = force_stypes[datasource_name]
    assert isinstance(inner, Mapping)  # every value is a Mapping here
    return _flat_stypes(inner, f"{_FORCE_FIELD}.{datasource_name}")


def _checked_forced(
    force_stypes: Mapping[str, SemanticType | str] | None,
) -> dict[str, SemanticType]:
    return {
        column: _parse_stype(stype, f"{_FORCE_FIELD} (column {column!r})")
        for column, stype in (force_stypes or {}).items()
    }


# -- deciding a column -----------------------------------------------------------------

_CONTINUOUS_DTYPES = frozenset(
    {st.NULL, st.BOOLEAN, st.INTEGER, st.FLOAT, st.DATETIME, st.DATE, st.TIME, st.DURATION}
)
_IMAGE_DTYPES = frozenset({st.NULL, st.STRING, st.BINARY, st.OTHER})


def _cap(forced: SemanticType | None, max_categories: int) -> int:
    """How many distinct values to track for a column."""
    if forced is SemanticType.CATEGORICAL:
        return FORCED_CATEGORIES_LIMIT
    return max(max_categories, 2)  # a boolean column always keeps its value set


def _check_forced_values(name: str, stats: ColumnStats, forced: SemanticType | None) -> None:
    if forced is SemanticType.CATEGORICAL and stats.values is None:
        if not stats.listable:
            reason = f"its {stats.dtype} values cannot be listed as categories"
        else:
            reason = f"it has more than {FORCED_CATEGORIES_LIMIT:,} distinct values"
        raise SchemaError(
            f"Column {name!r} is forced to categorical but {reason}. Remove it from "
            f"{_FORCE_FIELD}.categorical (it will be inferred), or force it to text."
        )


def _infer_stype(stats: ColumnStats, max_categories: int) -> SemanticType:
    if stats.dtype == st.BOOLEAN:
        return SemanticType.CATEGORICAL
    if stats.dtype in (st.INTEGER, st.FLOAT):
        return SemanticType.CONTINUOUS
    if stats.dtype != st.STRING:
        return SemanticType.TEXT
    if stats.image:
        return SemanticType.IMAGE
    distinct = None if stats.values is None else len(stats.values)
    if distinct is not None and distinct <= max_categories and 2 * distinct <= stats.non_missing:
        return SemanticType.CATEGORICAL
    return SemanticType.TEXT


def _check_forced_dtype(name: str, dtype: str, forced: SemanticType) -> None:
    allowed = {SemanticType.CONTINUOUS: _CONTINUOUS_DTYPES, SemanticType.IMAGE: _IMAGE_DTYPES}
    if forced in allowed and dtype not in allowed[forced]:
        need = "numbers, booleans or dates" if forced is SemanticType.CONTINUOUS else "file paths"
        raise SchemaError(
            f"Column {name!r} is forced to {forced} but its values are {dtype}; {forced} "
            f"needs {need}. Fix the column in {_FORCE_FIELD}, or the data (for example mark "
            "missing values with read_csv_kwargs na_values)."
        )


def _column_schema(
    name: str,
    stats: ColumnStats,
    *,
    forced: SemanticType | None,
    description: str | None,
    max_categories: int,
    final: bool,
) -> ColumnSchema:
    _check_forced_values(name, stats, forced)
    if forced is not None and final:
        _check_forced_dtype(name, stats.dtype, forced)
    stype = forced or _infer_stype(stats, max_categories)
    values = None
    if stype is SemanticType.CATEGORICAL and stats.values is not None:
        values = tuple(sorted(stats.values))
    return ColumnSchema(
        name,
        stype,
        stats.dtype,
        description=description,
        values=values,
        missing=stats.missing if final else None,
    )


def _assemble(
    name: str,
    stats: Mapping[str, ColumnStats],
    *,
    forced: Mapping[str, SemanticType],
    descriptions: Mapping[str, str],
    description: str | None,
    max_categories: int,
    num_records: int | None,
) -> Schema:
    """A schema from column statistics: ``FULL`` when ``num_records`` is known."""
    final = num_records is not None
    columns = tuple(
        _column_schema(
            column,
            column_stats,
            forced=forced.get(column),
            description=descriptions.get(column),
            max_categories=max_categories,
            final=final,
        )
        for column, column_stats in stats.items()
    )
    level = SchemaLevel.FULL if final else SchemaLevel.PARTIAL
    return Schema(
        name, description=description, columns=columns, num_records=num_records, level=level
    )


def _check_known(
    columns: Sequence[str],
    forced: Mapping[str, SemanticType],
    descriptions: Mapping[str, str],
    ignored: Sequence[str] = (),
) -> None:
    known = set(columns)
    for where, names in ((_FORCE_FIELD, list(forced)), (_DESCRIPTIONS_FIELD, list(descriptions))):
        unknown = [n for n in names if n not in known]
        if not unknown:
            continue
        dropped = [n for n in unknown if n in ignored]
        hint = f" ({dropped} are in data_config.ignore_cols)" if dropped else ""
        raise ConfigValidationError(
            f"{where} names column(s) {unknown} that the data does not have{hint}; the "
            f"columns are {list(columns)}. Fix the names in {where}."
        )


# -- building ------------------------------------------------------------------------


class SchemaBuilder:
    """Build a schema incrementally from batches of one table.

    Args:
        name: The table (datasource) name.
        force_stypes: ``{column: stype}`` that override inference (see
            :func:`normalize_force_stypes` for the config forms).
        column_descriptions: ``{column: description}``.
        description: The table description.
        max_categories: A string column with more distinct values is not categorical.
        columns: The expected column names, when known before the first batch.
    """

    def __init__(
        self,
        name: str,
        *,
        force_stypes: Mapping[str, SemanticType | str] | None = None,
        column_descriptions: Mapping[str, str] | None = None,
        description: str | None = None,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        columns: Sequence[str] | None = None,
    ) -> None:
        if max_categories < 1:
            raise ConfigValidationError(f"max_categories must be at least 1, got {max_categories}.")
        self.name = name
        self.description = description
        self.max_categories = max_categories
        self._forced = _checked_forced(force_stypes)
        self._descriptions = dict(column_descriptions or {})
        self._stats: dict[str, ColumnStats] | None = None
        self._rows = 0
        self._batches = 0
        if columns is not None:
            self._start(list(columns))

    @property
    def rows(self) -> int:
        """Rows seen so far."""
        return self._rows

    def _start(self, columns: list[str]) -> dict[str, ColumnStats]:
        if len(set(columns)) < len(columns):
            twice = sorted({c for c in columns if columns.count(c) > 1})
            raise SchemaError(f"Table {self.name!r}: column name(s) {twice} appear twice.")
        _check_known(columns, self._forced, self._descriptions)
        self._stats = {
            c: ColumnStats(cap=_cap(self._forced.get(c), self.max_categories)) for c in columns
        }
        return self._stats

    def update(self, batch: pd.DataFrame) -> None:
        """Fold one batch (a frame with the table's columns, in order) into the schema."""
        names = [str(c) for c in batch.columns]
        stats = self._start(names) if self._stats is None else self._stats
        if names != list(stats):
            raise SchemaError(
                f"Table {self.name!r}: batch {self._batches + 1} has columns {names}, expected "
                f"{list(stats)}."
            )
        for position, (name, column_stats) in enumerate(stats.items()):
            column_stats.observe(batch.iloc[:, position])
            _check_forced_values(name, column_stats, self._forced.get(name))
        self._rows += len(batch)
        self._batches += 1

    def snapshot(self) -> Schema:
        """The schema so far: ``EMPTY`` before any batch, else ``PARTIAL``.

        A partial schema has no record count and no missing counts; its value sets are
        those seen so far.
        """
        if self._batches == 0 or self._stats is None:
            return Schema.empty(self.name, description=self.description)
        return self._schema(num_records=None)

    def finish(self) -> Schema:
        """The ``FULL`` schema of every batch seen (no batch: a table without rows)."""
        return self._schema(num_records=self._rows)

    def _schema(self, *, num_records: int | None) -> Schema:
        stats = self._stats if self._stats is not None else self._start([])
        return _assemble(
            self.name,
            stats,
            forced=self._forced,
            descriptions=self._descriptions,
            description=self.description,
            max_categories=self.max_categories,
            num_records=num_records,
        )


def iter_schema(
    source: DataSource,
    *,
    name: str,
    force_stypes: Mapping[str, SemanticType | str] | None = None,
    column_descriptions: Mapping[str, str] | None = None,
    description: str | None = None,
    hide_record_count: bool = False,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Iterator[Schema]:
    """Infer a source's schema, yielding a ``PARTIAL`` one after the first batch.

    The last schema yielded is always ``FULL``; a ``PARTIAL`` one comes first when the
    source has at least one row. Arguments as for :func:`infer_schema`.
    """
    forced = _checked_forced(force_stypes)
    descriptions = dict(column_descriptions or {})
    columns = source.column_names()
    _check_known(columns, forced, descriptions, source.ignore_cols)
    if source.duckdb_scan(verified=False) is None:
        logger.debug("schema %s: streaming batches of %s", name, source.describe())
        builder = SchemaBuilder(
            name,
            force_stypes=forced,
            column_descriptions=descriptions,
            description=description,
            max_categories=max_categories,
            columns=columns,
        )
        partial_sent = False
        for batch in source.iter_batches():
            builder.update(batch)
            if builder.rows and not partial_sent:
                partial_sent = True
                yield builder.snapshot()
        final = builder.finish()
    else:
        final = yield from _profile_in_duckdb(
            source,
            name,
            columns,
            forced=forced,
            descriptions=descriptions,
            description=description,
            max_categories=max_categories,
        )
    yield final.without_record_count() if hide_record_count else final


def _profile_in_duckdb(
    source: DataSource,
    name: str,
    columns: list[str],
    *,
    forced: dict[str, SemanticType],
    descriptions: dict[str, str],
    description: str | None,
    max_categories: int,
) -> Generator[Schema, None, Schema]:
    """Profile a natively scanned source in DuckDB: yield a partial schema, return the full.

    The scan first reads the column types guessed from the first rows, which spares the
    source's pass that checks them against the whole file; if a value does not fit, the
    profile runs again on the checked types (a partial schema already sent stays as sent:
    partial schemas are provisional).
    """
    import duckdb  # noqa: PLC0415 - DuckDB on demand

    from podium.data._schema_duckdb import scan_stats  # noqa: PLC0415 - DuckDB on demand

    logger.debug("schema %s: profiling %s in DuckDB", name, source.describe())
    final = Schema.empty(name)
    partial_sent = False
    for verified in (False, True):
        scan = source.duckdb_scan(verified=verified)
        assert scan is not None  # the caller checked that this source has a scan
        try:
            for num_records, stats in scan_stats(
                source,
                scan,
                columns,
                caps={c: _cap(forced.get(c), max_categories) for c in columns},
                forced={c: s.value for c, s in forced.items()},
            ):
                final = _assemble(
                    name,
                    stats,
                    forced=forced,
                    descriptions=descriptions,
                    description=description,
                    max_categories=max_categories,
                    num_records=num_records,
                )
                if final.level is SchemaLevel.PARTIAL and not partial_sent:
                    partial_sent = True
                    yield final
        except DataSourceError as exc:
            if verified or not isinstance(exc.__cause__, duckdb.ConversionException):
                raise
            logger.debug("schema %s: a guessed type did not fit; profiling again", name)
            continue
        break
    return final


def infer_schema(
    source: DataSource,
    *,
    name: str,
    force_stypes: Mapping[str, SemanticType | str] | None = None,
    column_descriptions: Mapping[str, str] | None = None,
    description: str | None = None,
    hide_record_count: bool = False,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Schema:
    """Infer the ``FULL`` schema of a source.

    Args:
        source: The data source (``ignore_cols`` and ``modifiers`` already apply).
        name: The table (datasource) name.
        force_stypes: ``{column: stype}`` overriding inference; use
            :func:`normalize_force_stypes` on a config's ``force_stypes``.
        column_descriptions: ``{column: description}``.
        description: The table description.
        hide_record_count: Leave out the record count and missing counts (DP pods).
        max_categories: A string column with more distinct values is not categorical.

    Raises:
        ConfigValidationError: ``force_stypes`` or ``column_descriptions`` name a column
            the source does not have, or an unknown semantic type.
        SchemaError: A forced type the data cannot have.
    """
    schemas = iter_schema(
        source,
        name=name,
        force_stypes=force_stypes,
        column_descriptions=column_descriptions,
        description=description,
        hide_record_count=hide_record_count,
        max_categories=max_categories,
    )
    return deque(schemas, maxlen=1)[0]
