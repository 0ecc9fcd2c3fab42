"""A pod's data layer: sources, schemas, SQL, splits and the bundled census data."""

from podium.data.schema import (
    ColumnSchema,
    Schema,
    SchemaBuilder,
    SchemaLevel,
    SemanticType,
    infer_schema,
    iter_schema,
    normalize_force_stypes,
)
from podium.data.sources import (
    CSVSource,
    DatabaseSource,
    DataFrameSource,
    DataSource,
    DICOMSource,
    ExcelSource,
    FileRecord,
    FileSource,
    ImageSource,
    Modifier,
    ParquetSource,
    create_source,
)
from podium.data.splitting import split_frame
from podium.data.sql import SQLEngine, validate_query

__all__ = [
    "CSVSource",
    "ColumnSchema",
    "DICOMSource",
    "DataFrameSource",
    "DataSource",
    "DatabaseSource",
    "ExcelSource",
    "FileRecord",
    "FileSource",
    "ImageSource",
    "Modifier",
    "ParquetSource",
    "SQLEngine",
    "Schema",
    "SchemaBuilder",
    "SchemaLevel",
    "SemanticType",
    "create_source",
    "infer_schema",
    "iter_schema",
    "normalize_force_stypes",
    "split_frame",
    "validate_query",
]
