"""Podium: self-hostable federated analytics and federated learning.

The names below are the public API; everything else may change between minor versions.
They are imported on first use, so `import podium` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium._version import __version__

if TYPE_CHECKING:
    from podium.config import (
        DatasourceConfig,
        DataSplitConfig,
        DPPodConfig,
        PodConfig,
        PodDataConfig,
        PodDetailsConfig,
        build_datasource,
        build_datasources,
        load_pod_config,
    )
    from podium.core.errors import (
        ConfigError,
        ConfigFileError,
        ConfigValidationError,
        DataSourceError,
        DataSourceNotFoundError,
        DataSourceReadError,
        ForbiddenQueryError,
        PodiumError,
        QueryError,
        QueryExecutionError,
        SchemaError,
        UnknownDataSourceError,
        UnsetVariableError,
    )
    from podium.data import (
        ColumnSchema,
        CSVSource,
        DatabaseSource,
        DataFrameSource,
        DataSource,
        DICOMSource,
        ExcelSource,
        ImageSource,
        ParquetSource,
        Schema,
        SchemaLevel,
        SemanticType,
        SQLEngine,
        infer_schema,
    )
    from podium.hub.client import HubClient, HubClientError, HubUnreachableError
    from podium.hub.config import HubConfig
    from podium.pod.pod import DatasourceContainerConfig, Pod

_LAZY: dict[str, str] = {
    "CSVSource": "podium.data",
    "ColumnSchema": "podium.data",
    "ConfigError": "podium.core.errors",
    "ConfigFileError": "podium.core.errors",
    "ConfigValidationError": "podium.core.errors",
    "DICOMSource": "podium.data",
    "DPPodConfig": "podium.config",
    "DataFrameSource": "podium.data",
    "DataSource": "podium.data",
    "DataSourceError": "podium.core.errors",
    "DataSourceNotFoundError": "podium.core.errors",
    "DataSourceReadError": "podium.core.errors",
    "DataSplitConfig": "podium.config",
    "DatabaseSource": "podium.data",
    "DatasourceConfig": "podium.config",
    "DatasourceContainerConfig": "podium.pod.pod",
    "ExcelSource": "podium.data",
    "ForbiddenQueryError": "podium.core.errors",
    "HubClient": "podium.hub.client",
    "HubClientError": "podium.hub.client",
    "HubConfig": "podium.hub.config",
    "HubUnreachableError": "podium.hub.client",
    "ImageSource": "podium.data",
    "ParquetSource": "podium.data",
    "Pod": "podium.pod.pod",
    "PodConfig": "podium.config",
    "PodDataConfig": "podium.config",
    "PodDetailsConfig": "podium.config",
    "PodiumError": "podium.core.errors",
    "QueryError": "podium.core.errors",
    "QueryExecutionError": "podium.core.errors",
    "SQLEngine": "podium.data",
    "Schema": "podium.data",
    "SchemaError": "podium.core.errors",
    "SchemaLevel": "podium.data",
    "SemanticType": "podium.data",
    "UnknownDataSourceError": "podium.core.errors",
    "UnsetVariableError": "podium.core.errors",
    "build_datasource": "podium.config",
    "build_datasources": "podium.config",
    "infer_schema": "podium.data",
    "load_pod_config": "podium.config",
}

__all__ = [
    "CSVSource",
    "ColumnSchema",
    "ConfigError",
    "ConfigFileError",
    "ConfigValidationError",
    "DICOMSource",
    "DPPodConfig",
    "DataFrameSource",
    "DataSource",
    "DataSourceError",
    "DataSourceNotFoundError",
    "DataSourceReadError",
    "DataSplitConfig",
    "DatabaseSource",
    "DatasourceConfig",
    "DatasourceContainerConfig",
    "ExcelSource",
    "ForbiddenQueryError",
    "HubClient",
    "HubClientError",
    "HubConfig",
    "HubUnreachableError",
    "ImageSource",
    "ParquetSource",
    "Pod",
    "PodConfig",
    "PodDataConfig",
    "PodDetailsConfig",
    "PodiumError",
    "QueryError",
    "QueryExecutionError",
    "SQLEngine",
    "Schema",
    "SchemaError",
    "SchemaLevel",
    "SemanticType",
    "UnknownDataSourceError",
    "UnsetVariableError",
    "__version__",
    "build_datasource",
    "build_datasources",
    "infer_schema",
    "load_pod_config",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
