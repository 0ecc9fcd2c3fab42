"""The modeller: a data scientist's side of tasks, from Python or ``podium run-task``.

A :class:`Modeller` holds what sending a task needs: the hub's URL, a credential for it
(an API key or access token, or a function making the client of a signed-in login), the
user's signing key pair (kept in 0600 files under ``$PODIUM_HOME/modellers/<user>/keys``
and registered on the hub the first time) and the relay transport. Constructing one does
no I/O; :meth:`Modeller.run_async` does the rest:

1. registers the signing key if the hub does not hold it yet;
2. looks up every pod: its X25519 key and whether it is online (a pod that is missing or
   offline is not asked, and counts as not answering);
3. signs the task (the protocol's :meth:`~podium.protocols.base.ProtocolFactory.dump`, the
   pods and the run options), seals it to each pod and follows it to the end
   (:class:`~podium.protocols.coordinator.ModellerExecution`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from podium.core.crypto import SigningKeyPair
from podium.core.crypto.encoding import b64url_decode
from podium.core.errors import ConfigError, PodResponseError
from podium.core.messages import new_task_id, task_hash_of
from podium.core.settings import env_api_key, env_hub, podium_home
from podium.hub.client import HubClient, HubClientError
from podium.hub.models import utcnow
from podium.pod.keys import load_or_create_pod_keys
from podium.protocols.base import ProtocolFactory, RunOptions
from podium.protocols.coordinator import ModellerExecution, PodState, TaskOutcome, TaskProgress
from podium.protocols.hooks import Hooks
from podium.transport import Credential, Transport, WebSocketTransport

__all__ = ["Modeller", "modeller_keys_folder", "task_definition"]


def modeller_keys_folder(username: str, environ: os._Environ[str] | None = None) -> Path:
    """``$PODIUM_HOME/modellers/<user>/keys``."""
    return podium_home(os.environ if environ is None else environ) / "modellers" / username / "keys"


def task_definition(
    factory: ProtocolFactory, pods: Collection[str], options: RunOptions
) -> dict[str, Any]:
    """The definition a modeller signs: the protocol's, the pods and the run options."""
    task = factory.dump()
    task["pods"] = sorted(pods)
    task["run"] = options.wire()
    if options.project_id is not None:
        task["project_id"] = options.project_id
    return task


