"""``Pod``: the data owner's runtime as a Python object, with Bitfount's arguments.

::

    from podium import CSVSource
    from podium.pod import DatasourceContainerConfig, Pod

    pod = Pod(
        name="census-income",
        datasources=[DatasourceContainerConfig(name="census-income", datasource=CSVSource(path))],
        hub="http://127.0.0.1:8700",
        secrets="pdm_...",  # or $PODIUM_API_KEY
    )
    pod.start()  # blocks until Ctrl-C or SIGTERM; `await pod.start_async()` in a notebook

Constructing a ``Pod`` does no I/O. Starting it infers each datasource's schema (unless
one is given), loads or creates the keys of each datasource's pod identity, opens the pod
DB and runs one :class:`~podium.pod.runtime.PodService` per datasource: every datasource
is registered on the hub as the pod ``<owner>/<datasource name>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from podium.config.models import APIKeys, DPPodConfig, PodDataConfig, PodDetailsConfig
from podium.core.errors import ConfigError
from podium.core.names import is_valid_name
from podium.core.settings import env_api_key, env_hub, podium_home
from podium.data.schema import Schema, SchemaLevel, iter_schema, normalize_force_stypes
from podium.data.sources.base import DataSource
from podium.hub.schemas import PodIn
from podium.pod.keys import PodKeys, default_keys_folder, load_or_create_pod_keys
from podium.pod.policy import PodPolicy

if TYPE_CHECKING:
    from podium.hub.client import HubClient
    from podium.pod.runtime import PodService
    from podium.protocols.hooks import Hooks

__all__ = ["DatasourceContainerConfig", "Pod", "registration", "schema_stages", "source_schema"]

_log = logging.getLogger("podium.pod")


@dataclass(frozen=True, slots=True)
class DatasourceContainerConfig:
    """One datasource of a pod: its name (also its pod name and SQL table name), the
    source, how it is shown on the hub, its data config and, optionally, its schema (a
    :class:`Schema` or the path of a saved one; inferred at start otherwise)."""

    name: str
    datasource: DataSource
    datasource_details: PodDetailsConfig | None = None
    data_config: PodDataConfig | None = None
    schema: Schema | str | os.PathLike[str] | None = None


def schema_stages(
    container: DatasourceContainerConfig, *, hide_record_count: bool = False
) -> Iterator[Schema]:
    """The container's schema as it is inferred: a ``PARTIAL`` one after the first batch
    (for a source with rows), then the ``FULL`` one, last. With ``hide_record_count`` no
    stage carries a record count."""
    data_config = container.data_config or PodDataConfig()
    details = container.datasource_details
    stages = iter_schema(
        container.datasource,
        name=container.name,
        force_stypes=normalize_force_stypes(data_config.force_stypes, container.name),
        column_descriptions=data_config.column_descriptions_for(container.name),
        description=(details.description if details else None)
        or data_config.table_descriptions.get(container.name)
        or data_config.description,
        hide_record_count=hide_record_count,
    )
    for schema in stages:
        yield schema.without_record_count() if hide_record_count else schema


def source_schema(
    container: DatasourceContainerConfig, *, hide_record_count: bool = False, update: bool = False
) -> Schema:
    """The container's schema: the one given (loaded if a path) unless ``update``, else
    inferred from its source with its data config's ``force_stypes`` and descriptions."""
    given = container.schema
    if given is not None and not update:
        return given if isinstance(given, Schema) else Schema.load(given)
    *_, full = schema_stages(container, hide_record_count=hide_record_count)
    return full


def registration(name: str, details: PodDetailsConfig | None, schema: Schema) -> PodIn:
    """What a datasource's pod tells the hub about itself (its public keys are added by
    :class:`~podium.pod.runtime.PodService`)."""
    return PodIn(
        display_name=(details.display_name if details else None) or name,
        description=(details.description if details else None) or "",
        schema_=schema.to_dict(),
        schema_hash=schema.hash,
        number_of_records=schema.num_records,
    )


def _deprecated(argument: str) -> None:
    warnings.warn(
        f"Pod({argument}=...) is deprecated: pass datasources=[DatasourceContainerConfig(...)]",
        DeprecationWarning,
        stacklevel=3,
    )


