"""Admission against a real hub app (in-process, over its HTTP API): sealed, signed requests
from real keys, the hub's access manager, the pod's policy and its DB's audit log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.core.crypto import SessionKey, SigningKeyPair
from podium.core.messages import (
    Envelope,
    JobRequest,
    MessageType,
    new_task_id,
    pod_mailbox,
    seal_job_request,
)
from podium.hub.app import create_app
from podium.hub.client import HubClient
from podium.hub.schemas import DecisionIn, DecisionOut, PodIn
from podium.hub.services import HubServices
from podium.pod.admission import (
    Admission,
    AdmissionReason,
    Admitter,
    HubClientGate,
    MalformedTaskError,
    TaskShape,
)
from podium.pod.keys import PodKeys, load_or_create_pod_keys
from podium.pod.policy import PodPolicy, RejectReason
from podium.pod.store import InMemoryPodStore, StoreNonceRegistry
from tests.hub.conftest import PASSWORD, Clock, make_services

BASE = "http://hub.test"
POD_ID = "alice/census"
SQL_TASK: dict[str, Any] = {
    "protocol": {"name": "bitfount.ResultsOnly"},
    "algorithm": [{"name": "bitfount.SqlQuery", "arguments": {"query": "SELECT 1"}}],
}
PRIVATE_TASK: dict[str, Any] = {
    "protocol": {"name": "ResultsOnly"},
    "algorithm": {"name": "PrivateSqlQuery", "arguments": {"epsilon": 2.0, "delta": 1e-6}},
}


@dataclass
class Setup:
    """A hub with alice's census pod, modellers bob (general + DP presets) and eve (no
    grant), and the pod's admitter."""

    services: HubServices
    clock: Clock
    pod_keys: PodKeys
    signing: dict[str, SigningKeyPair]
    store: InMemoryPodStore
    gate: HubClientGate
    transport: httpx.AsyncBaseTransport

    def admitter(self, policy: PodPolicy | None = None, **options: Any) -> Admitter:
        return Admitter(
            pod_id=POD_ID,
            keys=self.pod_keys,
            hub=self.gate,
            store=self.store,
            nonces=StoreNonceRegistry(self.store),
            policy=policy or PodPolicy(),
            clock=self.clock,
            **options,
        )

    def request(
        self,
        task: Mapping[str, Any] = SQL_TASK,
        *,
        modeller: str = "bob",
        keys: SigningKeyPair | None = None,
        pod_id: str = POD_ID,
        age_s: float = 0,
    ) -> Envelope:
        task_id = new_task_id()
        record = JobRequest.build(
            keys or self.signing[modeller],
            modeller=modeller,
            pod_id=pod_id,
            task=dict(task),
            session_key=SessionKey.generate(),
            task_id=task_id,
            now=self.clock() - timedelta(seconds=age_s),
        )
        return Envelope(
            type=MessageType.JOB_REQUEST,
            task_id=task_id,
            sender=modeller,
            recipient=pod_mailbox("alice", "census"),
            seq=0,
            sent_at=time.time(),
            body=seal_job_request(record, self.pod_keys.encryption.public_bytes, pod_id=pod_id),
        )


async def _client(transport: httpx.AsyncBaseTransport, name: str) -> HubClient:
    client = HubClient(BASE, transport=transport)
    await client.__aenter__()
    await client.login_password(name, PASSWORD)
    return client


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = Clock()
    services = make_services(tmp_path, clock)
    transport = httpx.ASGITransport(app=create_app(services, web=False))
    for name in ("alice", "bob", "eve"):
        services.accounts.create_user(name, PASSWORD, is_admin=False, now=clock())
    pod_keys = load_or_create_pod_keys(tmp_path / "keys")
    signing = {name: SigningKeyPair.generate() for name in ("bob", "eve")}
    clients = [await _client(transport, name) for name in ("alice", "bob", "eve")]
    alice, bob, eve = clients
    try:
        for client, name in ((bob, "bob"), (eve, "eve")):
            await client.register_key(name, "signing", signing[name].public_b64)
        await alice.register_pod(
            POD_ID,
            PodIn(
                signing_key=pod_keys.signing.public_b64,
                encryption_key=pod_keys.encryption.public_b64,
            ),
        )
        await alice.grant(POD_ID, "bob", "general-modeller")
        await alice.grant(POD_ID, "bob", "dp-modeller")
        api_key = (await alice.create_api_key("census pod")).key
        async with HubClient(BASE, token=api_key, transport=transport) as pod_client:
            yield Setup(
                services,
                clock,
                pod_keys,
                signing,
                InMemoryPodStore(),
                HubClientGate(pod_client),
                transport,
            )
    finally:
        for client in clients:
            await client.aclose()


