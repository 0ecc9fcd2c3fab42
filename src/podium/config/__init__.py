"""Pod (and later task) configuration: pydantic models, the YAML loader, source building.

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

__all__ = [
    "POD_NAME_PATTERN",
    "SEMANTIC_TYPES",
    "APIKeys",
    "DPPodConfig",
    "DataSplitArgs",
    "DataSplitConfig",
    "DatasourceConfig",
    "HubConfig",
    "PodConfig",
    "PodDataConfig",
    "PodDetailsConfig",
    "build_datasource",
    "build_datasources",
    "expand_variables",
    "format_path",
    "load_pod_config",
    "load_yaml",
    "validate_config",
]
