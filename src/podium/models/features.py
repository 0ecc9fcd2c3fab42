"""How a pod turns its table into model inputs, the same way on every pod (numpy + pandas).

The modeller decides the features from the pods' registered schemas, never from pooled
data: :meth:`TabularFeatures.from_schemas` takes the union of every pod's category values,
so a category only one pod has gets the same code everywhere. The continuous columns are
normalised with a :class:`Normalisation` built from per-pod moments (count, mean, M2) that
:func:`moments_of` computes and the modeller merges. Both travel to the pods inside the
task as canonical JSON (``to_definition`` / ``from_definition``), and each pod encodes its
rows with a :class:`TabularEncoder`.

Categorical values are compared as text, rendered exactly as schema inference renders a
column's value set (``1`` and ``1.0`` are ``"1"``, booleans ``"true"``/``"false"``). Code 0
means unknown or missing; category ``i`` of a column (0-based, in sorted order) is code
``i + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field, field_validator

from podium.core.errors import ProtocolError, SchemaError, TaskDefinitionError
from podium.data._schema_stats import render_value  # the one rendering of values as text
from podium.data.schema import ColumnSchema, Schema, SemanticType
from podium.protocols._arguments import Arguments, parse_arguments

if TYPE_CHECKING:
    from podium.models.data_structure import DataStructure

__all__ = [
    "CategoricalFeature",
    "Encoded",
    "Normalisation",
    "TabularEncoder",
    "TabularFeatures",
    "Task",
    "moments_of",
    "text_codes",
]

Task = Literal["classification", "regression"]

#: A variance at or below this is a constant column (see :meth:`Normalisation.from_moments`).
VARIANCE_FLOOR = 1e-12


# -- features ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical column and its known categories (sorted text; code ``i + 1``)."""

    name: str
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        if len(set(self.categories)) != len(self.categories):
            raise TaskDefinitionError(f"features: column {self.name!r} repeats a category")


