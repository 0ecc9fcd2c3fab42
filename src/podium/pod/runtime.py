"""The pod's service loop: register, heartbeat, and answer job requests over the relay.

:class:`PodService` is what a running pod does with the hub, built from parts that exist
on their own (keys, pod DB, policy, admission, transport):

1. **Register** the pod with its schema and public keys (``PUT /pods/<owner>/<name>``; a
   restarted pod updates its record, it is never registered twice). A large source's
   partial schema goes first, and the full one replaces it once inferred
   (``later_registration``). A hub that cannot
   be reached is retried with backoff, and the log says so; a refusal (a bad API key, say)
   ends the service with the hub's error.
2. **Heartbeat** at the interval the hub asks for, so the hub shows the pod online; a
   missed heartbeat is logged and retried at the next interval.
3. **Listen** on the pod's mailbox ``pod/<owner>/<name>`` through the relay (which
   reconnects by itself) and **admit** each ``JOB_REQUEST`` (:mod:`podium.pod.admission`),
   answering on the modeller's task mailbox: ``JOB_ACCEPT``, or ``JOB_REJECT`` with the
   reason. The answer is sealed with the task's session key when the request was
   verified; a request that could not be verified has no usable key, so its rejection
   carries only the reason code, in the clear. The request is acknowledged once answered.

4. **Run** each accepted task in its own worker (:mod:`podium.pod.tasks`), on its own
   relay connection; the pod keeps answering requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime

from podium.core.crypto import SessionSealer
from podium.core.messages import (
    Envelope,
    JobReject,
    MessageType,
    Signal,
    encode_payload,
    pod_mailbox,
    pod_party,
    task_mailbox,
)
from podium.hub.client import HubClient, HubClientError, HubUnreachableError
from podium.hub.models import utcnow
from podium.hub.schemas import PodIn
from podium.pod.admission import Admission, Admitter, HubClientGate
from podium.pod.keys import PodKeys
from podium.pod.policy import PodPolicy
from podium.pod.store import PodStore, StoreNonceRegistry
from podium.pod.tasks import TaskWorkers, check_task
from podium.protocols._channel import frame_record
from podium.transport import (
    Backoff,
    Connection,
    Credential,
    RelayClosedError,
    Transport,
    WebSocketTransport,
)

__all__ = ["PodService"]

_log = logging.getLogger("podium.pod")

#: A rejection's reason and message, cut to this length.
_MAX_REASON_CHARS = 1000


class PodService:
    """One pod's service loop (see the module docstring); :meth:`run` until cancelled.

    The constructor does no I/O. ``transport`` defaults to a :class:`WebSocketTransport`
    to ``hub_url`` with ``credential`` (the pod owner's API key). Instead of a key,
    ``hub_client`` may make the client of a signed-in login (which refreshes its tokens);
    the relay then asks it for a fresh access token on every reconnect. ``unavailable`` says why
    the data cannot be read right now (None when it can); job requests are refused with
    ``data-not-available`` meanwhile.
    """

    def __init__(
        self,
        *,
        pod_id: str,
        hub_url: str,
        credential: str | None,
        registration: PodIn,
        keys: PodKeys,
        store: PodStore,
        policy: PodPolicy | None = None,
        approved_pods: Collection[str] = (),
        transport: Transport | None = None,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff | None = None,
        unavailable: Callable[[], str | None] = lambda: None,
        hub_client: Callable[[], HubClient] | None = None,
        later_registration: Callable[[], Awaitable[PodIn]] | None = None,
        workers: TaskWorkers | None = None,
    ) -> None:
        if credential is None and hub_client is None:
            raise ValueError("give the pod's API key, or a hub client (a signed-in login)")
        owner, _, name = pod_id.partition("/")
        self._owner, self._name = owner, name
        self._pod_id = pod_id
        self._party = pod_party(owner, name)
        self._hub_url = hub_url
        self._credential = credential
        self._registration = registration.model_copy(
            update={
                "signing_key": keys.signing.public_b64,
                "encryption_key": keys.encryption.public_b64,
            }
        )
        self._keys = keys
        self._store = store
        self._policy = policy or PodPolicy()
        self._approved = tuple(approved_pods)
        self._transport = transport
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._unavailable = unavailable
        self._hub_client = hub_client
        self._later = later_registration
        self._workers = workers
        #: Set once the pod is registered and listening on its mailbox.
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Register, then heartbeat and answer job requests until cancelled.

        Raises:
            HubClientError: The hub refused the registration (it says why).
            RelayClosedError: The relay refused the pod's credential or mailbox.
        """
        client = (
            self._hub_client()
            if self._hub_client is not None
            else HubClient(self._hub_url, token=self._credential)
        )
        async with client:
            await self._register(client)
            admitter = Admitter(
                pod_id=self._pod_id,
                keys=self._keys,
                hub=HubClientGate(client),
                store=self._store,
                nonces=StoreNonceRegistry(self._store),
                policy=self._policy,
                clock=self._clock,
                approved_pods=self._approved,
                unavailable=self._unavailable,
                running_tasks=self._running_tasks,
                check_task=check_task,
            )
            # a login's access token expires: the relay asks the client for a fresh one
            credential: Credential = self._credential or client.fresh_token
            transport = self._transport or WebSocketTransport(self._hub_url, credential)
            heartbeats = asyncio.create_task(self._heartbeats(client))
            background = [heartbeats]
            if self._later is not None:
                background.append(asyncio.create_task(self._publish_later(client, self._later)))
            try:
                mailbox = pod_mailbox(self._owner, self._name)
                async with transport.connect([mailbox]) as connection:
                    self.ready.set()
                    _log.info("pod %s is listening for job requests", self._pod_id)
                    async for envelope in connection:
                        await self._answer_guarded(connection, admitter, envelope, transport)
            finally:
                if self._workers is not None:
                    await self._workers.close()
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)

    def _running_tasks(self) -> int:
        return 0 if self._workers is None else self._workers.running

    async def _register(self, client: HubClient) -> None:
        attempt = 0
        while True:
            try:
                await client.register_pod(self._pod_id, self._registration)
                _log.info("pod %s registered with %s", self._pod_id, self._hub_url)
                return
            except HubUnreachableError as error:
                delay = self._backoff.delay(attempt)
                attempt += 1
                _log.warning("cannot reach the hub (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)

    async def _publish_later(
        self, client: HubClient, later: Callable[[], Awaitable[PodIn]]
    ) -> None:
        """Register again once the full schema is known (it replaces the partial one)."""
        details = await later()
        self._registration = details.model_copy(
            update={
                "signing_key": self._keys.signing.public_b64,
                "encryption_key": self._keys.encryption.public_b64,
            }
        )
        await client.register_pod(self._pod_id, self._registration)
        _log.info("pod %s: full schema published", self._pod_id)

    async def _heartbeats(self, client: HubClient) -> None:
        interval = 10.0
        while True:
            try:
                interval = (await client.heartbeat(self._pod_id)).next_heartbeat_s
            except (HubClientError, HubUnreachableError) as error:
                _log.warning("heartbeat of %s failed: %s", self._pod_id, error)
            await asyncio.sleep(interval)

    async def _answer_guarded(
        self, connection: Connection, admitter: Admitter, envelope: Envelope, transport: Transport
    ) -> None:
        """One request's answer; a request that breaks the pod's own code is logged and
        acknowledged (never retried), and the pod goes on serving."""
        try:
            await self._answer(connection, admitter, envelope, transport)
        except (asyncio.CancelledError, RelayClosedError):
            raise
        except Exception:  # noqa: BLE001 - one request must not take the pod down
            _log.exception("pod %s: the request of task %s failed", self._pod_id, envelope.task_id)
            await connection.ack(envelope)

    async def _answer(
        self, connection: Connection, admitter: Admitter, envelope: Envelope, transport: Transport
    ) -> None:
        if envelope.type is not MessageType.JOB_REQUEST:
            _log.warning("ignoring a %s on the pod's mailbox", envelope.type.value)
            await connection.ack(envelope)
            return
        admission = await admitter.admit(envelope)
        if admission.accepted and admission.request is not None:
            await asyncio.to_thread(
                self._store.save_task_definition,
                admission.request.task_hash,
                admission.request.task,
                self._clock(),
            )
        reply, sealer = self._reply(envelope, admission)
        await connection.send(reply)
        await connection.ack(envelope)
        if admission.accepted and sealer is not None and self._workers is not None:
            self._workers.start(transport, admission, sealer)

    def _reply(
        self, request: Envelope, admission: Admission
    ) -> tuple[Envelope, SessionSealer | None]:
        """``JOB_ACCEPT`` or ``JOB_REJECT``, sealed with the session key when there is one."""
        kind = MessageType.JOB_ACCEPT if admission.accepted else MessageType.JOB_REJECT
        record = (
            Signal()
            if admission.accepted
            else JobReject(f"{admission.reason}: {admission.message}"[:_MAX_REASON_CHARS])
        )
        meta: dict[str, bool] = {"sealed": admission.request is not None}
        sealer: SessionSealer | None = None
        if admission.request is not None:
            sealer = SessionSealer(admission.request.session_key, request.task_id, self._party)
            (plain,) = frame_record(kind, record)  # a short record: one part
            seq, body = sealer.seal(plain, final=not admission.accepted)
            meta["final"] = not admission.accepted
        else:
            seq, body = 0, encode_payload(JobReject(str(admission.reason)))
        envelope = Envelope(
            type=kind,
            task_id=request.task_id,
            sender=self._party,
            recipient=task_mailbox(request.task_id, request.sender),
            seq=seq,
            sent_at=time.time(),
            meta=meta,
            body=body,
        )
        return envelope, sealer
