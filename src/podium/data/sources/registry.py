"""Datasource type names as written in YAML, mapped to their classes.

Classes are imported on first use, so that reading a CSV never imports pydicom or
SQLAlchemy. Names with a ``bitfount.`` prefix are accepted for Bitfount configs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

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

    A wrong or missing argument becomes a :class:`ConfigValidationError` naming ``where``.
    """
    cls = source_class(name)
    try:
        return cls(**args)
    except TypeError as exc:
        raise ConfigValidationError(
            f"{where}: invalid arguments for {cls.kind}: {exc}. "
            f"See docs/datasources.md for the arguments {cls.kind} takes."
        ) from exc


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
    """Build the source that reads ``path``, chosen by its file ending."""
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
