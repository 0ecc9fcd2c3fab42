"""``podium run-pod CONFIG``: a pod from its YAML config, connected to a hub until stopped.

What it does:

1. loads the config (Bitfount's format), opens the datasource and infers its schema (the
   data stays here: only the schema, its description and the record count go to the hub,
   the count hidden when the pod uses differential privacy);
2. finds the hub (``--hub``, else the config's ``hub.url``, else ``$PODIUM_HUB``, else the
   hub of the last ``podium login``) and the pod's API key (``$PODIUM_API_KEY``, else the
   config's ``secrets``): a pod runs unattended, so it needs a key that does not expire;
3. loads or creates the pod's keys under ``$PODIUM_HOME/pods/<owner>/<pod>/keys`` and
   opens its pod DB (the config's ``pod_db`` path, else
   ``$PODIUM_HOME/pods/<owner>/<pod>/pod.db``), and the local policy (``--policy``);
4. runs :class:`podium.pod.runtime.PodService` until Ctrl-C or SIGTERM, both of which
   stop it cleanly (exit 0).

A pod with several datasources cannot run yet (``--dry-run`` checks it).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from podium.core.errors import ConfigError
from podium.core.settings import env_api_key, env_hub, podium_home

if TYPE_CHECKING:
    from podium.config.models import PodConfig
    from podium.data.schema import Schema
    from podium.hub.schemas import PodIn
    from podium.pod.policy import PodPolicy

__all__ = ["pod_api_key", "registration", "serve_pod"]


def pod_api_key(config: PodConfig, config_path: Path) -> str:
    """``$PODIUM_API_KEY``, else the config's ``secrets`` as ``pdm_<id>_<secret>``."""
    from_env = env_api_key(os.environ)
    if from_env:
        return from_env
    if config.secrets is not None:
        secret = config.secrets.access_key.get_secret_value()
        return f"pdm_{config.secrets.access_key_id}_{secret}"
    raise ConfigError(
        f"{config_path}: a pod needs an API key to run: create one with "
        "`podium api-key create NAME` and set PODIUM_API_KEY, or put it under `secrets:` "
        "in the config"
    )


def registration(config: PodConfig, schema: Schema) -> PodIn:
    """What the pod tells the hub about itself (its keys are added by the service)."""
    from podium.hub.schemas import PodIn

    details = config.pod_details_config
    return PodIn(
        display_name=(details.display_name if details else None) or config.name,
        description=(details.description if details else None) or "",
        schema_=schema.to_dict(),
        schema_hash=schema.hash,
        number_of_records=schema.num_records,
    )


def serve_pod(
    config_path: Path,
    hub_option: str | None,
    policy_path: Path | None,
    schema_of: Callable[[PodConfig], Schema],
    announce: Callable[[str], None],
) -> None:
    """Run the pod of ``config_path`` until Ctrl-C or SIGTERM (see the module docs)."""
    from podium.cli._hub_session import credentials_file
    from podium.cli.credentials import resolve_hub
    from podium.config import load_pod_config
    from podium.pod.policy import PodPolicy, load_policy

    config = load_pod_config(config_path)
    if len(config.containers()) != 1:
        raise ConfigError(
            f"{config_path}: a pod with several datasources cannot run in this version of "
            "Podium yet; run one pod per datasource (`--dry-run` checks this config)"
        )
    policy = load_policy(policy_path) if policy_path is not None else PodPolicy()
    api_key = pod_api_key(config, config_path)
    option = hub_option or (config.hub.url if config.hub is not None else None)
    hub_url = resolve_hub(option, env_hub(os.environ), credentials_file().load())
    schema = schema_of(config)
    details = registration(config, schema)
    asyncio.run(
        _serve(
            config,
            hub_url=hub_url,
            api_key=api_key,
            details=details,
            policy=policy,
            announce=announce,
        )
    )


async def _serve(
    config: PodConfig,
    *,
    hub_url: str,
    api_key: str,
    details: PodIn,
    policy: PodPolicy,
    announce: Callable[[str], None],
) -> None:
    from podium.hub.client import HubClient
    from podium.pod.keys import default_keys_folder, load_or_create_pod_keys
    from podium.pod.runtime import PodService
    from podium.pod.store import open_pod_store

    owner = config.username
    if owner is None:
        async with HubClient(hub_url, token=api_key) as client:
            owner = (await client.me()).name
    pod_id = f"{owner}/{config.name}"
    keys = await asyncio.to_thread(load_or_create_pod_keys, default_keys_folder(owner, config.name))
    db_path = (
        config.pod_db
        if isinstance(config.pod_db, Path)
        else podium_home(os.environ) / "pods" / owner / config.name / "pod.db"
    )
    with await asyncio.to_thread(open_pod_store, db_path) as store:
        service = PodService(
            pod_id=pod_id,
            hub_url=hub_url,
            credential=api_key,
            registration=details,
            keys=keys,
            store=store,
            policy=policy,
            approved_pods=config.approved_pods,
        )
        running = asyncio.create_task(service.run())
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, running.cancel)
        ready = asyncio.create_task(service.ready.wait())
        await asyncio.wait({ready, running}, return_when=asyncio.FIRST_COMPLETED)
        if service.ready.is_set():
            announce(f"Pod {pod_id} is online at {hub_url} (Ctrl-C to stop)")
        ready.cancel()
        try:
            await running
        except asyncio.CancelledError:
            announce(f"Pod {pod_id} stopped")
        finally:
            for stop in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(stop)