@dataclass(frozen=True)
class TabularFeatures:
    """The model's inputs and output, agreed by the modeller and every pod.

    Attributes:
        categorical: The categorical feature columns with their categories.
        continuous: The continuous feature columns.
        target: The column predicted.
        classes: The target's classes (classification); empty for regression.
        task: ``classification`` or ``regression``.
    """

    categorical: tuple[CategoricalFeature, ...]
    continuous: tuple[str, ...]
    target: str
    classes: tuple[str, ...]
    task: Task

    def __post_init__(self) -> None:
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "continuous", tuple(self.continuous))
        object.__setattr__(self, "classes", tuple(self.classes))
        names = [f.name for f in self.categorical] + list(self.continuous)
        if len(set(names)) != len(names) or self.target in names:
            raise TaskDefinitionError(
                f"features: each column may appear once, and not as the target: {names}"
            )
        if not names:
            raise TaskDefinitionError("features: there must be at least one feature column")
        if self.task == "regression" and self.classes:
            raise TaskDefinitionError("features: a regression target has no classes")
        if self.task == "classification" and len(set(self.classes)) != len(self.classes):
            raise TaskDefinitionError(f"features: the classes repeat a value: {self.classes}")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column: the categorical ones, then the continuous ones."""
        return (*(f.name for f in self.categorical), *self.continuous)

    @classmethod
    def from_schemas(
        cls, schemas: Sequence[Mapping[str, Any] | Schema], structure: DataStructure
    ) -> TabularFeatures:
        """The features of ``structure`` over the pods' schemas (``Schema.to_dict()`` form).

        The same schemas in any order give the same features.

        Raises:
            TaskDefinitionError: A schema is invalid; a column is missing on a pod; a
                column's semantic type differs between pods; a text or image column is
                not ignored; a categorical column has no value set; the target is not
                categorical or continuous, or has fewer than two classes.
        """
        parsed = [_parse_schema(index, schema) for index, schema in enumerate(schemas)]
        if not parsed:
            raise TaskDefinitionError("features: no pod schemas to build the features from")
        columns = _common_features(parsed, structure)
        categorical: list[CategoricalFeature] = []
        continuous: list[str] = []
        for name in columns:
            stype, values = _merged_column(parsed, name, role="feature")
            if stype is SemanticType.CATEGORICAL:
                categorical.append(CategoricalFeature(name, values))
            else:
                continuous.append(name)
        stype, classes = _merged_column(parsed, structure.target, role="target")
        if stype is SemanticType.CONTINUOUS:
            return cls(tuple(categorical), tuple(continuous), structure.target, (), "regression")
        if len(classes) < 2:
            raise TaskDefinitionError(
                f"features: the target {structure.target!r} has {len(classes)} class(es) "
                f"{list(classes)} over all pods; classification needs at least two"
            )
        return cls(
            tuple(categorical), tuple(continuous), structure.target, classes, "classification"
        )

    def to_definition(self) -> dict[str, Any]:
        """Canonical JSON values; :meth:`from_definition` rebuilds these features exactly."""
        return {
            "categorical": [
                {"name": f.name, "categories": list(f.categories)} for f in self.categorical
            ],
            "continuous": list(self.continuous),
            "target": self.target,
            "classes": list(self.classes),
            "task": self.task,
        }

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> TabularFeatures:
        """Rebuild features from :meth:`to_definition` output.

        Raises:
            TaskDefinitionError: A missing or unknown field, or a wrong type; the message
                names the field.
        """
        model = parse_arguments("features", _FeaturesModel, definition)
        return cls(
            tuple(CategoricalFeature(c.name, tuple(c.categories)) for c in model.categorical),
            tuple(model.continuous),
            model.target,
            tuple(model.classes),
            model.task,
        )


class _CategoricalModel(Arguments):
    name: str = Field(min_length=1)
    categories: list[str]


class _FeaturesModel(Arguments):
    categorical: list[_CategoricalModel]
    continuous: list[str]
    target: str = Field(min_length=1)
    classes: list[str]
    task: Literal["classification", "regression"]


def _parse_schema(index: int, schema: Mapping[str, Any] | Schema) -> Schema:
    if isinstance(schema, Schema):
        return schema
    try:
        return Schema.from_dict(schema)
    except SchemaError as error:
        raise TaskDefinitionError(f"features: the schema of pod {index}: {error}") from None


def _common_features(schemas: Sequence[Schema], structure: DataStructure) -> list[str]:
    """The feature columns, which every pod must have: one order whatever the pods' order."""
    per_pod: list[list[str]] = []
    for index, schema in enumerate(schemas):
        try:
            per_pod.append(structure.feature_columns(schema.names))
        except TaskDefinitionError as error:
            raise TaskDefinitionError(f"pod {index} (table {schema.name!r}): {error}") from None
    union = sorted({c for columns in per_pod for c in columns})
    lacking = {
        index: [c for c in union if c not in schema.names] for index, schema in enumerate(schemas)
    }
    lacking = {index: cols for index, cols in lacking.items() if cols}
    if lacking:
        where = "; ".join(f"pod {i} lacks {cols}" for i, cols in lacking.items())
        raise TaskDefinitionError(
            f"features: every pod must have every feature column: {where}. Add the "
            "columns to ignore_cols, or list the shared ones in selected_cols"
        )
    orders = {tuple(columns) for columns in per_pod}
    return list(orders.pop()) if len(orders) == 1 else union


def _merged_column(
    schemas: Sequence[Schema], name: str, *, role: str
) -> tuple[SemanticType, tuple[str, ...]]:
    """The column's semantic type on every pod and, if categorical, its union of values."""
    found: list[ColumnSchema] = [schema.column(name) for schema in schemas]
    stypes = {column.stype for column in found}
    if len(stypes) > 1:
        kinds = ", ".join(f"pod {i}: {c.stype}" for i, c in enumerate(found))
        raise TaskDefinitionError(
            f"features: {role} column {name!r} has different semantic types on the pods "
            f"({kinds}); force one type with force_stypes in the pods' configs"
        )
    stype = stypes.pop()
    if stype in (SemanticType.TEXT, SemanticType.IMAGE):
        fix = (
            "choose another target"
            if role == "target"
            else "add it to ignore_cols (select.exclude) or force it to categorical"
        )
        raise TaskDefinitionError(
            f"features: {role} column {name!r} is {stype}, which a tabular model cannot use; {fix}"
        )
    if stype is not SemanticType.CATEGORICAL:
        return stype, ()
    unlisted = [i for i, column in enumerate(found) if column.values is None]
    if unlisted:
        raise TaskDefinitionError(
            f"features: categorical {role} column {name!r} has no value set in the schema "
            f"of pod(s) {unlisted}; the pods must publish a full schema"
        )
    values = sorted({v for column in found for v in column.values or ()})
    return stype, tuple(values)