def audited(setup: Setup) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.reason) for e in reversed(setup.store.audit_events())]


async def test_a_granted_request_is_accepted_and_audited(setup: Setup) -> None:
    envelope = setup.request()
    admission = await setup.admitter().admit(envelope)
    assert (admission.accepted, admission.reason) == (True, None)
    assert admission.request is not None
    assert admission.request.task == SQL_TASK
    assert admission.shape == TaskShape(
        protocol="ResultsOnly",
        algorithms=("SqlQuery",),
        model_hash=None,
        secure_aggregation=False,
        pods=(),
        dp=None,
        project=None,
    )
    assert admission.decision is not None
    assert admission.decision.decision == "ACCEPT"
    assert audited(setup) == [("bob", "job-accepted", None)]
    (event,) = setup.store.audit_events()
    assert event.task_id == envelope.task_id
    assert event.details["algorithms"] == ["SqlQuery"]


async def _refused(setup: Setup, envelope: Envelope, **options: Any) -> Admission:
    admission = await setup.admitter(**options).admit(envelope)
    assert not admission.accepted
    assert setup.store.audit_events()[0].action == "job-rejected"
    assert setup.store.audit_events()[0].reason == admission.reason
    return admission


async def test_a_request_signed_with_an_unregistered_key_is_refused(setup: Setup) -> None:
    forged = setup.request(keys=SigningKeyPair.generate())
    admission = await _refused(setup, forged)
    assert admission.reason == AdmissionReason.INVALID_SIGNATURE
    assert admission.request is None


async def test_a_request_in_another_modellers_name_is_refused(setup: Setup) -> None:
    """eve signs with her own (registered) key but claims to be bob."""
    admission = await _refused(setup, setup.request(keys=setup.signing["eve"]))
    assert admission.reason == AdmissionReason.INVALID_SIGNATURE


async def test_a_stale_request_is_refused(setup: Setup) -> None:
    admission = await _refused(setup, setup.request(age_s=6 * 60))
    assert admission.reason == AdmissionReason.STALE_REQUEST


async def test_a_replayed_request_is_refused(setup: Setup) -> None:
    envelope = setup.request()
    admitter = setup.admitter()
    assert (await admitter.admit(envelope)).accepted
    again = await admitter.admit(envelope)
    assert (again.accepted, again.reason) == (False, AdmissionReason.REPLAYED_REQUEST)
    assert [a for _, a, _ in audited(setup)] == ["job-accepted", "job-rejected"]


