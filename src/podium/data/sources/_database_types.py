"""Column dtypes of database results: decided from declared types, driver type codes or
SQLite storage classes, never from the values of one batch (see ``database_source``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

__all__ = [
    "DECLARED",
    "NAIVE_TIME",
    "PG_OIDS",
    "SQLITE_CLASSES",
    "UTC_TIME",
    "Target",
    "cast",
    "declared_target",
    "fits",
    "storage_classes",
    "storage_target",
]

NAIVE_TIME = "datetime64[us]"
UTC_TIME = "datetime64[us, UTC]"
#: PostgreSQL type OID -> pandas dtype; any other OID reads as ``object``.
PG_OIDS: dict[int, str] = {
    **dict.fromkeys((20, 21, 23), "Int64"),  # int8, int2, int4
    **dict.fromkeys((700, 701, 1700), "float64"),  # float4, float8, numeric
    16: "boolean",
    **dict.fromkeys((18, 19, 25, 1042, 1043, 2950), "str"),  # char name text bpchar varchar uuid
    **dict.fromkeys((1082, 1114), NAIVE_TIME),  # date, timestamp
    1184: UTC_TIME,  # timestamptz
}
#: Generic SQLAlchemy type -> pandas dtype, first match wins; any other type is ``object``.
DECLARED: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "Int64"),
    (sa.Float, "float64"),  # REAL, DOUBLE; not a Numeric since SQLAlchemy 2.1
    (sa.Numeric, "float64"),
    (sa.String, "str"),  # Text, VARCHAR, CHAR, Enum
    (sa.Uuid, "str"),
    (sa.DateTime, NAIVE_TIME),  # UTC_TIME where it has a time zone
    (sa.Date, NAIVE_TIME),
)
#: Python value type -> SQLite storage class (what ``typeof()`` says); others are blobs.
SQLITE_CLASSES: dict[type, str] = {int: "integer", bool: "integer", float: "real", str: "text"}


@dataclass(frozen=True)
class Target:
    """The pandas dtype of one column in every frame, and the type it was decided from."""

    dtype: str
    origin: str


def declared_target(sql_type: sa.types.TypeEngine[Any], *, sqlite: bool) -> Target | None:
    """The target for a reflected type; None where SQLite's values decide (see module doc)."""
    if sqlite and (
        isinstance(sql_type, sa.types.NullType)  # no declared type, or a view's expression
        # NUMERIC affinity keeps integers, reals and text side by side.
        or (isinstance(sql_type, sa.Numeric) and not isinstance(sql_type, sa.Float))
    ):
        return None
    dtype = next((d for kind, d in DECLARED if isinstance(sql_type, kind)), "object")
    if dtype == NAIVE_TIME and getattr(sql_type, "timezone", False):
        dtype = UTC_TIME
    return Target(dtype, f"declared type {type(sql_type).__name__}")


def storage_classes(
    rows: Sequence[Sequence[object]], indices: Sequence[int]
) -> dict[int, set[str]]:
    """SQLite storage classes of the non-NULL values of each column in ``indices``."""
    classes: dict[int, set[str]] = {i: set() for i in indices}
    for row in rows:
        for i in indices:
            if row[i] is not None:
                classes[i].add(SQLITE_CLASSES.get(type(row[i]), "blob"))
    return classes


def storage_target(classes: set[str]) -> Target:
    origin = f"SQLite values of storage classes {sorted(classes) or ['null']}"
    if classes == {"integer"}:
        return Target("Int64", origin)
    if classes and classes <= {"integer", "real"}:
        return Target("float64", origin)
    if classes == {"text"}:
        return Target("str", origin)
    return Target("object", origin)


def cast(values: Sequence[object], dtype: str) -> pd.Series[Any]:
    """``values`` (None for NULL) as a Series of ``dtype``; raises if one does not fit."""
    raw = pd.Series(list(values), dtype=object)
    if dtype in (NAIVE_TIME, UTC_TIME):
        raw = pd.to_datetime(raw, format="ISO8601", utc=dtype == UTC_TIME)
    return raw.astype(pd.api.types.pandas_dtype(dtype))


def fits(value: object, dtype: str) -> bool:
    """Whether one value casts to ``dtype`` on its own (to name the culprit in errors)."""
    try:
        cast([value], dtype)
    except (TypeError, ValueError, OverflowError):
        return False
    return True
