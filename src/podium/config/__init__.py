"""Pod and task configuration: pydantic models, the YAML loader, source building.

Typical use::

    config = load_pod_config("pod.yaml")          # ${VAR} expanded from the environment
    sources = build_datasources(config)           # {datasource name: DataSource}
"""

from podium.config.build import build_datasource, build_datasources
from podium.config.loader import (
    expand_variables,
    format_path,
    load_pod_config,
    load_yaml,
    validate_config,
)
from podium.config.models import (
    POD_NAME_PATTERN,
    SEMANTIC_TYPES,
    APIKeys,
    DatasourceConfig,
    DataSplitArgs,
    DataSplitConfig,
    DPPodConfig,
    HubConfig,
    PodConfig,
    PodDataConfig,
    PodDetailsConfig,
)
from podium.config.task import (
    ModellerConfig,
    NamedConfig,
    PodsConfig,
    RunOptions,
    TaskConfig,
    TaskSpec,
    load_task_config,
    normalise_name,
    task_config_from_dict,
)

__all__ = [
    "POD_NAME_PATTERN",
    "SEMANTIC_TYPES",
    "APIKeys",
    "DPPodConfig",
    "DataSplitArgs",
    "DataSplitConfig",
    "DatasourceConfig",
    "HubConfig",
    "ModellerConfig",
    "NamedConfig",
    "PodConfig",
    "PodDataConfig",
    "PodDetailsConfig",
    "PodsConfig",
    "RunOptions",
    "TaskConfig",
    "TaskSpec",
    "build_datasource",
    "build_datasources",
    "expand_variables",
    "format_path",
    "load_pod_config",
    "load_task_config",
    "load_yaml",
    "normalise_name",
    "task_config_from_dict",
    "validate_config",
]