# -- normalisation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Normalisation:
    """Per continuous column, the ``(mean, std)`` that values are normalised with."""

    columns: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked: dict[str, tuple[float, float]] = {}
        for name, (raw_mean, raw_std) in self.columns.items():
            mean, std = float(raw_mean), float(raw_std)
            if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
                raise TaskDefinitionError(
                    f"normalisation: column {name!r} needs a finite mean and a positive "
                    f"finite std, got ({mean}, {std})"
                )
            checked[name] = (mean, std)
        object.__setattr__(self, "columns", checked)

    @classmethod
    def from_moments(cls, moments: Mapping[str, tuple[int, float, float]]) -> Normalisation:
        """Mean and population std from ``{column: (count, mean, M2)}`` (Welford's M2).

        A column whose variance is at most :data:`VARIANCE_FLOOR` (a constant column) gets
        std 1.0, so it normalises to 0 rather than to rounding noise divided by ~0; a
        column with no values anywhere gets ``(0.0, 1.0)``: every value is missing and
        encodes as 0.

        Raises:
            ProtocolError: A negative count or M2, or a value that is not finite.
        """
        result: dict[str, tuple[float, float]] = {}
        for name, (raw_count, raw_mean, raw_m2) in moments.items():
            count, mean, m2 = int(raw_count), float(raw_mean), float(raw_m2)
            if count < 0 or not (math.isfinite(mean) and math.isfinite(m2)) or m2 < -1e-9:
                raise ProtocolError(
                    f"normalisation: moments of {name!r} must be a count >= 0, a finite "
                    f"mean and a finite M2 >= 0, got ({count}, {mean}, {m2})"
                )
            if count == 0:
                result[name] = (0.0, 1.0)
                continue
            variance = max(m2, 0.0) / count
            result[name] = (mean, math.sqrt(variance) if variance > VARIANCE_FLOOR else 1.0)
        return cls(result)

    def to_definition(self) -> dict[str, Any]:
        """Canonical JSON values: ``{"columns": {name: [mean, std]}}``."""
        return {"columns": {name: [m, s] for name, (m, s) in self.columns.items()}}

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Normalisation:
        """Rebuild from :meth:`to_definition` output; a :class:`TaskDefinitionError` if bad."""
        model = parse_arguments("normalisation", _NormalisationModel, definition)
        return cls({name: (pair[0], pair[1]) for name, pair in model.columns.items()})


