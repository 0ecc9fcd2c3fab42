"""Per-column statistics that schema inference decides semantic types from.

Private to :mod:`podium.data.schema`. A :class:`ColumnStats` is built either incrementally
from pandas batches (:meth:`ColumnStats.observe`) or in one go from DuckDB aggregates (see
``_schema_duckdb``); both must end in the same state for the same data, so every rule here
is stated in terms of the *values*, never of how a reader happened to store them:

- Missing: ``None``, ``NaN``, ``NaT`` and ``pd.NA`` (DuckDB: ``NULL`` and float ``NaN``).
- Logical type (``dtype``) of the non-missing values, widened across batches: numbers that
  are all whole (and at most 2**53 in magnitude) are ``integer`` even when stored as floats
  (a CSV integer column with blanks reads as floats in pandas); ``integer`` + ``float`` is
  ``float``, ``date`` + ``datetime`` is ``datetime``, ``other`` absorbs everything and any
  other mix is ``string``. A column with no non-missing values is ``null``.
- Values are rendered as text: booleans ``true``/``false``, whole numbers without a
  decimal point, other floats as Python's shortest ``repr``, temporal values in ISO 8601,
  bytes in hex, strings as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "BINARY",
    "BOOLEAN",
    "DATE",
    "DATETIME",
    "DURATION",
    "FLOAT",
    "IMAGE_EXTENSIONS",
    "IMAGE_PATTERN",
    "INTEGER",
    "LOGICAL_TYPES",
    "MAX_EXACT_FLOAT",
    "NULL",
    "OTHER",
    "STRING",
    "TIME",
    "ColumnStats",
    "batch_kind",
    "is_image_path",
    "render_value",
    "widen",
]

NULL = "null"
BOOLEAN = "boolean"
INTEGER = "integer"
FLOAT = "float"
STRING = "string"
DATETIME = "datetime"
DATE = "date"
TIME = "time"
DURATION = "duration"
BINARY = "binary"
OTHER = "other"

#: Every logical type a column can have.
LOGICAL_TYPES: frozenset[str] = frozenset(
    {NULL, BOOLEAN, INTEGER, FLOAT, STRING, DATETIME, DATE, TIME, DURATION, BINARY, OTHER}
)

#: File name endings that make a string column an image column (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".dcm",
)

#: The same test as a regular expression that Python's ``re`` and RE2 (DuckDB) read alike.
IMAGE_PATTERN = r"\.(png|jpe?g|bmp|gif|tiff?|dcm)$"
_IMAGE_RE = re.compile(IMAGE_PATTERN.removesuffix("$") + r"\Z", re.IGNORECASE | re.ASCII)

#: Floats up to this magnitude hold every whole number exactly.
MAX_EXACT_FLOAT = 2**53


def is_image_path(value: str) -> bool:
    """Whether ``value`` ends with one of :data:`IMAGE_EXTENSIONS`."""
    return _IMAGE_RE.search(value) is not None


def widen(a: str, b: str) -> str:
    """The logical type of a column holding values of types ``a`` and ``b``."""
    if b in (a, NULL):
        return a
    if a == NULL:
        return b
    pair = {a, b}
    if pair == {INTEGER, FLOAT}:
        return FLOAT
    if pair == {DATE, DATETIME}:
        return DATETIME
    if OTHER in pair:
        return OTHER
    return STRING


def _render_decimal(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())


def _render_float(value: float) -> str:
    number = float(value)
    if number.is_integer() and abs(number) <= MAX_EXACT_FLOAT:
        return str(int(number))
    return repr(number)


#: How each kind of scalar is rendered as text, tried in order (bool before int).
_RENDERERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], str]], ...] = (
    ((bool, np.bool_), lambda v: "true" if v else "false"),
    ((int, np.integer), lambda v: str(int(v))),
    (Decimal, _render_decimal),
    ((float, np.floating), _render_float),
    (str, str),
    (datetime, lambda v: pd.Timestamp(v).isoformat()),
    ((date, time), lambda v: v.isoformat()),
    (timedelta, lambda v: pd.Timedelta(v).isoformat()),
    (bytes, bytes.hex),
)


def render_value(value: object) -> str:
    """Render one non-missing value as the text stored in a categorical value set."""
    for types, render in _RENDERERS:
        if isinstance(value, types):
            return render(value)
    return str(value)


def _type_kind(kind: type) -> str:
    """The logical type of a Python scalar type (bool before int: bool is an int)."""
    checks: tuple[tuple[type | tuple[type, ...], str], ...] = (
        ((bool, np.bool_), BOOLEAN),
        ((int, np.integer), INTEGER),
        ((float, np.floating, Decimal), FLOAT),
        (str, STRING),
        (datetime, DATETIME),
        (date, DATE),
        (time, TIME),
        (timedelta, DURATION),
        (bytes, BINARY),
    )
    for types, name in checks:
        if issubclass(kind, types):
            return name
    return OTHER


def _number_kind(numbers: np.ndarray) -> str:
    """``integer`` when every number is whole and exactly representable, else ``float``."""
    whole = np.isfinite(numbers) & (np.floor(numbers) == numbers)
    whole &= np.abs(numbers) <= MAX_EXACT_FLOAT
    return INTEGER if bool(whole.all()) else FLOAT


def _object_kind(values: pd.Series) -> tuple[str, bool]:
    """Logical type and listability of non-missing Python objects, looked at one by one."""
    kind = reduce(widen, {_type_kind(type(v)) for v in values}, NULL)
    if kind == FLOAT:
        try:
            numbers = np.fromiter((float(v) for v in values), dtype=np.float64, count=len(values))
        except OverflowError:
            return FLOAT, True
        return _number_kind(numbers), True
    if kind == DATETIME:
        aware = any(isinstance(v, datetime) and v.tzinfo is not None for v in values)
        return DATETIME, not aware
    return kind, kind != OTHER


#: Storage types whose logical type needs no look at the values.
_PLAIN_DTYPES: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (pd.api.types.is_bool_dtype, BOOLEAN),
    (pd.api.types.is_integer_dtype, INTEGER),
    (pd.api.types.is_timedelta64_dtype, DURATION),
    (lambda dtype: isinstance(dtype, pd.StringDtype), STRING),
)


def batch_kind(values: pd.Series) -> tuple[str, bool]:
    """Logical type of a batch's non-missing values, and whether they can be listed as text.

    Values that cannot be listed (``other`` objects such as arrays, time-zone-aware
    datetimes) never form a categorical value set.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    dtype = values.dtype
    if pd.api.types.is_float_dtype(dtype):
        return _number_kind(values.to_numpy(dtype=np.float64)), True
    if pd.api.types.is_datetime64_any_dtype(dtype):
        arrow_type = getattr(dtype, "pyarrow_dtype", None)
        if arrow_type is not None and pa.types.is_date(arrow_type):
            return DATE, True
        tz = getattr(dtype, "tz", None) or getattr(arrow_type, "tz", None)
        return DATETIME, tz is None
    for check, kind in _PLAIN_DTYPES:
        if check(dtype):
            return kind, True
    return _object_kind(values)


