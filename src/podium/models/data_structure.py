"""What a training task learns from: the target, the feature columns and the data split.

Two shapes of definition are accepted and normalised to one :class:`DataStructure`.
Bitfount's::

    table_config: {table: census}
    select: {include: [age, education], exclude: [fnlwgt]}
    assign: {target: TARGET}
    data_split: {data_splitter: percentage, args: {validation_percentage: 10}}

and Podium's flat one::

    target: TARGET
    selected_cols: [age, education]
    ignore_cols: [fnlwgt]
    data_split: {data_splitter: percentage, args: {validation_percentage: 10}}

:meth:`DataStructure.to_definition` always writes the flat shape, with canonical JSON values
only, so the modeller can sign it inside a task definition and every pod reads back the
same structure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from podium.config.models import DataSplitConfig
from podium.core.errors import TaskDefinitionError
from podium.models.features import text_codes
from podium.protocols._arguments import Arguments, parse_arguments

__all__ = ["DataStructure", "Split"]

_OWNER = "data_structure"
_BITFOUNT_KEYS = frozenset({"table_config", "select", "assign"})


@dataclass(frozen=True)
class Split:
    """A table's rows split into training, validation and test sets (indexes reset)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


class DataStructure(Arguments):
    """The target, the feature columns and the split of a training task."""

    target: str = Field(min_length=1)
    """The column the model predicts."""

    selected_cols: tuple[str, ...] | None = Field(default=None, strict=False, min_length=1)
    """The feature columns to use; ``None`` means every column not ignored."""

    ignore_cols: tuple[str, ...] = Field(default=(), strict=False)
    """Columns never used as features."""

    table: str | None = None
    """The pod's table (datasource) to train on; ``None`` means the pod's only one."""

    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)
    """How each pod splits its rows; by default 10% validation and 10% test, shuffled."""

    @model_validator(mode="after")
    def _check_columns(self) -> Self:
        selected = self.selected_cols or ()
        repeated = sorted({c for c in selected if selected.count(c) > 1})
        if repeated:
            raise ValueError(f"selected_cols lists {repeated} more than once")
        if self.target in self.ignore_cols:
            raise ValueError(
                f"the target {self.target!r} is also in ignore_cols; remove it from there"
            )
        if self.split_column == self.target:
            raise ValueError(
                f"the split column {self.target!r} cannot also be the target; "
                "choose another data_split.args.column_name"
            )
        return self

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> DataStructure:
        """Parse either definition shape (see the module docstring).

        Raises:
            TaskDefinitionError: An unknown key, a wrong type or a bad split; the message
                names the field (``data_structure: argument 'assign.target': ...``).
        """
        if not isinstance(definition, Mapping):
            raise TaskDefinitionError(
                f"{_OWNER} must be a mapping, got {type(definition).__name__}"
            )
        if not _BITFOUNT_KEYS & set(definition):
            return parse_arguments(_OWNER, cls, definition)
        mixed = sorted({"target", "selected_cols", "ignore_cols"} & set(definition))
        if mixed:
            raise TaskDefinitionError(
                f"{_OWNER}: {mixed} belong to the flat shape but the definition also has "
                f"Bitfount's {sorted(_BITFOUNT_KEYS & set(definition))}; use one shape "
                "(assign.target, select.include, select.exclude or target, selected_cols, "
                "ignore_cols)"
            )
        parsed = parse_arguments(_OWNER, _BitfountShape, definition)
        flat: dict[str, Any] = {
            "target": parsed.assign.single_target(),
            "selected_cols": parsed.select.include,
            "ignore_cols": parsed.select.exclude,
            "table": None if parsed.table_config is None else parsed.table_config.table,
        }
        if parsed.data_split is not None:  # checked above; passed on as written
            flat["data_split"] = definition["data_split"]
        return parse_arguments(_OWNER, cls, flat)

    def to_definition(self) -> dict[str, Any]:
        """The flat shape with canonical JSON values; :meth:`from_definition` reads it back."""
        split = self.data_split
        definition: dict[str, Any] = {
            "target": self.target,
            "selected_cols": None if self.selected_cols is None else list(self.selected_cols),
            "ignore_cols": list(self.ignore_cols),
            "data_split": {
                "data_splitter": split.data_splitter,
                "args": _split_args(split),
            },
        }
        if self.table is not None:
            definition["table"] = self.table
        return definition

    # -- columns -------------------------------------------------------------------------

    @property
    def split_column(self) -> str | None:
        """The column a ``predefined`` split reads, which is never a feature."""
        if self.data_split.data_splitter != "predefined":
            return None
        return self.data_split.args.column_name

    def feature_columns(self, available: Sequence[str]) -> list[str]:
        """The feature columns among ``available`` (a pod's columns), in their order.

        Selected (or all) columns, minus the ignored ones, the target and the split column.

        Raises:
            TaskDefinitionError: The target, a selected or ignored column, or the split
                column is not among ``available``; the message lists the pod's columns.
        """
        present = set(available)
        wanted = [self.target, *(self.selected_cols or ()), *self.ignore_cols]
        if self.split_column is not None:
            wanted.append(self.split_column)
        missing = list(dict.fromkeys(c for c in wanted if c not in present))
        if missing:
            raise TaskDefinitionError(
                f"{_OWNER}: column(s) {missing} are not in the data; "
                f"{_roles(self, missing)}. The available columns are {list(available)}."
            )
        chosen = set(self.selected_cols) if self.selected_cols is not None else present
        dropped = {self.target, *self.ignore_cols, self.split_column}
        columns = [c for c in available if c in chosen and c not in dropped]
        if not columns:
            raise TaskDefinitionError(
                f"{_OWNER}: no feature columns are left after removing the target, "
                f"ignore_cols and the split column from {list(available)}"
            )
        return columns

    # -- splitting -----------------------------------------------------------------------

    def split(self, frame: pd.DataFrame, *, seed: int) -> Split:
        """Split ``frame``'s rows as ``data_split`` says; the same seed, the same split.

        Raises:
            TaskDefinitionError: A ``predefined`` split whose column is not in ``frame``.
        """
        if self.data_split.data_splitter == "predefined":
            return _predefined_split(frame, self.data_split)
        return _percentage_split(frame, self.data_split, seed=seed)


