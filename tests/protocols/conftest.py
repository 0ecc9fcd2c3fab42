"""A federation on loopback for engine tests: a real hub (HTTP and /relay over sockets),
pods as in-process :class:`PodService` loops with task workers, and a :class:`Modeller`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.core.crypto import SigningKeyPair
from podium.data.schema import infer_schema
from podium.data.sources.base import DataSource
from podium.data.sources.frame_source import DataFrameSource
from podium.hub.client import HubClient
from podium.hub.models import utcnow
from podium.hub.services import HubServices
from podium.modeller import Modeller
from podium.pod.keys import load_or_create_pod_keys
from podium.pod.pod import registration
from podium.pod.policy import PodPolicy
from podium.pod.runtime import PodService
from podium.pod.store import InMemoryPodStore, PodStore
from podium.pod.tasks import TaskWorkers
from podium.protocols.hooks import Hooks
from tests.hub.conftest import PASSWORD, make_services
from tests.hub.relay.hub_server import running_hub

WAIT_S = 20.0
OWNER, MODELLER = "alice", "bob"


@dataclass
class Federation:
    """A hub with its users: alice owns the pods, bob runs tasks."""

    services: HubServices
    url: str
    tmp: Path
    owner_key: str
    bob_key: str
    stores: dict[str, PodStore] = field(default_factory=dict)

    def modeller(self) -> Modeller:
        return Modeller(self.url, token=self.bob_key, signing=BOB_SIGNING)

    async def grant(self, pod: str, role: str, user: str = MODELLER) -> None:
        async with HubClient(self.url, token=self.owner_key) as alice:
            await alice.grant(pod, user, role)

    @asynccontextmanager
    async def pods(
        self,
        sources: Mapping[str, DataSource | pd.DataFrame],
        *,
        policy: PodPolicy | None = None,
        hooks: Hooks | None = None,
        grant: str | None = "general-modeller",
        force_stypes: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[str]]:
        """Run a pod per source (named by the key) until the block ends; yields pod ids."""
        services, runs = [], []
        for name, given in sources.items():
            source = DataFrameSource(given) if isinstance(given, pd.DataFrame) else given
            pod_id = f"{OWNER}/{name}"
            store = self.stores.setdefault(name, InMemoryPodStore())
            chosen = policy or PodPolicy()
            workers = TaskWorkers(
                pod_id=pod_id,
                party=f"{OWNER}.{name}",
                source_name=name,
                source=source,
                store=store,
                policy=chosen,
                output_dir=self.tmp / "outputs" / name,
                clock=utcnow,
                hooks=hooks,
            )
            service = PodService(
                pod_id=pod_id,
                hub_url=self.url,
                credential=self.owner_key,
                registration=registration(
                    name, None, infer_schema(source, name=name, force_stypes=force_stypes)
                ),
                keys=load_or_create_pod_keys(self.tmp / "keys" / name),
                store=store,
                policy=chosen,
                workers=workers,
                unavailable=source.unavailable,
            )
            services.append(service)
            runs.append(asyncio.create_task(service.run()))
        try:
            async with asyncio.timeout(WAIT_S):
                for service, run in zip(services, runs, strict=True):
                    ready = asyncio.create_task(service.ready.wait())
                    await asyncio.wait({ready, run}, return_when=asyncio.FIRST_COMPLETED)
                    if run.done():
                        await run
            ids = [f"{OWNER}/{name}" for name in sources]
            if grant is not None:
                for pod in ids:
                    await self.grant(pod, grant)
            yield ids
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)


BOB_SIGNING = SigningKeyPair.generate()


@pytest.fixture
def federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Federation]:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path / "home"))
    services = make_services(tmp_path, utcnow)
    now = utcnow()
    for name in (OWNER, MODELLER, "carol"):
        services.accounts.create_user(name, PASSWORD, is_admin=False, now=now)
    _, owner_key = services.accounts.create_api_key(OWNER, "pods", now)
    _, bob_key = services.accounts.create_api_key(MODELLER, "notebook", now)
    with running_hub(services) as relay_url:
        url = relay_url.replace("ws://", "http://").removesuffix("/relay")
        yield Federation(services, url, tmp_path, owner_key, bob_key)


def frames(n_pods: int, rows: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Non-IID numeric/categorical frames, one per pod (pod-a, pod-b, ...)."""
    rng = np.random.default_rng(seed)
    out = {}
    for index in range(n_pods):
        out[f"pod-{chr(97 + index)}"] = pd.DataFrame(
            {
                "age": rng.integers(18 + 10 * index, 60 + 10 * index, rows),
                "hours": rng.normal(40 + index, 5, rows).round(1),
                "sex": rng.choice(["F", "M"], rows),
            }
        )
    return out


Factory = Callable[[], object]
