"""The pod's service loop against a real hub on a loopback port (HTTP API and /relay over
real sockets): registration, heartbeats, and job requests answered over the relay."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.core.crypto import SessionKey, SessionOpener, SigningKeyPair
from podium.core.messages import (
    Envelope,
    JobReject,
    JobRequest,
    MessageType,
    Signal,
    decode_payload,
    new_task_id,
    pod_mailbox,
    seal_job_request,
    task_mailbox,
)
from podium.hub.client import HubClient, HubClientError
from podium.hub.models import utcnow
from podium.hub.schemas import PodIn
from podium.hub.services import HubServices
from podium.pod.keys import PodKeys, load_or_create_pod_keys
from podium.pod.runtime import PodService
from podium.pod.store import InMemoryPodStore
from podium.transport import Backoff, ConnectionOptions, WebSocketTransport
from tests.hub.conftest import PASSWORD, make_services
from tests.hub.relay.hub_server import running_hub

POD_ID = "alice/census"
POD_PARTY = "alice.census"
WAIT_S = 10.0
TASK = {
    "protocol": {"name": "ResultsOnly"},
    "algorithm": {"name": "SqlQuery", "arguments": {"query": 'SELECT COUNT(*) FROM "census"'}},
}


def _unframe(plain: bytes) -> bytes:
    """A whole record's bytes from a sealed message's plaintext (a two-byte header)."""
    assert plain[:1] == b"\x00"  # whole; then the message type's code
    return plain[2:]


@dataclass
class Hub:
    services: HubServices
    url: str
    pod_key: str  # alice's API key, for her pod
    bob_key: str  # bob's API key, for his relay connection
    bob_signing: SigningKeyPair


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    services = make_services(tmp_path, utcnow)
    now = utcnow()
    for name in ("alice", "bob"):
        services.accounts.create_user(name, PASSWORD, is_admin=False, now=now)
    _, pod_key = services.accounts.create_api_key("alice", "census pod", now)
    _, bob_key = services.accounts.create_api_key("bob", "notebook", now)
    signing = SigningKeyPair.generate()
    with running_hub(services) as relay_url:
        url = relay_url.replace("ws://", "http://").removesuffix("/relay")
        yield Hub(services, url, pod_key, bob_key, signing)


async def _prepare_bob(hub: Hub, *, grant: bool) -> None:
    async with HubClient(hub.url, token=hub.bob_key) as bob:
        await bob.register_key("bob", "signing", hub.bob_signing.public_b64)
    if grant:
        async with HubClient(hub.url, token=hub.pod_key) as alice:
            await alice.grant(POD_ID, "bob", "general-modeller")


#: Why the pod's data cannot be read; None while it can (tests set it).
DATA_GONE: list[str | None] = [None]


@pytest.fixture
async def running_pod(hub: Hub, tmp_path: Path) -> AsyncIterator[tuple[PodService, PodKeys]]:
    keys = load_or_create_pod_keys(tmp_path / "pod-keys")
    DATA_GONE[0] = None
    service = PodService(
        pod_id=POD_ID,
        hub_url=hub.url,
        credential=hub.pod_key,
        registration=PodIn(display_name="Census", description="census income"),
        keys=keys,
        store=InMemoryPodStore(),
        unavailable=lambda: DATA_GONE[0],
    )
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(WAIT_S):
            ready = asyncio.create_task(service.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                await task  # raises what stopped it
        yield service, keys
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _request(
    hub: Hub,
    keys: PodKeys,
    session: SessionKey,
    signing: SigningKeyPair,
    task: Mapping[str, object] | None = None,
) -> Envelope:
    task_id = new_task_id()
    record = JobRequest.build(
        signing,
        modeller="bob",
        pod_id=POD_ID,
        task=TASK if task is None else task,
        session_key=session,
        task_id=task_id,
        now=utcnow(),
    )
    return Envelope(
        type=MessageType.JOB_REQUEST,
        task_id=task_id,
        sender="bob",
        recipient=pod_mailbox("alice", "census"),
        seq=0,
        sent_at=time.time(),
        body=seal_job_request(record, keys.encryption.public_bytes, pod_id=POD_ID),
    )


async def _ask(hub: Hub, request: Envelope) -> Envelope:
    """Send ``request`` as bob and wait for the pod's answer."""
    options = ConnectionOptions(backoff=Backoff(initial=0.01, maximum=0.1))
    transport = WebSocketTransport(hub.url, hub.bob_key)
    async with (
        asyncio.timeout(WAIT_S),
        transport.connect([task_mailbox(request.task_id, "bob")], options=options) as bob,
    ):
        await bob.send(request)
        answer = await bob.receive()
        await bob.ack(answer)
    return answer


