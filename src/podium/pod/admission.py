"""Admission: whether the pod runs a job request (DESIGN.md section 3), step by step.

1. **Open** the sealed request with the pod's encryption key (the task id and the pod id
   are in the associated data): else ``malformed-request``.
2. **Verify** it against the modeller's live signing keys on the hub (one must match; a
   modeller may hold several while rotating), addressed to this pod, at most 5 minutes old
   and 30 s ahead, with a nonce the pod DB has never seen (so a replay is refused even
   after a restart): else ``invalid-signature``, ``stale-request`` or ``replayed-request``.
3. **Read** the task: its protocol, algorithms, custom model, aggregator, other pods and
   the DP budget it asks for (:class:`TaskShape`): else ``malformed-task``; and check
   that this pod can run it (protocol and algorithms installed, arguments valid): else
   ``unsupported-task``. Then check
   that the data can be read now (a data file removed while the pod runs): else
   ``data-not-available``.
4. **Ask the hub's access manager**: a refusal gives ``hub-refused`` with the hub's reason
   code in the message; a hub that cannot be reached gives ``hub-unavailable`` (the pod
   fails closed).
5. **Apply the local policy** (:mod:`podium.pod.policy`) with what the modeller has spent
   from the pod's privacy ledger: else the policy's reason.

Every decision goes to the pod DB's audit log, accepted or refused, with its reason. The
reason and a short message are all a refusal tells the modeller.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from podium.core.crypto import (
    DecryptionError,
    InvalidSignatureError,
    NonceRegistry,
    ReplayedNonceError,
    StaleRequestError,
)
from podium.core.crypto.encoding import b64url_decode
from podium.core.errors import PodiumError
from podium.core.messages import (
    Envelope,
    JobRequest,
    MessageError,
    PayloadError,
    VerifiedJobRequest,
    open_job_request,
)
from podium.hub.client import HubClient, HubClientError, HubUnreachableError
from podium.hub.schemas import DecisionIn, DecisionOut
from podium.pod.keys import PodKeys
from podium.pod.policy import DPRequest, PodPolicy, TaskSummary, decide
from podium.pod.store import NewAuditEvent, PodStore

__all__ = [
    "Admission",
    "AdmissionReason",
    "Admitter",
    "HubClientGate",
    "HubGate",
    "MalformedTaskError",
    "TaskShape",
]

_log = logging.getLogger("podium.pod.admission")
_BITFOUNT = "bitfount."


class AdmissionReason(StrEnum):
    """Why a request was refused before the local policy (whose reasons are its own)."""

    MALFORMED_REQUEST = "malformed-request"
    INVALID_SIGNATURE = "invalid-signature"
    STALE_REQUEST = "stale-request"
    REPLAYED_REQUEST = "replayed-request"
    MALFORMED_TASK = "malformed-task"
    UNSUPPORTED_TASK = "unsupported-task"
    DATA_NOT_AVAILABLE = "data-not-available"
    HUB_REFUSED = "hub-refused"
    HUB_UNAVAILABLE = "hub-unavailable"


class MalformedTaskError(ValueError):
    """A task definition the pod cannot read; the message says what is wrong."""


def _name(value: object, where: str) -> str:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise MalformedTaskError(f"{where} needs a 'name'")
    name = str(value["name"]).strip()
    if not name:
        raise MalformedTaskError(f"{where} has an empty 'name'")
    return name.removeprefix(_BITFOUNT)


def _budget(algorithms: Sequence[Mapping[str, Any]]) -> DPRequest | None:
    """The DP budget the algorithms ask for: the sum of their ``epsilon`` / ``delta``."""
    epsilon = delta = 0.0
    private = False
    for algorithm in algorithms:
        arguments = algorithm.get("arguments") or {}
        if not isinstance(arguments, Mapping) or "epsilon" not in arguments:
            continue
        private = True
        epsilon += _amount(arguments.get("epsilon"), "epsilon")
        delta += _amount(arguments.get("delta", 0.0), "delta")
    return DPRequest(epsilon, delta) if private else None


def _amount(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedTaskError(f"an algorithm's {what} must be a number")
    if not math.isfinite(value) or value < 0:
        raise MalformedTaskError(f"an algorithm's {what} must be finite and >= 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class TaskShape:
    """What admission reads from a task definition (Bitfount's task layout):
    ``protocol: {name}``, ``algorithm: {name, arguments}`` or a list of them, an optional
    ``model`` (custom code carries its ``code_sha256``), ``aggregator: {secure: true}``
    for secure aggregation, ``pods`` (every pod of the task) and ``project_id``. A
    ``bitfount.`` prefix on names is dropped."""

    protocol: str
    algorithms: tuple[str, ...]
    model_hash: str | None
    secure_aggregation: bool
    pods: tuple[str, ...]
    dp: DPRequest | None
    project: str | None

    @classmethod
    def from_task(cls, task: Mapping[str, Any]) -> TaskShape:
        """Read ``task``.

        Raises:
            MalformedTaskError: A part is missing or of the wrong kind.
        """
        protocol = _name(task.get("protocol"), "the protocol")
        raw = task.get("algorithm")
        listed = raw if isinstance(raw, list) else [raw]
        if not listed or raw is None:
            raise MalformedTaskError("a task needs at least one algorithm")
        algorithms = tuple(_name(a, "an algorithm") for a in listed)
        model = task.get("model")
        model_hash = model.get("code_sha256") if isinstance(model, Mapping) else None
        if model_hash is not None and not isinstance(model_hash, str):
            raise MalformedTaskError("the model's code_sha256 must be a string")
        aggregator = task.get("aggregator")
        secure = isinstance(aggregator, Mapping) and aggregator.get("secure") is True
        pods = task.get("pods", [])
        if not isinstance(pods, list) or not all(isinstance(p, str) for p in pods):
            raise MalformedTaskError("'pods' must be a list of pod ids")
        project = task.get("project_id")
        if project is not None and not isinstance(project, str):
            raise MalformedTaskError("'project_id' must be a string")
        return cls(
            protocol=protocol,
            algorithms=algorithms,
            model_hash=model_hash,
            secure_aggregation=secure,
            pods=tuple(pods),
            dp=_budget([a for a in listed if isinstance(a, Mapping)]),
            project=project,
        )


class HubGate(Protocol):
    """What admission asks the hub."""

    async def signing_keys(self, user: str) -> list[bytes]:
        """The raw public keys of ``user``'s live signing keys."""
        ...

    async def decide(self, request: DecisionIn) -> DecisionOut:
        """The access manager's decision."""
        ...


class HubClientGate:
    """:class:`HubGate` over a :class:`HubClient` signed in as the pod (its owner's key)."""

    def __init__(self, client: HubClient) -> None:
        self._client = client

    async def signing_keys(self, user: str) -> list[bytes]:
        keys = await self._client.list_keys(user, purpose="signing")
        return [b64url_decode(k.public_key) for k in keys if k.revoked_at is None]

    async def decide(self, request: DecisionIn) -> DecisionOut:
        return await self._client.decide(request)


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one job request: ``request`` (verified) and ``shape`` are set as far
    as admission got; ``limits`` is the hub's usage limits for an accepted request."""

    accepted: bool
    reason: str | None
    message: str
    modeller: str | None = None
    request: VerifiedJobRequest | None = None
    shape: TaskShape | None = None
    decision: DecisionOut | None = None


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Admitter:
    """Admits job requests for one pod (the steps are in the module docstring)."""

    def __init__(
        self,
        *,
        pod_id: str,
        keys: PodKeys,
        hub: HubGate,
        store: PodStore,
        nonces: NonceRegistry,
        policy: PodPolicy,
        clock: Callable[[], datetime],
        approved_pods: Collection[str] = (),
        running_tasks: Callable[[], int] = lambda: 0,
        ledger_source: str = "",
        unavailable: Callable[[], str | None] = lambda: None,
        check_task: Callable[[Mapping[str, Any]], None] = lambda task: None,
    ) -> None:
        self._pod_id = pod_id
        self._check_task = check_task
        self._keys = keys
        self._hub = hub
        self._store = store
        self._nonces = nonces
        self._policy = policy
        self._clock = clock
        self._approved = frozenset(approved_pods)
        self._running = running_tasks
        self._source = ledger_source or pod_id
        self._unavailable = unavailable

    async def admit(self, envelope: Envelope) -> Admission:
        """Decide on the ``JOB_REQUEST`` in ``envelope`` and audit the decision."""
        now = self._clock()
        state: dict[str, Any] = {}
        try:
            admission = await self._admit(envelope, now, state)
        except _Refused as refused:
            admission = Admission(False, refused.reason, refused.message, **state)
        self._audit(envelope, admission, now)
        return admission

    async def _admit(self, envelope: Envelope, now: datetime, state: dict[str, Any]) -> Admission:
        record = self._open(envelope)
        state["modeller"] = record.modeller
        request = await self._verify(record, now)
        state["request"] = request
        try:
            shape = TaskShape.from_task(request.task)
        except MalformedTaskError as error:
            raise _Refused(AdmissionReason.MALFORMED_TASK, str(error)) from None
        state["shape"] = shape
        try:
            self._check_task(request.task)
        except (PodiumError, ValueError, TypeError) as error:
            raise _Refused(AdmissionReason.UNSUPPORTED_TASK, str(error)[:2000]) from None
        why = self._unavailable()
        if why is not None:
            _log.warning("pod %s: the data is not available: %s", self._pod_id, why)
            raise _Refused(AdmissionReason.DATA_NOT_AVAILABLE, "the data is not available")
        decision = await self._ask_hub(request, shape)
        state["decision"] = decision
        spent_epsilon, spent_delta = self._store.budget_spent(request.modeller, self._source)
        summary = TaskSummary(
            modeller=request.modeller,
            roles=decision.roles_required,
            protocol=shape.protocol,
            algorithms=shape.algorithms,
            model_hash=shape.model_hash,
            uses_secure_aggregation=shape.secure_aggregation,
            other_pods=[p for p in shape.pods if p != self._pod_id],
            dp=shape.dp,
        )
        verdict = decide(
            self._policy,
            summary,
            approved_pods=self._approved,
            spent_epsilon=spent_epsilon,
            spent_delta=spent_delta,
            running_tasks=self._running(),
        )
        if not verdict.allowed:
            raise _Refused(str(verdict.reason), verdict.message)
        return Admission(True, None, "accepted", **state)

    def _open(self, envelope: Envelope) -> JobRequest:
        try:
            return open_job_request(
                self._keys.encryption, envelope.body, task_id=envelope.task_id, pod_id=self._pod_id
            )
        except (DecryptionError, PayloadError, MessageError):
            raise _Refused(
                AdmissionReason.MALFORMED_REQUEST,
                "the request does not open as a job request sealed to this pod for this task",
            ) from None

    async def _verify(self, record: JobRequest, now: datetime) -> VerifiedJobRequest:
        try:
            keys = await self._hub.signing_keys(record.modeller)
        except (HubClientError, HubUnreachableError) as error:
            message = f"the hub did not answer: {error}"
            raise _Refused(AdmissionReason.HUB_UNAVAILABLE, message) from None
        refusal: _Refused | None = None
        for public in keys:
            try:
                return record.verify(
                    public=public, pod_id=self._pod_id, now=now, nonces=self._nonces
                )
            except InvalidSignatureError:
                continue  # another of the modeller's keys may have signed it
            except StaleRequestError as error:
                refusal = _Refused(AdmissionReason.STALE_REQUEST, str(error))
                break
            except ReplayedNonceError:
                refusal = _Refused(AdmissionReason.REPLAYED_REQUEST, "this request was seen before")
                break
        raise refusal or _Refused(
            AdmissionReason.INVALID_SIGNATURE,
            f"the request is not signed by a live signing key of {record.modeller!r}",
        )

    async def _ask_hub(self, request: VerifiedJobRequest, shape: TaskShape) -> DecisionOut:
        question = DecisionIn(
            modeller=request.modeller,
            pod=self._pod_id,
            protocol=shape.protocol,
            algorithms=list(shape.algorithms),
            task_hash=request.task_hash,
            project=shape.project,
        )
        try:
            decision = await self._hub.decide(question)
        except (HubClientError, HubUnreachableError) as error:
            raise _Refused(
                AdmissionReason.HUB_UNAVAILABLE, f"the hub's access manager did not answer: {error}"
            ) from None
        if decision.decision != "ACCEPT":
            raise _Refused(AdmissionReason.HUB_REFUSED, f"{decision.reason}: {decision.message}")
        return decision

    def _audit(self, envelope: Envelope, admission: Admission, now: datetime) -> None:
        details: dict[str, Any] = {"sender": envelope.sender}
        if admission.request is not None:
            details["task_hash"] = admission.request.task_hash
        if admission.shape is not None:
            details["protocol"] = admission.shape.protocol
            details["algorithms"] = list(admission.shape.algorithms)
        self._store.audit(
            NewAuditEvent(
                at=now,
                actor=admission.modeller or envelope.sender,
                action="job-accepted" if admission.accepted else "job-rejected",
                task_id=envelope.task_id,
                reason=admission.reason,
                details=details,
            )
        )
        if not admission.accepted:
            _log.info(
                "job request %s from %s refused: %s",
                envelope.task_id,
                admission.modeller or envelope.sender,
                admission.reason,
            )