@pytest.mark.parametrize("damage", ["flip", "other-pod", "other-task"])
async def test_a_request_that_does_not_open_is_refused(setup: Setup, damage: str) -> None:
    envelope = setup.request()
    if damage == "flip":
        body = bytearray(envelope.body)
        body[len(body) // 2] ^= 1
        envelope = _with(envelope, body=bytes(body))
    elif damage == "other-pod":
        envelope = setup.request(pod_id="alice/other")
    else:
        envelope = _with(envelope, task_id=new_task_id())
    admission = await _refused(setup, envelope)
    assert admission.reason == AdmissionReason.MALFORMED_REQUEST


def _with(envelope: Envelope, **changes: Any) -> Envelope:
    fields = {
        "type": envelope.type,
        "task_id": envelope.task_id,
        "sender": envelope.sender,
        "recipient": envelope.recipient,
        "seq": envelope.seq,
        "sent_at": envelope.sent_at,
        "meta": envelope.meta,
        "body": envelope.body,
    }
    return Envelope(**{**fields, **changes})


async def test_the_hubs_refusal_is_passed_on(setup: Setup) -> None:
    """eve holds no grant on the pod: the access manager refuses, and the pod says why."""
    admission = await _refused(setup, setup.request(modeller="eve"))
    assert admission.reason == AdmissionReason.HUB_REFUSED
    assert admission.message.startswith("no-access")
    assert admission.modeller == "eve"


async def test_the_local_policy_can_refuse_what_the_hub_allows(setup: Setup) -> None:
    policy = PodPolicy(denied_users=["bob"])
    admission = await _refused(setup, setup.request(), policy=policy)
    assert admission.reason == RejectReason.USER_NOT_ALLOWED


async def test_dp_caps_apply_with_the_ledger(setup: Setup) -> None:
    """The task asks epsilon 2: refused by a per-task cap of 1, and by a total budget of 5
    once 4 are spent; allowed otherwise."""
    capped = PodPolicy.model_validate({"dp": {"max_epsilon_per_task": 1.0}})
    admission = await _refused(setup, setup.request(PRIVATE_TASK), policy=capped)
    assert admission.reason == RejectReason.DP_TASK_CAP
    budget = PodPolicy.model_validate({"dp": {"total_epsilon_per_modeller": 5.0}})
    assert (await setup.admitter(policy=budget).admit(setup.request(PRIVATE_TASK))).accepted
    setup.store.spend_budget(
        "bob", POD_ID, 4.0, 0.0, task_id="t", now=setup.clock(), cap_epsilon=None, cap_delta=None
    )
    admission = await _refused(setup, setup.request(PRIVATE_TASK), policy=budget)
    assert admission.reason == RejectReason.DP_BUDGET_EXHAUSTED


async def test_secure_aggregation_only_with_approved_pods(setup: Setup) -> None:
    task = {**SQL_TASK, "aggregator": {"secure": True}, "pods": [POD_ID, "carol/clinic"]}
    admission = await _refused(setup, setup.request(task))
    assert admission.reason == RejectReason.POD_NOT_APPROVED
    approved = setup.admitter(approved_pods=["carol/clinic"])
    assert (await approved.admit(setup.request(task))).accepted


async def test_a_malformed_task_is_refused(setup: Setup) -> None:
    admission = await _refused(setup, setup.request({"algorithm": {"name": "SqlQuery"}}))
    assert admission.reason == AdmissionReason.MALFORMED_TASK
    assert "protocol" in admission.message


class DownHub:
    """A hub that cannot be reached."""

    async def signing_keys(self, user: str) -> list[bytes]:
        from podium.hub.client import HubUnreachableError  # noqa: PLC0415

        raise HubUnreachableError(BASE, "connection refused")

    async def decide(self, request: DecisionIn) -> DecisionOut:  # pragma: no cover
        raise AssertionError("not reached")


async def test_an_unreachable_hub_refuses(setup: Setup) -> None:
    admitter = Admitter(
        pod_id=POD_ID,
        keys=setup.pod_keys,
        hub=DownHub(),
        store=setup.store,
        nonces=StoreNonceRegistry(setup.store),
        policy=PodPolicy(),
        clock=setup.clock,
    )
    admission = await admitter.admit(setup.request())
    assert (admission.accepted, admission.reason) == (False, AdmissionReason.HUB_UNAVAILABLE)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"protocol": {"name": "ResultsOnly"}}, "at least one algorithm"),
        ({"protocol": {"name": " "}, "algorithm": {"name": "A"}}, "empty 'name'"),
        ({"protocol": {"name": "P"}, "algorithm": [{"nam": "A"}]}, "needs a 'name'"),
        ({"protocol": {"name": "P"}, "algorithm": {"name": "A"}, "pods": "x"}, "list of pod"),
        (
            {"protocol": {"name": "P"}, "algorithm": {"name": "A", "arguments": {"epsilon": True}}},
            "must be a number",
        ),
        (
            {"protocol": {"name": "P"}, "algorithm": {"name": "A", "arguments": {"epsilon": -1}}},
            ">= 0",
        ),
        (
            {"protocol": {"name": "P"}, "algorithm": {"name": "A"}, "model": {"code_sha256": 1}},
            "code",
        ),
        ({"protocol": {"name": "P"}, "algorithm": {"name": "A"}, "project_id": 3}, "project_id"),
    ],
)
def test_task_shape_errors(task: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedTaskError, match=message):
        TaskShape.from_task(task)