async def test_the_pod_registers_with_its_keys_and_shows_online(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    _, keys = running_pod
    async with HubClient(hub.url, token=hub.pod_key) as alice:
        async with asyncio.timeout(WAIT_S):
            while (pod := await alice.get_pod(POD_ID)).status != "online":
                await asyncio.sleep(0.05)
    assert pod.display_name == "Census"
    registered = {k.public_key for k in pod.keys}
    assert {keys.signing.public_b64, keys.encryption.public_b64} <= registered


async def test_a_granted_request_is_accepted_over_the_relay(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    _, keys = running_pod
    await _prepare_bob(hub, grant=True)
    session = SessionKey.generate()
    request = _request(hub, keys, session, hub.bob_signing)
    answer = await _ask(hub, request)
    assert (answer.type, answer.sender, answer.meta["sealed"]) == (
        MessageType.JOB_ACCEPT,
        POD_PARTY,
        True,
    )
    opener = SessionOpener(session, request.task_id, POD_PARTY)
    plain = opener.open(answer.seq, answer.body, final=False)
    assert decode_payload(MessageType.JOB_ACCEPT, _unframe(plain)) == Signal()


async def test_without_a_grant_the_answer_is_a_sealed_rejection(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    _, keys = running_pod
    await _prepare_bob(hub, grant=False)
    session = SessionKey.generate()
    request = _request(hub, keys, session, hub.bob_signing)
    answer = await _ask(hub, request)
    assert answer.type is MessageType.JOB_REJECT
    opener = SessionOpener(session, request.task_id, POD_PARTY)
    reject = decode_payload(
        MessageType.JOB_REJECT, _unframe(opener.open(answer.seq, answer.body, final=True))
    )
    assert isinstance(reject, JobReject)
    assert reject.reason.startswith("hub-refused: no-access")


async def test_a_forged_request_gets_only_a_reason(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    """Signed with a key the hub does not hold for bob: no session key can be trusted, so
    the rejection carries only the reason, unsealed."""
    _, keys = running_pod
    await _prepare_bob(hub, grant=True)
    request = _request(hub, keys, SessionKey.generate(), SigningKeyPair.generate())
    answer = await _ask(hub, request)
    assert (answer.type, answer.meta["sealed"]) == (MessageType.JOB_REJECT, False)
    assert decode_payload(MessageType.JOB_REJECT, answer.body) == JobReject("invalid-signature")


async def test_a_refused_registration_ends_the_service(hub: Hub, tmp_path: Path) -> None:
    service = PodService(
        pod_id="bob/census",  # alice's key cannot register bob's pod
        hub_url=hub.url,
        credential=hub.pod_key,
        registration=PodIn(),
        keys=load_or_create_pod_keys(tmp_path / "keys"),
        store=InMemoryPodStore(),
    )
    with pytest.raises(HubClientError):
        async with asyncio.timeout(WAIT_S):
            await service.run()


async def test_an_unreachable_hub_is_retried_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = PodService(
        pod_id=POD_ID,
        hub_url="http://127.0.0.1:9",  # discard port: nothing listens
        credential="pdm_x_y",
        registration=PodIn(),
        keys=load_or_create_pod_keys(tmp_path / "keys"),
        store=InMemoryPodStore(),
        backoff=Backoff(initial=0.01, maximum=0.02),
    )
    with caplog.at_level(logging.WARNING, logger="podium.pod"), pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await service.run()
    retries = [r for r in caplog.records if "cannot reach the hub" in r.getMessage()]
    assert len(retries) >= 2


async def test_requests_are_refused_while_the_data_is_gone(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    _, keys = running_pod
    await _prepare_bob(hub, grant=True)
    DATA_GONE[0] = "census.csv is gone"
    session = SessionKey.generate()
    request = _request(hub, keys, session, hub.bob_signing)
    answer = await _ask(hub, request)
    opener = SessionOpener(session, request.task_id, POD_PARTY)
    reject = decode_payload(
        MessageType.JOB_REJECT, _unframe(opener.open(answer.seq, answer.body, final=True))
    )
    assert isinstance(reject, JobReject)
    assert reject.reason.startswith("data-not-available")


def test_a_service_needs_a_key_or_a_signed_in_client(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="API key, or a hub client"):
        PodService(
            pod_id=POD_ID,
            hub_url="http://127.0.0.1:9",
            credential=None,
            registration=PodIn(),
            keys=load_or_create_pod_keys(tmp_path / "keys"),
            store=InMemoryPodStore(),
        )


async def test_the_full_schema_replaces_the_partial_one_when_ready(
    hub: Hub, tmp_path: Path
) -> None:
    """The pod shows on the hub at once with what it has, and registers again once the
    full schema is inferred (here: when the test lets it)."""
    inferred = asyncio.Event()

    async def full() -> PodIn:
        await inferred.wait()
        return PodIn(display_name="Census", description="all of it", number_of_records=32561)

    service = PodService(
        pod_id=POD_ID,
        hub_url=hub.url,
        credential=hub.pod_key,
        registration=PodIn(display_name="Census", description="first batch", number_of_records=100),
        keys=load_or_create_pod_keys(tmp_path / "keys"),
        store=InMemoryPodStore(),
        later_registration=full,
    )
    running = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(WAIT_S), HubClient(hub.url, token=hub.pod_key) as alice:
            await service.ready.wait()
            first = await alice.get_pod(POD_ID)
            inferred.set()
            while (now := await alice.get_pod(POD_ID)).description != "all of it":
                await asyncio.sleep(0.05)
        assert (first.description, first.number_of_records) == ("first batch", 100)
        assert now.number_of_records == 32561
        assert {k.public_key for k in first.keys} == {k.public_key for k in now.keys}
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_a_task_the_pod_cannot_run_is_refused_as_unsupported(
    hub: Hub, running_pod: tuple[PodService, PodKeys]
) -> None:
    """An algorithm without its required argument: refused before the hub is asked."""
    _, keys = running_pod
    await _prepare_bob(hub, grant=True)
    session = SessionKey.generate()
    task = {"protocol": {"name": "ResultsOnly"}, "algorithm": {"name": "SqlQuery"}}
    answer = await _ask(hub, _request(hub, keys, session, hub.bob_signing, task))
    opener = SessionOpener(session, answer.task_id, POD_PARTY)
    reject = decode_payload(
        MessageType.JOB_REJECT, _unframe(opener.open(answer.seq, answer.body, final=True))
    )
    assert isinstance(reject, JobReject)
    assert reject.reason.startswith("unsupported-task: SqlQuery: argument 'query'")