class _TableConfig(Arguments):
    table: str = Field(min_length=1)


class _Select(Arguments):
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)


class _Assign(Arguments):
    target: str | list[str]

    def single_target(self) -> str:
        if isinstance(self.target, str):
            return self.target
        if len(self.target) != 1:
            raise TaskDefinitionError(
                f"{_OWNER}: argument 'assign.target': give exactly one target column, got "
                f"{self.target}; several targets are not supported"
            )
        return self.target[0]


class _BitfountShape(Arguments):
    table_config: _TableConfig | None = None
    select: _Select = Field(default_factory=_Select)
    assign: _Assign
    data_split: DataSplitConfig | None = None


def _roles(structure: DataStructure, missing: Sequence[str]) -> str:
    """Say which role each missing column has in the structure."""
    parts = []
    for column in missing:
        if column == structure.target:
            role = "the target"
        elif column == structure.split_column:
            role = "the split column (data_split.args.column_name)"
        elif column in (structure.selected_cols or ()):
            role = "in selected_cols"
        else:
            role = "in ignore_cols"
        parts.append(f"{column!r} is {role}")
    return ", ".join(parts)


def _split_args(split: DataSplitConfig) -> dict[str, Any]:
    args = split.args
    if split.data_splitter == "predefined":
        return {
            "column_name": args.column_name,
            "training_set_label": args.training_set_label,
            "validation_set_label": args.validation_set_label,
            "test_set_label": args.test_set_label,
        }
    return {
        "validation_percentage": float(args.validation_percentage),
        "test_percentage": float(args.test_percentage),
        "shuffle": args.shuffle,
    }


def _percentage_split(frame: pd.DataFrame, config: DataSplitConfig, *, seed: int) -> Split:
    rows = len(frame)
    n_validation = math.floor(rows * config.args.validation_percentage / 100)
    n_test = math.floor(rows * config.args.test_percentage / 100)
    n_train = rows - n_validation - n_test
    if config.args.shuffle:
        order = np.random.default_rng(seed).permutation(rows)
    else:
        order = np.arange(rows)
    bounds = (0, n_train, n_train + n_validation, rows)
    parts = [
        frame.iloc[order[start:stop]].reset_index(drop=True)
        for start, stop in itertools.pairwise(bounds)
    ]
    return Split(parts[0], parts[1], parts[2])


def _predefined_split(frame: pd.DataFrame, config: DataSplitConfig) -> Split:
    args = config.args
    column = args.column_name
    if column is None or column not in frame.columns:
        raise TaskDefinitionError(
            f"{_OWNER}: data_split.args.column_name {column!r} is not in the data; the "
            f"available columns are {[str(c) for c in frame.columns]}"
        )
    codes, labels = text_codes(frame[column])
    wanted = (args.training_set_label, args.validation_set_label, args.test_set_label)
    # Several raw values may render as one label (1 and 1.0 are both "1").
    parts = [
        frame[np.isin(codes, [i for i, text in enumerate(labels) if text == label])].reset_index(
            drop=True
        )
        for label in wanted
    ]
    return Split(parts[0], parts[1], parts[2])