class _NormalisationModel(Arguments):
    columns: dict[str, list[float]]

    @field_validator("columns")
    @classmethod
    def _pairs(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        bad = sorted(name for name, pair in value.items() if len(pair) != 2)
        if bad:
            raise ValueError(f"each column needs [mean, std]; {bad} do not have two values")
        return value


def moments_of(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, tuple[int, float, float]]:
    """``{column: (count, mean, M2)}`` of the non-missing values, for a federated merge.

    Values are read as the encoder reads them (booleans as 0/1, datetimes as seconds
    since the epoch, text that is not a number as missing). An empty column gives
    ``(0, 0.0, 0.0)``.

    Raises:
        TaskDefinitionError: A column is not in ``frame``.
    """
    names = list(columns)
    _require_columns(frame, names)
    result: dict[str, tuple[int, float, float]] = {}
    for name in names:
        values = _as_float(frame[name])
        values = values[~np.isnan(values)]
        if values.size == 0:
            result[name] = (0, 0.0, 0.0)
            continue
        mean = float(values.mean())
        m2 = float(np.square(values - mean).sum())
        result[name] = (int(values.size), mean, m2)
    return result


# -- encoding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A table encoded for a tabular model.

    Attributes:
        categorical: Category codes ``[n, n_categorical]`` (int64; 0 = unknown or missing).
        continuous: Normalised values ``[n, n_continuous]`` (float32; missing = 0.0).
        target: Class indexes (int64) or values (float32), ``[n]``; ``None`` when the
            table has no target column (inference).
        dropped: Rows left out because their target was missing or an unknown class.
    """

    categorical: NDArray[np.int64]
    continuous: NDArray[np.float32]
    target: NDArray[np.int64] | NDArray[np.float32] | None
    dropped: int = 0

    def __len__(self) -> int:
        return int(self.categorical.shape[0])


class TabularEncoder:
    """Encode a pod's rows as :class:`TabularFeatures` and a :class:`Normalisation` say.

    Raises:
        TaskDefinitionError: ``normalisation`` lacks a continuous column.
    """

    def __init__(self, features: TabularFeatures, normalisation: Normalisation) -> None:
        lacking = [c for c in features.continuous if c not in normalisation.columns]
        if lacking:
            raise TaskDefinitionError(
                f"normalisation: no mean and std for continuous column(s) {lacking}"
            )
        self.features = features
        self.normalisation = normalisation

    @property
    def cardinalities(self) -> list[int]:
        """Per categorical column, its number of codes (categories + 1 for unknown)."""
        return [len(f.categories) + 1 for f in self.features.categorical]

    @property
    def n_continuous(self) -> int:
        """The number of continuous columns."""
        return len(self.features.continuous)

    def encode(self, frame: pd.DataFrame) -> Encoded:
        """The model inputs (and targets) of ``frame``'s rows.

        Raises:
            TaskDefinitionError: A feature column is not in ``frame``.
        """
        _require_columns(frame, self.features.columns)
        target, keep = self._target(frame)
        rows = len(frame)
        categorical = np.zeros((rows, len(self.features.categorical)), dtype=np.int64)
        for index, feature in enumerate(self.features.categorical):
            categorical[:, index] = _category_codes(frame[feature.name], feature.categories)
        continuous = np.zeros((rows, self.n_continuous), dtype=np.float32)
        for index, name in enumerate(self.features.continuous):
            mean, std = self.normalisation.columns[name]
            values = (_as_float(frame[name]) - mean) / std
            continuous[:, index] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        if keep is None:
            return Encoded(categorical, continuous, target)
        dropped = rows - int(keep.sum())
        if dropped:
            categorical, continuous = categorical[keep], continuous[keep]
            target = None if target is None else target[keep]
        return Encoded(categorical, continuous, target, dropped)

    def _target(
        self, frame: pd.DataFrame
    ) -> tuple[NDArray[np.int64] | NDArray[np.float32] | None, NDArray[np.bool_] | None]:
        """The encoded target and which rows have a usable one; ``None`` without a target."""
        name = self.features.target
        if name not in frame.columns:
            return None, None
        if self.features.task == "regression":
            values = _as_float(frame[name])
            keep = ~np.isnan(values)
            return values.astype(np.float32), keep
        classes = _category_codes(frame[name], self.features.classes) - 1
        return classes, classes >= 0


def text_codes(values: pd.Series) -> tuple[NDArray[np.intp], list[str]]:
    """Codes of ``values`` into their distinct values rendered as text (-1 = missing).

    Several raw values may render as the same text (``1`` and ``1.0``); only the distinct
    values are rendered, so this is fast on long columns.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = [render_value(v) for v in np.asarray(uniques, dtype=object)]
    return np.asarray(codes, dtype=np.intp), labels


def _category_codes(values: pd.Series, categories: Sequence[str]) -> NDArray[np.int64]:
    """Code ``i + 1`` for category ``i``; 0 for a missing or unknown value."""
    codes, labels = text_codes(values)
    position = {category: i + 1 for i, category in enumerate(categories)}
    # One extra entry (0) at the end, which code -1 (missing) picks.
    lookup = np.array([*(position.get(label, 0) for label in labels), 0], dtype=np.int64)
    result: NDArray[np.int64] = lookup[codes]
    return result


def _as_float(values: pd.Series) -> NDArray[np.float64]:
    """The column as float64 numbers; missing and non-numeric values are NaN."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _as_float(values.astype(object))
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        since = (values - pd.Timestamp(0)).dt.total_seconds()
        seconds: NDArray[np.float64] = np.asarray(since, dtype=np.float64)
        return seconds
    if pd.api.types.is_timedelta64_dtype(dtype):
        durations: NDArray[np.float64] = values.dt.total_seconds().to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        return durations
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        numbers: NDArray[np.float64] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers
    parsed = pd.to_numeric(values, errors="coerce")
    return np.asarray(parsed, dtype=np.float64)


def _require_columns(frame: pd.DataFrame, names: Iterable[str]) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TaskDefinitionError(
            f"column(s) {missing} are not in the data; the available columns are "
            f"{[str(c) for c in frame.columns]}"
        )