class Pod:
    """Makes a data set available to approved tasks; the data never leaves (see the
    module docstring). Arguments follow Bitfount's ``Pod``; ``hub`` is the hub's URL
    (else ``$PODIUM_HUB``), ``secrets`` an API key of the owner (an :class:`APIKeys` or
    the ``pdm_...`` string; else ``$PODIUM_API_KEY``), ``policy`` the owner's local policy.
    ``hub_client`` may replace the API key: a function making the client of a signed-in
    login, which refreshes its tokens. ``hooks`` are called at the named moments of every
    task the pod runs (:class:`~podium.protocols.hooks.Hooks`); ``output_dir`` is where
    reports written on the pod go (a folder per datasource; default
    ``$PODIUM_HOME/pods/<owner>/<datasource>/outputs``). ``message_service`` and
    ``access_manager`` are accepted for compatibility and must be None: the relay and the
    access manager are the hub's.

    Raises:
        ConfigError: A bad name, no datasource, both forms at once, duplicate names.
    """

    def __init__(
        self,
        name: str,
        *,
        datasource: DataSource | None = None,
        datasources: Iterable[DatasourceContainerConfig] | None = None,
        username: str | None = None,
        data_config: PodDataConfig | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        pod_details_config: PodDetailsConfig | None = None,
        hub: str | None = None,
        message_service: object = None,
        access_manager: object = None,
        pod_keys: PodKeys | None = None,
        approved_pods: list[str] | None = None,
        differential_privacy: DPPodConfig | None = None,
        pod_db: bool | str | os.PathLike[str] = False,
        update_schema: bool = False,
        secrets: APIKeys | str | None = None,
        policy: PodPolicy | None = None,
        hub_client: Callable[[], HubClient] | None = None,
        hooks: Hooks | None = None,
        output_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not is_valid_name(name):
            raise ConfigError(f"pod name {name!r}: use lower-case letters, digits and hyphens")
        if message_service is not None or access_manager is not None:
            raise ConfigError(
                "Pod(message_service=..., access_manager=...): Podium's relay and access "
                "manager are part of the hub; pass hub=URL instead"
            )
        self._name = name
        self._containers = self._gather(
            name,
            datasource=datasource,
            datasources=datasources,
            data_config=data_config,
            schema=schema,
            details=pod_details_config,
        )
        self._username = username
        self._hub = hub
        self._pod_keys = pod_keys
        if pod_keys is not None and len(self._containers) > 1:
            raise ConfigError("pod_keys can be given only for a pod with one datasource")
        self._approved = list(approved_pods or [])
        self._dp = differential_privacy
        self._pod_db = pod_db
        self._update_schema = update_schema
        self._secrets = secrets
        self._policy = policy or PodPolicy()
        self._hub_client = hub_client
        self._hooks = hooks
        self._output_dir = Path(output_dir) if output_dir is not None else None
        #: Set once every datasource is registered and listening for job requests.
        self.ready = asyncio.Event()

    @staticmethod
    def _gather(
        name: str,
        *,
        datasource: DataSource | None,
        datasources: Iterable[DatasourceContainerConfig] | None,
        data_config: PodDataConfig | None,
        schema: Schema | str | os.PathLike[str] | None,
        details: PodDetailsConfig | None,
    ) -> list[DatasourceContainerConfig]:
        single: dict[str, object] = {
            "datasource": datasource,
            "data_config": data_config,
            "schema": schema,
            "pod_details_config": details,
        }
        for argument, value in single.items():
            if value is not None:
                _deprecated(argument)
        if datasources is not None:
            if datasource is not None:
                raise ConfigError("give either datasource (deprecated) or datasources, not both")
            containers = list(datasources)
        elif datasource is not None:
            containers = [DatasourceContainerConfig(name, datasource, details, data_config, schema)]
        else:
            raise ConfigError(f"pod {name!r} has no datasource: pass datasources=[...]")
        names = [c.name for c in containers]
        if not containers or len(set(names)) != len(names):
            raise ConfigError(f"pod {name!r}: datasource names must be given and unique")
        for container in containers:
            if not is_valid_name(container.name):
                raise ConfigError(f"datasource name {container.name!r}: use lower-case letters")
        return containers

    # -- Bitfount's properties ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The pod's name."""
        return self._name

    @property
    def pod_identifier(self) -> str | None:
        """``<username>/<name>``; None until the username is known (given, or learnt from
        the hub at start)."""
        return None if self._username is None else f"{self._username}/{self._name}"

    @property
    def pod_ids(self) -> list[str]:
        """The hub's id of each datasource, ``<username>/<datasource name>``; empty until
        the username is known."""
        if self._username is None:
            return []
        return [f"{self._username}/{c.name}" for c in self._containers]

    @property
    def datasources(self) -> list[DatasourceContainerConfig]:
        """The pod's datasources."""
        return list(self._containers)

    @property
    def datasource(self) -> DatasourceContainerConfig | None:
        """The pod's only datasource; with several, a warning and None."""
        if len(self._containers) == 1:
            return self._containers[0]
        _log.warning(
            "pod %s has %d datasources: use .datasources", self._name, len(self._containers)
        )
        return None

    # -- running -----------------------------------------------------------------------

    def start(self) -> None:
        """Run the pod until Ctrl-C or SIGTERM (blocking): both stop it cleanly."""
        asyncio.run(self.serve_until_signalled())

    async def serve_until_signalled(self, *, on_ready: Callable[[], object] | None = None) -> None:
        """Run the pod until SIGINT or SIGTERM arrives (call it from the main thread), then
        stop cleanly; ``on_ready`` is called once every datasource is listening."""
        running = asyncio.create_task(self.start_async())
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, running.cancel)
        ready = asyncio.create_task(self.ready.wait())
        try:
            await asyncio.wait({ready, running}, return_when=asyncio.FIRST_COMPLETED)
            if self.ready.is_set() and on_ready is not None:
                on_ready()
            await running
        except asyncio.CancelledError:
            _log.info("pod %s stopped", self._name)
        finally:
            ready.cancel()
            for stop in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(stop)

    async def start_async(self) -> None:
        """Run the pod until the task is cancelled (for notebooks and services).

        Raises:
            ConfigError: No hub or no API key given.
            HubClientError: The hub refused the pod (a bad key, a name taken).
        """
        from podium.core.messages import pod_party  # noqa: PLC0415
        from podium.hub.client import HubClient  # noqa: PLC0415
        from podium.hub.models import utcnow  # noqa: PLC0415
        from podium.pod.runtime import PodService  # noqa: PLC0415
        from podium.pod.store import open_pod_store  # noqa: PLC0415
        from podium.pod.tasks import TaskWorkers  # noqa: PLC0415

        hub_url, api_key = self._hub_and_key()
        if self._username is None:
            client = (
                self._hub_client()
                if self._hub_client is not None
                else HubClient(hub_url, token=api_key)
            )
            async with client:
                self._username = (await client.me()).name
        owner = self._username
        hide = self._dp is not None
        first: list[Schema] = []
        later: list[Callable[[], Awaitable[PodIn]] | None] = []
        for container in self._containers:
            schema, rest = await self._first_schema(container, hide)
            first.append(schema)
            later.append(None if rest is None else self._full_registration(container, rest))
        with await asyncio.to_thread(open_pod_store, self._db_path(owner)) as store:
            services = []
            for container, schema, full in zip(self._containers, first, later, strict=True):
                keys = self._pod_keys
                if keys is None:
                    folder = default_keys_folder(owner, container.name)
                    keys = await asyncio.to_thread(load_or_create_pod_keys, folder)
                workers = TaskWorkers(
                    pod_id=f"{owner}/{container.name}",
                    party=pod_party(owner, container.name),
                    source_name=container.name,
                    source=container.datasource,
                    store=store,
                    policy=self._policy,
                    output_dir=(
                        self._output_dir / container.name
                        if self._output_dir is not None
                        else default_keys_folder(owner, container.name).parent / "outputs"
                    ),
                    clock=utcnow,
                    hooks=self._hooks,
                )
                services.append(
                    PodService(
                        pod_id=f"{owner}/{container.name}",
                        hub_url=hub_url,
                        credential=api_key,
                        registration=registration(
                            container.name, container.datasource_details, schema
                        ),
                        keys=keys,
                        store=store,
                        policy=self._policy,
                        approved_pods=self._approved,
                        unavailable=container.datasource.unavailable,
                        hub_client=self._hub_client,
                        later_registration=full,
                        workers=workers,
                    )
                )
            async with asyncio.TaskGroup() as group:
                for service in services:
                    group.create_task(service.run())
                group.create_task(self._all_ready(services))

    async def _first_schema(
        self, container: DatasourceContainerConfig, hide: bool
    ) -> tuple[Schema, Iterator[Schema] | None]:
        """The schema to register first, and the stages still to come (None when the
        first one is already full): a large source shows on the hub at once, with a
        partial schema, and its full schema follows when inferred."""
        given = container.schema
        if given is not None and not self._update_schema:
            return (given if isinstance(given, Schema) else Schema.load(given)), None
        stages = schema_stages(container, hide_record_count=hide)
        schema = await asyncio.to_thread(next, stages)
        return schema, (None if schema.level is SchemaLevel.FULL else stages)

    @staticmethod
    def _full_registration(
        container: DatasourceContainerConfig, stages: Iterator[Schema]
    ) -> Callable[[], Awaitable[PodIn]]:
        async def full() -> PodIn:
            *_, schema = await asyncio.to_thread(list, stages)
            return registration(container.name, container.datasource_details, schema)

        return full

    async def _all_ready(self, services: list[PodService]) -> None:
        await asyncio.gather(*(service.ready.wait() for service in services))
        _log.info("pod %s is online with %d datasource(s)", self._name, len(services))
        self.ready.set()

    def _hub_and_key(self) -> tuple[str, str | None]:
        hub = self._hub or env_hub(os.environ)
        if not hub:
            raise ConfigError(f"pod {self._name!r}: no hub: pass hub=URL or set PODIUM_HUB")
        secrets = self._secrets
        key: str | None
        if isinstance(secrets, APIKeys):
            key = f"pdm_{secrets.access_key_id}_{secrets.access_key.get_secret_value()}"
        else:
            key = secrets or env_api_key(os.environ)
        if not key and self._hub_client is None:
            raise ConfigError(
                f"pod {self._name!r}: no API key: create one with `podium api-key create "
                "NAME` and pass secrets=KEY or set PODIUM_API_KEY"
            )
        return hub.rstrip("/"), key or None

    def _db_path(self, owner: str) -> Path:
        if isinstance(self._pod_db, str | os.PathLike):
            return Path(self._pod_db)
        return podium_home(os.environ) / "pods" / owner / self._name / "pod.db"
