"""Podium: self-hostable federated analytics and federated learning.

The names below are the public API; everything else may change between minor versions.
They are imported on first use, so `import podium` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium._version import __version__

if TYPE_CHECKING:
    from podium.algorithms import (
        ColumnAverage,
        CSVReportAlgorithm,
        SqlQuery,
        Statistics,
        TableResult,
    )
    from podium.algorithms.model_training import FederatedModelTraining
    from podium.config import (
        DatasourceConfig,
        DataSplitConfig,
        DPPodConfig,
        PodConfig,
        PodDataConfig,
        PodDetailsConfig,
        TaskConfig,
        build_datasource,
        build_datasources,
        load_pod_config,
        load_task_config,
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
        PodResponseError,
        ProtocolError,
        QueryError,
        QueryExecutionError,
        SchemaError,
        TaskDefinitionError,
        TaskError,
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
    from podium.modeller import Modeller
    from podium.pod.pod import DatasourceContainerConfig, Pod
    from podium.protocols import HookEvent, Hooks, ResultsOnly, RunOptions, TaskOutcome
    from podium.protocols.fedavg import FederatedAveraging, TrainingResult

_LAZY: dict[str, str] = {
    "CSVReportAlgorithm": "podium.algorithms",
    "CSVSource": "podium.data",
    "ColumnAverage": "podium.algorithms",
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
    "FederatedAveraging": "podium.protocols.fedavg",
    "FederatedModelTraining": "podium.algorithms.model_training",
    "ForbiddenQueryError": "podium.core.errors",
    "HookEvent": "podium.protocols",
    "Hooks": "podium.protocols",
    "HubClient": "podium.hub.client",
    "HubClientError": "podium.hub.client",
    "HubConfig": "podium.hub.config",
    "HubUnreachableError": "podium.hub.client",
    "ImageSource": "podium.data",
    "Modeller": "podium.modeller",
    "ParquetSource": "podium.data",
    "Pod": "podium.pod.pod",
    "PodConfig": "podium.config",
    "PodDataConfig": "podium.config",
    "PodDetailsConfig": "podium.config",
    "PodResponseError": "podium.core.errors",
    "PodiumError": "podium.core.errors",
    "ProtocolError": "podium.core.errors",
    "QueryError": "podium.core.errors",
    "QueryExecutionError": "podium.core.errors",
    "ResultsOnly": "podium.protocols",
    "RunOptions": "podium.protocols",
    "SQLEngine": "podium.data",
    "Schema": "podium.data",
    "SchemaError": "podium.core.errors",
    "SchemaLevel": "podium.data",
    "SemanticType": "podium.data",
    "SqlQuery": "podium.algorithms",
    "Statistics": "podium.algorithms",
    "TableResult": "podium.algorithms",
    "TaskConfig": "podium.config",
    "TaskDefinitionError": "podium.core.errors",
    "TaskError": "podium.core.errors",
    "TaskOutcome": "podium.protocols",
    "TrainingResult": "podium.protocols.fedavg",
    "UnknownDataSourceError": "podium.core.errors",
    "UnsetVariableError": "podium.core.errors",
    "build_datasource": "podium.config",
    "build_datasources": "podium.config",
    "infer_schema": "podium.data",
    "load_pod_config": "podium.config",
    "load_task_config": "podium.config",
}

__all__ = [
    "CSVReportAlgorithm",
    "CSVSource",
    "ColumnAverage",
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
    "FederatedAveraging",
    "FederatedModelTraining",
    "ForbiddenQueryError",
    "HookEvent",
    "Hooks",
    "HubClient",
    "HubClientError",
    "HubConfig",
    "HubUnreachableError",
    "ImageSource",
    "Modeller",
    "ParquetSource",
    "Pod",
    "PodConfig",
    "PodDataConfig",
    "PodDetailsConfig",
    "PodResponseError",
    "PodiumError",
    "ProtocolError",
    "QueryError",
    "QueryExecutionError",
    "ResultsOnly",
    "RunOptions",
    "SQLEngine",
    "Schema",
    "SchemaError",
    "SchemaLevel",
    "SemanticType",
    "SqlQuery",
    "Statistics",
    "TableResult",
    "TaskConfig",
    "TaskDefinitionError",
    "TaskError",
    "TaskOutcome",
    "TrainingResult",
    "UnknownDataSourceError",
    "UnsetVariableError",
    "__version__",
    "build_datasource",
    "build_datasources",
    "infer_schema",
    "load_pod_config",
    "load_task_config",
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