class Modeller:
    """Sends tasks to pods through a hub (see the module docstring).

    Args:
        hub: The hub's URL.
        token: An API key or access token of the modeller's user.
        client: Instead of ``token``, a function making the client of a signed-in login
            (it refreshes its tokens; the relay asks it for a fresh one on reconnect).
        signing: The user's signing key pair (default: loaded or created under
            ``$PODIUM_HOME/modellers/<user>/keys``).
        transport: The relay transport (default: a WebSocket to the hub's ``/relay``).
    """

    def __init__(
        self,
        hub: str,
        *,
        token: str | None = None,
        client: Callable[[], HubClient] | None = None,
        signing: SigningKeyPair | None = None,
        transport: Transport | None = None,
    ) -> None:
        if (token is None) == (client is None):
            raise ConfigError("Modeller: give the hub credential as token=... or client=...")
        self.hub = hub.rstrip("/")
        self._token = token
        self._client = client
        self._signing = signing
        self._transport = transport
        self.username: str | None = None
        self._registered: tuple[str, SigningKeyPair] | None = None

    @classmethod
    def from_environment(cls, *, hub: str | None = None) -> Modeller:
        """A modeller from ``$PODIUM_HUB`` (or ``hub``) and ``$PODIUM_API_KEY``.

        Raises:
            ConfigError: Either is missing.
        """
        url = hub or env_hub(os.environ)
        key = env_api_key(os.environ)
        if not url or not key:
            raise ConfigError(
                "no modeller given: pass modeller=Modeller(hub_url, token=...), or set "
                "PODIUM_HUB and PODIUM_API_KEY (`podium api-key create NAME` makes a key)"
            )
        return cls(url, token=key)

    def _new_client(self) -> HubClient:
        if self._client is not None:
            return self._client()
        return HubClient(self.hub, token=self._token)

    async def _prepare(self, client: HubClient) -> tuple[str, SigningKeyPair]:
        """The user and its signing key, registered on the hub (checked once per
        :class:`Modeller`)."""
        if self._registered is not None:
            return self._registered
        username = self.username or (await client.me()).name
        self.username = username
        signing = self._signing
        if signing is None:
            folder = modeller_keys_folder(username)
            signing = (await asyncio.to_thread(load_or_create_pod_keys, folder)).signing
            self._signing = signing
        held = await client.list_keys(username, purpose="signing")
        if signing.public_b64 not in {key.public_key for key in held}:
            await client.register_key(username, "signing", signing.public_b64)
        self._registered = (username, signing)
        return self._registered

    async def _pod_keys(
        self, client: HubClient, pods: Collection[str], progress: TaskProgress
    ) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
        found: dict[str, bytes] = {}
        schemas: dict[str, dict[str, Any]] = {}
        records = await asyncio.gather(
            *(client.get_pod(pod) for pod in pods), return_exceptions=True
        )
        for pod, record in zip(pods, records, strict=True):
            state = progress.pods.setdefault(pod, PodState(pod))
            if isinstance(record, BaseException):
                if not isinstance(record, HubClientError) or record.status != 404:
                    raise record
                state.outcome = state.phase = "no answer"
                state.reason = (
                    f"no pod {pod} that you may see on {self.hub} (it does not exist, or "
                    "its owner has not granted you a role on it)"
                )
                continue
            if record.status != "online":
                state.outcome = state.phase = "no answer"
                state.reason = f"the pod is {record.status}"
                continue
            keys = [k for k in record.keys if k.purpose == "encryption" and k.revoked_at is None]
            if not keys:
                state.outcome = state.phase = "no answer"
                state.reason = "the pod has registered no encryption key"
                continue
            found[pod] = b64url_decode(keys[-1].public_key)
            schemas[pod] = dict(record.schema_)
        return found, schemas

    async def run_async(
        self,
        factory: ProtocolFactory,
        pod_identifiers: Collection[str],
        *,
        options: RunOptions | None = None,
        hooks: Hooks | None = None,
        progress: TaskProgress | None = None,
    ) -> TaskOutcome:
        """Run ``factory``'s task on the pods ``pod_identifiers`` (``<owner>/<name>``).

        Raises:
            PodResponseError: ``require_all_pods`` and a pod is missing, offline, refused
                or silent; or no pod accepted.
            HubClientError: The hub refused a request (a bad credential, say).
            HubUnreachableError: The hub did not answer.
        """
        options = options or RunOptions()
        progress = progress or TaskProgress()
        pods = list(dict.fromkeys(pod_identifiers))
        if not pods:
            raise ConfigError("run a task on at least one pod")
        async with self._new_client() as client:
            username, signing = await self._prepare(client)
            pod_keys, schemas = await self._pod_keys(client, pods, progress)
            missing = {p: s for p, s in progress.pods.items() if s.outcome is not None}
            if missing and (options.require_all_pods or not pod_keys):
                lines = "; ".join(f"{p}: {s.reason}" for p, s in missing.items())
                what = "every pod must take part" if pod_keys else "no pod can take the task"
                raise PodResponseError(f"{what}: {lines}")
            credential: Credential = self._token or client.fresh_token
            transport = self._transport or WebSocketTransport(self.hub, credential)
            task = task_definition(factory, pods, options)
            execution = ModellerExecution(
                factory=factory,
                task=task,
                task_id=new_task_id(),
                task_hash=task_hash_of(task),
                modeller=username,
                signing=signing,
                pod_keys=pod_keys,
                transport=transport,
                options=options,
                clock=utcnow,
                hooks=hooks,
                progress=progress,
                schemas=schemas,
            )
            return await execution.execute()

    def run(
        self,
        factory: ProtocolFactory,
        pod_identifiers: Collection[str],
        *,
        options: RunOptions | None = None,
        hooks: Hooks | None = None,
        progress: TaskProgress | None = None,
    ) -> TaskOutcome:
        """:meth:`run_async` for scripts; in a notebook or a service, await
        :meth:`run_async` instead.

        Raises:
            RuntimeError: Called from a running event loop.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.run_async(
                    factory, pod_identifiers, options=options, hooks=hooks, progress=progress
                )
            )
        raise RuntimeError(
            "Modeller.run() was called from a running event loop: use "
            "`await modeller.run_async(...)` there"
        )