def test_task_shape_sums_dp_and_reads_the_model() -> None:
    shape = TaskShape.from_task(
        {
            "protocol": {"name": "bitfount.FederatedAveraging"},
            "algorithm": [
                {"name": "A", "arguments": {"epsilon": 0.5}},
                {"name": "B", "arguments": {"epsilon": 1, "delta": 1e-5}},
                {"name": "C"},
            ],
            "model": {"code_sha256": "ab" * 32},
            "project_id": "trial",
        }
    )
    assert shape.protocol == "FederatedAveraging"
    assert shape.algorithms == ("A", "B", "C")
    assert shape.dp is not None
    assert (shape.dp.epsilon, shape.dp.delta) == (1.5, 1e-5)
    assert (shape.model_hash, shape.project) == ("ab" * 32, "trial")


async def test_data_that_went_away_refuses_the_request(setup: Setup) -> None:
    """While the data cannot be read (a file removed), requests are refused as
    data-not-available, before the hub is asked; once it is back, they are admitted."""
    gone: list[str | None] = ["census.csv is gone"]
    admitter = setup.admitter(unavailable=lambda: gone[0])
    admission = await admitter.admit(setup.request())
    assert (admission.accepted, admission.reason) == (False, AdmissionReason.DATA_NOT_AVAILABLE)
    assert admission.decision is None
    assert "census.csv" not in admission.message  # the pod's paths are not the modeller's
    gone[0] = None
    assert (await admitter.admit(setup.request())).accepted


#: What each grant lets a modeller run on the pod (the hub's roles and presets), task by
#: task: SQL, private SQL, federated training, PSI, inference. Written out as the spec.
TASKS: dict[str, dict[str, Any]] = {
    "sql": SQL_TASK,
    "private-sql": PRIVATE_TASK,
    "train": {
        "protocol": {"name": "bitfount.FederatedAveraging"},
        "algorithm": {"name": "bitfount.ModelTrainingAndEvaluation"},
    },
    "psi": {
        "protocol": {"name": "PrivateSetIntersection"},
        "algorithm": {"name": "ComputeIntersectionRSA"},
    },
    "infer": {
        "protocol": {"name": "InferenceAndCSVReport"},
        "algorithm": [{"name": "ModelInference"}, {"name": "CSVReportAlgorithm"}],
    },
}
ALLOWED: dict[str | None, set[str]] = {
    None: set(),
    "viewer": set(),
    "general-modeller": {"sql", "train", "infer"},
    "dp-modeller": {"private-sql"},
    "super-modeller": {"sql", "private-sql", "train", "psi", "infer"},
}


@pytest.mark.parametrize("grant", list(ALLOWED), ids=lambda g: g or "no-grant")
async def test_user_role_protocol_matrix(setup: Setup, grant: str | None) -> None:
    """Each grant admits exactly its tasks; the others are refused by the hub, with the
    reason the access manager gives (no access at all, or a missing role)."""
    user = "carol"
    setup.services.accounts.create_user(user, PASSWORD, is_admin=False, now=setup.clock())
    setup.signing[user] = SigningKeyPair.generate()
    async with HubClient(BASE, transport=setup.transport) as carol:
        await carol.login_password(user, PASSWORD)
        await carol.register_key(user, "signing", setup.signing[user].public_b64)
    if grant is not None:
        async with HubClient(BASE, transport=setup.transport) as alice:
            await alice.login_password("alice", PASSWORD)
            await alice.grant(POD_ID, user, grant)
    admitter = setup.admitter()
    for kind, task in TASKS.items():
        admission = await admitter.admit(setup.request(task, modeller=user))
        expected = kind in ALLOWED[grant]
        assert admission.accepted is expected, (grant, kind, admission.message)
        if not expected:
            assert admission.reason == AdmissionReason.HUB_REFUSED
            why = "no-access" if grant is None else "missing-role"
            assert admission.message.startswith(why), (grant, kind, admission.message)
