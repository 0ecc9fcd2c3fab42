"""``podium run-pod CONFIG``: a pod from its YAML config, connected to a hub until stopped.

What it does (the work is :class:`podium.pod.Pod`'s; this is the command-line edge):

1. loads the config (Bitfount's format) and opens every datasource; each one's schema is
   inferred here (the data stays on this machine: only the schema, its description and
   the record count go to the hub, the count hidden when the pod uses differential
   privacy), and each datasource is registered as the pod ``<owner>/<datasource name>``;
2. finds the hub (``--hub``, else the config's ``hub.url``, else ``$PODIUM_HUB``, else the
   hub of the last ``podium login``) and a credential: the pod's API key
   (``$PODIUM_API_KEY``, else the config's ``secrets``), best for a pod that runs
   unattended, else the saved ``podium login`` to that hub, whose tokens are refreshed;
3. keeps the pod's keys under ``$PODIUM_HOME/pods/<owner>/<datasource>/keys`` and its pod
   DB at the config's ``pod_db`` path, else ``$PODIUM_HOME/pods/<owner>/<pod>/pod.db``;
   applies the local policy of ``--policy``;
4. runs until Ctrl-C or SIGTERM, both of which stop it cleanly (exit 0).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from podium.core.errors import ConfigError
from podium.core.settings import env_api_key

if TYPE_CHECKING:
    from podium.config.models import PodConfig
    from podium.hub.client import HubClient
    from podium.pod.pod import DatasourceContainerConfig, Pod

__all__ = ["pod_api_key", "pod_containers", "pod_from_config", "serve_pod"]


def pod_api_key(config: PodConfig) -> str | None:
    """``$PODIUM_API_KEY``, else the config's ``secrets`` as ``pdm_<id>_<secret>``."""
    from_env = env_api_key(os.environ)
    if from_env:
        return from_env
    if config.secrets is not None:
        secret = config.secrets.access_key.get_secret_value()
        return f"pdm_{config.secrets.access_key_id}_{secret}"
    return None


def pod_containers(config: PodConfig, config_path: Path) -> list[DatasourceContainerConfig]:
    """The config's datasources, opened, as :class:`Pod` takes them (no hub contacted)."""
    from podium.config import build_datasources
    from podium.pod.pod import DatasourceContainerConfig

    sources = build_datasources(config)
    containers = []
    for container in config.containers():
        schema = container.schema_path
        if schema is not None and not schema.is_absolute():
            schema = config_path.parent / schema
        containers.append(
            DatasourceContainerConfig(
                name=container.name,
                datasource=sources[container.name],
                datasource_details=container.datasource_details_config,
                data_config=container.data_config,
                schema=schema,
            )
        )
    return containers


def pod_from_config(
    config: PodConfig,
    config_path: Path,
    *,
    hub_url: str,
    api_key: str | None,
    policy_path: Path | None,
    hub_client: Callable[[], HubClient] | None = None,
) -> Pod:
    """The :class:`Pod` a config describes, its datasources opened (no hub contacted)."""
    from podium.pod.pod import Pod
    from podium.pod.policy import PodPolicy, load_policy

    containers = pod_containers(config, config_path)
    return Pod(
        config.name,
        datasources=containers,
        username=config.username,
        hub=hub_url,
        approved_pods=config.approved_pods,
        differential_privacy=config.differential_privacy,
        pod_db=config.pod_db if isinstance(config.pod_db, Path) else False,
        update_schema=config.update_schema,
        secrets=api_key,
        policy=load_policy(policy_path) if policy_path is not None else PodPolicy(),
        hub_client=hub_client,
    )


def serve_pod(
    config_path: Path,
    hub_option: str | None,
    policy_path: Path | None,
    announce: Callable[[str], None],
) -> None:
    """Run the pod of ``config_path`` until Ctrl-C or SIGTERM (see the module docs)."""
    from podium.cli._hub_session import hub_client, hub_target
    from podium.config import load_pod_config

    config = load_pod_config(config_path)
    api_key = pod_api_key(config)
    target = hub_target(hub_option or (config.hub.url if config.hub is not None else None))
    hub_url = target.url
    login: Callable[[], HubClient] | None = None
    if api_key is None:
        if target.login is None:
            raise ConfigError(
                f"{config_path}: a pod needs a credential for {hub_url}: an API key "
                "(`podium api-key create NAME`, then PODIUM_API_KEY or `secrets:` in the "
                f"config) or a login (`podium login --hub {hub_url}`)"
            )
        login = lambda: hub_client(target)  # noqa: E731 - the saved login, refreshed
    pod = pod_from_config(
        config,
        config_path,
        hub_url=hub_url,
        api_key=api_key,
        policy_path=policy_path,
        hub_client=login,
    )

    def online() -> None:
        announce(f"Pod {', '.join(pod.pod_ids)} is online at {hub_url} (Ctrl-C to stop)")

    asyncio.run(pod.serve_until_signalled(on_ready=online))
    announce(f"Pod {', '.join(pod.pod_ids) or pod.name} stopped")
