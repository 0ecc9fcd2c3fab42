"""The public facade: what ``import podium`` offers is deliberate and pinned."""

from __future__ import annotations

import subprocess
import sys

import podium
import podium.data

EXPECTED = [
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


def test_all_is_exactly_the_pinned_list() -> None:
    """podium.__all__ is the reviewed list; adding or removing a name is a deliberate act."""
    assert podium.__all__ == EXPECTED


def test_all_is_sorted() -> None:
    """The facades keep __all__ sorted so additions are easy to review."""
    for module in (podium, podium.data):
        assert module.__all__ == sorted(module.__all__), module.__name__


def test_every_exported_name_exists() -> None:
    """Every name in __all__ resolves to an object in the package."""
    for module in (podium, podium.data):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], module.__name__


def test_import_has_no_side_effects() -> None:
    """Importing podium adds no logging handlers and starts no threads."""
    code = (
        "import logging, threading\n"
        "before = threading.active_count()\n"
        "import podium\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "assert logging.getLogger('podium').handlers == []\n"
        "assert threading.active_count() == before\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
