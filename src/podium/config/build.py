"""Turn datasource configs into :class:`~podium.data.sources.base.DataSource` objects.

Building does no I/O: a source opens its files or database when first read. Relative
paths in ``datasource_args`` (``path``, ``labels`` and the file of a ``sqlite:///`` URL)
are resolved against the config file's folder, so a config and its data can move together.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from podium.config.models import DatasourceConfig, PodConfig
from podium.core.errors import ConfigValidationError
from podium.data.sources.base import DataSource
from podium.data.sources.registry import create_source

__all__ = ["PATH_ARGS", "build_datasource", "build_datasources"]

logger = logging.getLogger("podium.config.build")

#: ``datasource_args`` that hold a file or folder path, resolved against the config's folder.
PATH_ARGS: tuple[str, ...] = ("path", "labels")


def _resolve(value: str | os.PathLike[str], base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _resolve_sqlite_url(value: str, base_dir: Path) -> str:
    """Make the file of a ``sqlite:///relative.db`` URL relative to ``base_dir``."""
    try:
        url = make_url(value)
    except ArgumentError:
        return value  # the source reports a bad URL without echoing it
    database = url.database
    if url.get_backend_name() != "sqlite" or not database:
        return value
    if database == ":memory:" or database.startswith("file:"):
        return value
    resolved = _resolve(database, base_dir)
    return url.set(database=str(resolved)).render_as_string(hide_password=False)


def build_datasource(
    container: DatasourceConfig, *, base_dir: Path, where: str | None = None
) -> DataSource:
    """Build the source a datasource config describes.

    Args:
        container: The datasource config (see :meth:`PodConfig.containers`).
        base_dir: The folder relative paths are resolved against (the config's folder).
        where: How error messages name ``datasource_args``; by default the datasource's
            name and field path.

    Raises:
        UnknownDataSourceError: The type name is not a Podium source.
        ConfigValidationError: ``datasource_args`` do not fit the source's constructor, or
            repeat ``ignore_cols`` / ``modifiers`` given in ``data_config``.
    """
    data_config = container.data_config
    location = where or f"datasource {container.name!r}: data_config.datasource_args"
    args: dict[str, Any] = dict(data_config.datasource_args)
    for key in PATH_ARGS:
        value = args.get(key)
        if isinstance(value, str | os.PathLike):
            args[key] = _resolve(value, base_dir)
    if isinstance(args.get("url"), str):
        args["url"] = _resolve_sqlite_url(args["url"], base_dir)
    extras: dict[str, Any] = {
        "ignore_cols": list(data_config.ignore_cols),
        "modifiers": dict(data_config.modifiers),
    }
    for key, value in extras.items():
        if not value:
            continue
        if key in args:
            raise ConfigValidationError(
                f"{location}.{key}: {key} is given both here and in data_config.{key}; "
                f"keep only data_config.{key}."
            )
        args[key] = value
    source = create_source(container.datasource, args, where=location)
    logger.debug("built %s for datasource %s", source.describe(), container.name)
    return source


def build_datasources(config: PodConfig) -> dict[str, DataSource]:
    """Build every datasource of a pod, keyed by datasource name (its SQL table name)."""
    single = config.datasources is None
    prefix = f"{config.source_path}: " if config.source_path else ""
    sources: dict[str, DataSource] = {}
    for index, container in enumerate(config.containers()):
        field = "data_config" if single else f"datasources[{index}].data_config"
        sources[container.name] = build_datasource(
            container, base_dir=config.base_dir, where=f"{prefix}{field}.datasource_args"
        )
    return sources
