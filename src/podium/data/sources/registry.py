"""Datasource type names as written in YAML, mapped to their classes.

Classes are imported on first use, so that reading a CSV never imports pydicom or
SQLAlchemy. Names with a ``bitfount.`` prefix are accepted for Bitfount configs.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from podium.core.errors import ConfigValidationError, UnknownDataSourceError
from podium.data.sources.base import DataSource

__all__ = ["SOURCE_TYPES", "create_source", "source_class"]

#: YAML type name -> "module:Class".
SOURCE_TYPES: dict[str, str] = {
    "CSVSource": "podium.data.sources.csv_source:CSVSource",
    "DICOMSource": "podium.data.sources.dicom_source:DICOMSource",
    "DataFrameSource": "podium.data.sources.frame_source:DataFrameSource",
    "DatabaseSource": "podium.data.sources.database_source:DatabaseSource",
    "ExcelSource": "podium.data.sources.excel_source:ExcelSource",
    "ImageSource": "podium.data.sources.image_source:ImageSource",
    "ParquetSource": "podium.data.sources.parquet_source:ParquetSource",
}


def source_class(name: str) -> type[DataSource]:
    """Return the class for a datasource type name such as ``CSVSource``."""
    bare = name.removeprefix("bitfount.")
    target = SOURCE_TYPES.get(bare)
    if target is None:
        raise UnknownDataSourceError(
            f"Unknown datasource type {name!r}. Use one of: {', '.join(sorted(SOURCE_TYPES))}."
        )
    module_name, _, class_name = target.partition(":")
    cls: type[DataSource] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_source(name: str, args: dict[str, Any], *, where: str = "datasource_args") -> DataSource:
    """Build a source from its type name and keyword arguments (``datasource_args``).

    Each argument is checked against the constructor's type annotations (and coerced the
    way pydantic's lax mode does, so ``batch_rows: "1000"`` from a ``${VAR}`` becomes
    1000). An unknown, missing or ill-typed argument is a :class:`ConfigValidationError`
    naming ``where`` and the argument.
    """
    cls = source_class(name)
    parameters = _parameters(cls)
    unknown = sorted(set(args) - set(parameters))
    if unknown:
        hints = "".join(
            f" (did you mean {close[0]!r} for {key!r}?)"
            for key in unknown
            if (close := difflib.get_close_matches(key, parameters, n=1))
        )
        raise ConfigValidationError(
            f"{where}: {cls.kind} takes no argument(s) {unknown}{hints}. It takes: "
            f"{', '.join(parameters)}. See docs/datasources.md."
        )
    missing = [key for key, param in parameters.items() if param.required and key not in args]
    if missing:
        raise ConfigValidationError(
            f"{where}: {cls.kind} needs {', '.join(missing)}; add it under {where}."
        )
    checked: dict[str, Any] = {
        key: parameters[key].check(value, f"{where}.{key}") for key, value in args.items()
    }
    return cls(**checked)


@dataclass(frozen=True)
class _Parameter:
    required: bool
    adapter: TypeAdapter[Any] | None

    def check(self, value: object, where: str) -> object:
        if self.adapter is None:
            return value
        try:
            return self.adapter.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(error["msg"] for error in exc.errors())
            raise ConfigValidationError(
                f"{where}: {problems} (got {value!r}). Fix the value in the config."
            ) from exc


@functools.cache
def _parameters(cls: type[DataSource]) -> dict[str, _Parameter]:
    """The keyword parameters of ``cls``'s constructor with validators for their types."""
    hints = typing.get_type_hints(cls.__init__)
    config = ConfigDict(arbitrary_types_allowed=True)
    found: dict[str, _Parameter] = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(param.name)
        adapter = None if hint is None else TypeAdapter(hint, config=config)
        found[param.name] = _Parameter(param.default is param.empty, adapter)
    return found


#: File endings -> source type, for commands that take a bare file (``podium schema``).
_FILE_TYPES: tuple[tuple[str, str], ...] = (
    (".csv", "CSVSource"),
    (".csv.gz", "CSVSource"),
    (".tsv", "CSVSource"),
    (".parquet", "ParquetSource"),
    (".pq", "ParquetSource"),
    (".xlsx", "ExcelSource"),
    (".xlsm", "ExcelSource"),
)


def source_for_file(path: Path) -> DataSource:
    """Build the source that reads ``path``, chosen by its file ending (a folder: Parquet)."""
    if path.is_dir():
        if any(path.glob("*.parquet")):
            return create_source("ParquetSource", {"path": path}, where=str(path))
        raise UnknownDataSourceError(
            f"{path}: a folder without .parquet files. Give one file, or describe a folder "
            "of images or DICOM files in a pod config (ImageSource, DICOMSource)."
        )
    lowered = path.name.lower()
    for ending, kind in _FILE_TYPES:
        if lowered.endswith(ending):
            args: dict[str, Any] = {"path": path}
            if ending == ".tsv":
                args["read_csv_kwargs"] = {"sep": "\t"}
            return create_source(kind, args, where=str(path))
    endings = ", ".join(ending for ending, _ in _FILE_TYPES)
    raise UnknownDataSourceError(
        f"{path}: cannot tell the file type from its name. Podium reads files ending in "
        f"{endings}; rename the file or describe it in a pod config."
    )
