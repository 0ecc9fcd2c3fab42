"""The schema data model and its JSON form; private to :mod:`podium.data.schema`.

Every name here is re-exported by :mod:`podium.data.schema`; import it from there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, replace
from enum import Enum, StrEnum
from functools import cached_property
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from podium.core.errors import SchemaError
from podium.core.files import atomic_write
from podium.data._schema_stats import LOGICAL_TYPES

__all__ = ["SCHEMA_VERSION", "ColumnSchema", "Schema", "SchemaLevel", "SemanticType"]

#: Version of the JSON form written by :meth:`Schema.to_dict`.
SCHEMA_VERSION = 1


class SemanticType(StrEnum):
    """What a column means to an algorithm."""

    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"
    TEXT = "text"
    IMAGE = "image"


class SchemaLevel(Enum):
    """How complete a schema is, ordered ``EMPTY < PARTIAL < FULL``."""

    EMPTY = "empty"
    PARTIAL = "partial"
    FULL = "full"

    @property
    def rank(self) -> int:
        """Position in the order ``EMPTY < PARTIAL < FULL``."""
        return list(SchemaLevel).index(self)

    def __str__(self) -> str:
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SchemaLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, SchemaLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, SchemaLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, SchemaLevel):
            return NotImplemented
        return self.rank >= other.rank


@dataclass(frozen=True)
class ColumnSchema:
    """One column of a schema.

    Attributes:
        name: The column name.
        stype: Its semantic type.
        dtype: Its logical type: ``integer``, ``float``, ``boolean``, ``string``,
            ``datetime``, ``date``, ``time``, ``duration``, ``binary``, ``other`` or ``null``.
        description: What the column holds, from the pod owner.
        values: The sorted value set, rendered as text; categorical columns only.
        missing: How many values are missing; ``None`` when unknown or hidden.
    """

    name: str
    stype: SemanticType
    dtype: str
    _: KW_ONLY
    description: str | None = None
    values: tuple[str, ...] | None = None
    missing: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stype, SemanticType):
            raise SchemaError(f"Column {self.name!r}: stype must be a SemanticType.")
        if self.dtype not in LOGICAL_TYPES:
            raise SchemaError(
                f"Column {self.name!r}: unknown logical type {self.dtype!r}; expected one of "
                f"{sorted(LOGICAL_TYPES)}."
            )
        if self.values is not None:
            if self.stype is not SemanticType.CATEGORICAL:
                raise SchemaError(
                    f"Column {self.name!r} is {self.stype}: only categorical columns have "
                    "a value set."
                )
            object.__setattr__(self, "values", tuple(sorted(set(self.values))))
        if self.missing is not None and self.missing < 0:
            raise SchemaError(f"Column {self.name!r}: missing must not be negative.")


@dataclass(frozen=True)
class Schema:
    """The schema of one table (one data source).

    Attributes:
        name: The table name (the datasource name).
        description: What the table holds, from the pod owner.
        columns: The columns, in the source's order.
        num_records: The number of records; ``None`` when unknown (not ``full``) or hidden
            (pods with differential privacy).
        level: How complete the schema is.
    """

    name: str
    _: KW_ONLY
    description: str | None = None
    columns: tuple[ColumnSchema, ...] = ()
    num_records: int | None = None
    level: SchemaLevel = SchemaLevel.FULL

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise SchemaError(f"Schema {self.name!r}: column {column.name!r} appears twice.")
            seen.add(column.name)
        if self.level is SchemaLevel.EMPTY and self.columns:
            raise SchemaError(f"Schema {self.name!r}: an empty schema has no columns.")
        if self.num_records is not None and self.num_records < 0:
            raise SchemaError(f"Schema {self.name!r}: num_records must not be negative.")

    @classmethod
    def empty(cls, name: str, *, description: str | None = None) -> Schema:
        """A schema with nothing known yet but its name (level ``EMPTY``)."""
        return cls(name, description=description, level=SchemaLevel.EMPTY)

    # -- access --------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    @property
    def stypes(self) -> dict[str, SemanticType]:
        """Column name -> semantic type, in column order."""
        return {c.name: c.stype for c in self.columns}

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``; a :class:`SchemaError` if there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(
            f"Schema {self.name!r} has no column {name!r}; its columns are {list(self.names)}."
        )

    @cached_property
    def hash(self) -> str:
        """SHA-256 (hex) of the column names, semantic types and logical types, in order.

        Two schemas with the same hash have the same columns with the same types, whatever
        their table names, descriptions, value sets, missing or record counts and level.
        """
        canonical = [[c.name, c.stype.value, c.dtype] for c in self.columns]
        text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- derived schemas -----------------------------------------------------------------

    def with_descriptions(
        self, columns: Mapping[str, str] | None = None, *, table: str | None = None
    ) -> Schema:
        """A copy with the given column descriptions (and table description) set.

        Columns not named keep their description; a ``table`` of ``None`` keeps the table's.
        """
        columns = dict(columns or {})
        unknown = [name for name in columns if name not in self.names]
        if unknown:
            raise SchemaError(
                f"Schema {self.name!r}: descriptions given for column(s) {unknown} that it "
                f"does not have; its columns are {list(self.names)}."
            )
        new_columns = tuple(
            replace(c, description=columns[c.name]) if c.name in columns else c
            for c in self.columns
        )
        description = self.description if table is None else table
        return replace(self, columns=new_columns, description=description)

    def without_record_count(self) -> Schema:
        """A copy with no record count and no missing counts, for pods that hide them."""
        columns = tuple(replace(c, missing=None) for c in self.columns)
        return replace(self, columns=columns, num_records=None)

    # -- serialization -------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form: ``version``, table fields, ``hash`` and ``columns``."""
        return {
            "version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "level": self.level.value,
            "num_records": self.num_records,
            "hash": self.hash,
            "columns": [
                {
                    "name": c.name,
                    "stype": c.stype.value,
                    "dtype": c.dtype,
                    "description": c.description,
                    "values": None if c.values is None else list(c.values),
                    "missing": c.missing,
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output; a :class:`SchemaError` if invalid.

        A ``hash`` field is optional; when present it must match the columns.
        """
        try:
            model = _SchemaModel.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(f"Invalid schema: {_describe_errors(exc)}.") from exc
        schema = cls(
            model.name,
            description=model.description,
            level=SchemaLevel(model.level),
            num_records=model.num_records,
            columns=tuple(
                ColumnSchema(
                    c.name,
                    SemanticType(c.stype),
                    c.dtype,
                    description=c.description,
                    values=None if c.values is None else tuple(c.values),
                    missing=c.missing,
                )
                for c in model.columns
            ),
        )
        if model.hash is not None and model.hash != schema.hash:
            raise SchemaError(
                f"Invalid schema {model.name!r}: its hash {model.hash} does not match its "
                f"columns ({schema.hash}); the column names or types were edited. Remove the "
                "'hash' field to accept the edit."
            )
        return schema

    def to_json(self, *, indent: int | None = 2) -> str:
        """The schema as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Schema:
        """Parse :meth:`to_json` output; a :class:`SchemaError` if it is not a schema."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"Invalid schema JSON: {exc}.") from exc
        if not isinstance(data, dict):
            raise SchemaError("Invalid schema JSON: expected an object at the top level.")
        return cls.from_dict(data)

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the schema as JSON, atomically (a temporary file, then a rename)."""
        target = Path(path)

        def write(handle: IO[str]) -> None:
            handle.write(self.to_json())
            handle.write("\n")

        try:
            atomic_write(target, write)
        except OSError as exc:
            raise SchemaError(
                f"Cannot write schema file {target}: {exc.strerror or exc}. Check that the "
                "folder exists and is writable."
            ) from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by :meth:`dump`; errors name the file."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SchemaError(
                f"Cannot read schema file {source}: {reason or exc}. Check the path."
            ) from exc
        try:
            return cls.from_json(text)
        except SchemaError as exc:
            raise SchemaError(
                f"Schema file {source}: {exc} Fix the file or delete it to infer the schema again."
            ) from exc


class _ColumnModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    stype: Literal["categorical", "continuous", "text", "image"]
    dtype: str
    description: str | None = None
    values: list[str] | None = None
    missing: int | None = None


class _SchemaModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[1]
    name: str
    description: str | None = None
    level: Literal["empty", "partial", "full"]
    num_records: int | None = None
    hash: str | None = None
    columns: list[_ColumnModel]


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
