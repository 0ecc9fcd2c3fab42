"""Data sources: one batched interface over files, databases, frames, images and DICOM."""

from podium.data.sources.base import (
    DEFAULT_BATCH_ROWS,
    DataSource,
    FileRecord,
    FileSource,
    Modifier,
)
from podium.data.sources.csv_source import CSVSource
from podium.data.sources.database_source import DatabaseSource
from podium.data.sources.dicom_source import DICOMSource
from podium.data.sources.excel_source import ExcelSource
from podium.data.sources.frame_source import DataFrameSource
from podium.data.sources.image_source import ImageSource
from podium.data.sources.parquet_source import ParquetSource
from podium.data.sources.registry import create_source, source_class, source_for_file

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "CSVSource",
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
    "create_source",
    "source_class",
    "source_for_file",
]