@dataclass
class ColumnStats:
    """What schema inference knows about one column so far.

    Attributes:
        cap: The most distinct values tracked; beyond it ``values`` becomes ``None``.
        dtype: Logical type of the non-missing values seen (``null`` if none).
        non_missing: Count of non-missing values.
        missing: Count of missing values.
        values: Distinct values rendered as text, or ``None`` once there are more than
            ``cap`` of them or they cannot be listed.
        image: Every non-missing value so far is a string naming an image file.
        listable: No value so far was of a kind that cannot be listed as text.
    """

    cap: int
    dtype: str = NULL
    non_missing: int = 0
    missing: int = 0
    values: set[str] | None = field(default_factory=set)
    image: bool = True
    listable: bool = True

    def observe(self, column: pd.Series) -> None:
        """Fold one batch of the column into the statistics."""
        is_missing = column.isna()
        n_missing = int(is_missing.sum())
        present = column[~is_missing] if n_missing else column
        self.missing += n_missing
        self.non_missing += len(present)
        if present.empty:
            return
        kind, listable = batch_kind(present)
        self.dtype = widen(self.dtype, kind)
        if not listable:
            self.listable = False
            self.values = None
        if kind != STRING:
            self.image = False
        if self.values is None and not self.image:
            return
        uniques = present.unique()
        if self.image:
            self.image = all(isinstance(v, str) and is_image_path(v) for v in uniques)
        if self.values is not None:
            self.add_values(uniques)

    def add_values(self, uniques: Collection[object]) -> None:
        """Add distinct raw values, giving up on the value set once it passes ``cap``."""
        if self.values is None:
            return
        if len(uniques) > self.cap:
            self.values = None
            return
        self.values.update(render_value(v) for v in uniques)
        if len(self.values) > self.cap:
            self.values = None
