"""The federation the in-process benchmarks (``bench.fedavg``, ``bench.federated_sql``) run.

* :func:`bench_hub`: a hub in a child process (``bench.heartbeats.hub_process``) over
  SQLite, seeded by :func:`seed_hub` with the modeller :data:`MODELLER` and the given pod
  owners, each with an API key.
* :func:`running_pods`: pods (:class:`PodService` with :class:`TaskWorkers`) served in the
  caller's event loop, each over the :class:`DataSource` and with the registration of its
  :class:`PodSpec`, online and granted to the modeller until the block ends.
* :func:`podium_home`: ``PODIUM_HOME`` pointed at a folder for the block.
* :func:`verdict`: ``ok`` or ``MISSED`` for a target.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.heartbeats import SEED_PASSWORDS, hub_process
from podium.core.messages import pod_party
from podium.data.sources.base import DataSource
from podium.hub.client import HubClient
from podium.hub.config import HubConfig
from podium.hub.models import utcnow
from podium.hub.schemas import PodIn
from podium.hub.services import HubServices
from podium.pod.keys import load_or_create_pod_keys
from podium.pod.policy import PodPolicy
from podium.pod.runtime import PodService
from podium.pod.store import InMemoryPodStore
from podium.pod.tasks import TaskWorkers

MODELLER = "bob"
GRANT = "general-modeller"
READY_TIMEOUT_S = 60.0


def verdict(ok: bool) -> str:
    """``ok`` when a target was met, else ``MISSED``."""
    return "ok" if ok else "MISSED"


@contextmanager
def podium_home(folder: Path) -> Iterator[None]:
    """Point ``PODIUM_HOME`` at ``folder`` for the block (nothing lands in the user's)."""
    before = os.environ.get("PODIUM_HOME")
    os.environ["PODIUM_HOME"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PODIUM_HOME", None)
        else:
            os.environ["PODIUM_HOME"] = before


# -- the hub ---------------------------------------------------------------------------


def seed_hub(config: HubConfig, owners: Sequence[str], *, key_name: str) -> dict[str, str]:
    """Create the modeller and the pod ``owners``, each with an API key named
    ``key_name``; their keys, by user."""
    services = HubServices.open(config)
    keys: dict[str, str] = {}
    try:
        now = services.now()
        for user in (MODELLER, *owners):
            services.accounts.create_user(user, os.urandom(12).hex(), is_admin=False, now=now)
            keys[user] = services.accounts.create_api_key(user, key_name, now)[1]
    finally:
        services.close()
    return keys


@contextmanager
def bench_hub(
    tmp: Path, owners: Sequence[str], *, key_name: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """A hub seeded with the modeller and ``owners`` in a child process, its data under
    ``tmp / "hub"``: its base URL and the users' API keys."""
    config = HubConfig(data_dir=tmp / "hub", password_cost=SEED_PASSWORDS)
    keys = seed_hub(config, owners, key_name=key_name)
    with hub_process(config.data_dir, None) as (_, base_url):
        yield base_url, keys


# -- the pods --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One pod's data and what it tells the hub about itself."""

    source: DataSource
    registration: PodIn


def pod_service(
    pod_id: str, spec: PodSpec, hub: str, key: str, tmp: Path
) -> tuple[PodService, TaskWorkers]:
    """The pod ``pod_id`` (``owner/name``) over ``spec``, connecting to ``hub`` with the
    owner's API ``key``; its outputs and keys under ``tmp``. The service and its workers."""
    owner, _, name = pod_id.partition("/")
    store = InMemoryPodStore()
    policy = PodPolicy()
    workers = TaskWorkers(
        pod_id=pod_id,
        party=pod_party(owner, name),
        source_name=name,
        source=spec.source,
        store=store,
        policy=policy,
        output_dir=tmp / "outputs" / owner / name,
        clock=utcnow,
    )
    service = PodService(
        pod_id=pod_id,
        hub_url=hub,
        credential=key,
        registration=spec.registration,
        keys=load_or_create_pod_keys(tmp / "keys" / owner / name),
        store=store,
        policy=policy,
        workers=workers,
        unavailable=spec.source.unavailable,
    )
    return service, workers


def _owner(pod_id: str) -> str:
    return pod_id.partition("/")[0]


@asynccontextmanager
async def running_pods(
    pods: Mapping[str, PodSpec], hub: str, keys: Mapping[str, str], tmp: Path
) -> AsyncIterator[list[TaskWorkers]]:
    """A pod per spec (by pod id ``owner/name``) served in this event loop, online and
    granted to the modeller, until the block ends; yields the pods' task workers."""
    pairs = [pod_service(pod, spec, hub, keys[_owner(pod)], tmp) for pod, spec in pods.items()]
    services = [service for service, _ in pairs]
    runs = [asyncio.create_task(service.run()) for service in services]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            for service, run in zip(services, runs, strict=True):
                ready = asyncio.create_task(service.ready.wait())
                await asyncio.wait({ready, run}, return_when=asyncio.FIRST_COMPLETED)
                if run.done():
                    await run  # it failed: raise its error
        for pod in pods:
            async with HubClient(hub, token=keys[_owner(pod)]) as client:
                await client.grant(pod, MODELLER, GRANT)
        yield [workers for _, workers in pairs]
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
