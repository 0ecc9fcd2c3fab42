"""JOB_REQUEST: a modeller's signed request, built once and verified at the pod."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from podium.core.crypto import (
    CanonicalEncodingError,
    DecryptionError,
    EncryptionKeyPair,
    InMemoryNonceRegistry,
    InvalidSignatureError,
    ReplayedNonceError,
    SessionKey,
    SignedRequest,
    SigningKeyPair,
    StaleRequestError,
    canonical_bytes,
    seal,
)
from podium.core.messages import (
    JobRequest,
    MessageError,
    MessageType,
    PayloadError,
    VerifiedJobRequest,
    decode_payload,
    encode_payload,
    job_request_aad,
    open_job_request,
    pod_id_of,
    pod_party,
    seal_job_request,
    task_hash_of,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
TASK_ID = "0123456789abcdef0123456789abcdef"
POD_ID = "acme/census"
TASK: dict[str, Any] = {"protocol": {"name": "results-only"}, "algorithms": [{"q": "SELECT 1"}]}
MODELLER = SigningKeyPair.generate()
SESSION = SessionKey.generate()


def _build(**changes: Any) -> JobRequest:
    arguments: dict[str, Any] = {
        "modeller": "alice",
        "pod_id": POD_ID,
        "task": TASK,
        "session_key": SESSION,
        "task_id": TASK_ID,
        "now": NOW,
    }
    arguments.update(changes)
    return JobRequest.build(MODELLER, **arguments)


def _verify(
    job: JobRequest,
    *,
    public: bytes = MODELLER.public_bytes,
    pod_id: str = POD_ID,
    now: datetime = NOW,
    nonces: InMemoryNonceRegistry | None = None,
) -> VerifiedJobRequest:
    return job.verify(
        public=public,
        pod_id=pod_id,
        now=now,
        nonces=InMemoryNonceRegistry() if nonces is None else nonces,
    )


def _resign(job: JobRequest, **changes: Any) -> JobRequest:
    """The same request with some signed fields changed, signed again by the modeller."""
    signed = SignedRequest.from_bytes(job.request)
    fields: dict[str, Any] = {
        "modeller": signed.modeller,
        "pod_id": signed.pod_id,
        "task_hash": signed.task_hash,
        "payload": dict(signed.payload),
        "now": NOW,
    }
    fields.update(changes)
    return JobRequest(job.task_id, SignedRequest.build(MODELLER, **fields).to_bytes())


def test_a_request_built_by_the_modeller_verifies_at_the_pod() -> None:
    """After the relay's framing, the pod gets back the task, session key and task id."""
    job = _build()
    received = decode_payload(MessageType.JOB_REQUEST, encode_payload(job))
    assert isinstance(received, JobRequest)

    verified = _verify(received)

    assert received.modeller == "alice"
    assert verified == VerifiedJobRequest(
        task_id=TASK_ID,
        modeller="alice",
        pod_id=POD_ID,
        task=TASK,
        task_hash=hashlib.sha256(canonical_bytes(TASK)).hexdigest(),
        session_key=SESSION,
        issued_at=NOW.replace(microsecond=0),
    )


def test_the_task_hash_is_sha256_of_the_canonical_task() -> None:
    """task_hash_of ignores key order and is the hex SHA-256 of canonical JSON."""
    reordered = {"algorithms": [{"q": "SELECT 1"}], "protocol": {"name": "results-only"}}
    assert task_hash_of(reordered) == task_hash_of(TASK)
    assert task_hash_of(TASK) == hashlib.sha256(canonical_bytes(TASK)).hexdigest()
    assert task_hash_of({**TASK, "x": 1}) != task_hash_of(TASK)


def test_a_tampered_task_breaks_the_signature() -> None:
    """A request whose signed body was changed in transit is INVALID_SIGNATURE."""
    job = _build()
    tampered = job.request.replace(b"SELECT 1", b"SELECT 2")
    assert tampered != job.request

    with pytest.raises(InvalidSignatureError, match="signature"):
        _verify(JobRequest(TASK_ID, tampered))


def test_a_request_for_another_pod_is_refused() -> None:
    """A request signed for acme/census does not run on acme/other."""
    with pytest.raises(InvalidSignatureError, match="reached pod 'acme/other'"):
        _verify(_build(), pod_id="acme/other")


def test_a_request_signed_by_another_key_is_refused() -> None:
    """Checked against a key that is not the signer's, the request is INVALID_SIGNATURE."""
    with pytest.raises(InvalidSignatureError):
        _verify(_build(), public=SigningKeyPair.generate().public_bytes)


@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=1)])
def test_a_stale_or_future_request_is_refused(age: timedelta) -> None:
    """A request older than 5 minutes, or dated ahead, is STALE_REQUEST."""
    with pytest.raises(StaleRequestError):
        _verify(_build(now=NOW - age))


def test_a_replayed_request_is_refused() -> None:
    """The same request verified twice by one pod is a replay the second time."""
    job = _build()
    nonces = InMemoryNonceRegistry()
    _verify(job, nonces=nonces)

    with pytest.raises(ReplayedNonceError):
        _verify(job, nonces=nonces, now=NOW + timedelta(seconds=1))


def test_a_task_hash_that_is_not_the_tasks_is_refused() -> None:
    """A request whose signed task hash is not the hash of its task is INVALID_SIGNATURE."""
    job = _resign(_build(), task_hash="ab" * 32)

    with pytest.raises(InvalidSignatureError, match="task hash"):
        _verify(job)


def test_a_request_moved_to_another_task_id_is_refused() -> None:
    """A signed request replayed under another task id is INVALID_SIGNATURE."""
    job = _build()
    moved = JobRequest("f" * 32, job.request)

    with pytest.raises(InvalidSignatureError, match="signed for task"):
        _verify(moved)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"task_id": TASK_ID, "task": TASK}, "exactly the fields"),
        ({"task_id": TASK_ID, "task": TASK, "session_key": SESSION.b64, "x": 1}, "exactly"),
        ({"task_id": TASK_ID, "task": [1], "session_key": SESSION.b64}, "not a mapping"),
        ({"task_id": TASK_ID, "task": TASK, "session_key": "AAAA"}, "session key"),
        ({"task_id": TASK_ID, "task": TASK, "session_key": 7}, "session key"),
    ],
)
def test_a_malformed_signed_payload_is_refused(payload: dict[str, Any], match: str) -> None:
    """Missing or extra fields, a non-mapping task or a bad session key: INVALID_SIGNATURE."""
    job = _resign(_build(), payload=payload)

    with pytest.raises(InvalidSignatureError, match=match):
        _verify(job)


@pytest.mark.parametrize(
    "changes",
    [
        {"task_id": "x"},
        {"modeller": "acme.census"},
        {"pod_id": "acme.census"},
        {"pod_id": "acme"},
    ],
)
def test_build_refuses_malformed_names(changes: dict[str, Any]) -> None:
    """A bad task id, modeller name or pod id (not '<owner>/<name>') is a MessageError."""
    with pytest.raises(MessageError):
        _build(**changes)


def test_a_task_with_floats_verifies_with_the_same_values() -> None:
    """A learning rate of 0.01 is signed, sent and read back as exactly 0.01."""
    task = {"algorithm": "FederatedModelTraining", "learning_rate": 0.01, "epochs": 2}
    verified = _verify(_build(task=task))
    assert verified.task == task
    assert repr(verified.task["learning_rate"]) == "0.01"


def test_a_task_with_a_nan_cannot_be_signed() -> None:
    """NaN has no canonical encoding, so a task holding one is refused when built."""
    with pytest.raises(CanonicalEncodingError):
        _build(task={"learning_rate": float("nan")})


def test_pod_ids_and_party_names_convert() -> None:
    """The signed pod id '<owner>/<name>' is the party '<owner>.<name>' with a slash."""
    assert pod_id_of(pod_party("acme", "census")) == POD_ID
    with pytest.raises(MessageError):
        pod_id_of("alice")


def test_sealed_job_request_opens_only_for_its_pod_and_task() -> None:
    """The body binds the task id and the pod id: only that pod opens it, only as that
    task; a record of another task inside is refused too."""
    pod = EncryptionKeyPair.generate()
    when = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    task_id, other_task = "a" * 32, "b" * 32
    record = JobRequest.build(
        SigningKeyPair.generate(),
        modeller="bob",
        pod_id="alice/census",
        task={"protocol": {"name": "ResultsOnly"}},
        session_key=SessionKey.generate(),
        task_id=task_id,
        now=when,
    )
    body = seal_job_request(record, pod.public_bytes, pod_id="alice/census")
    assert open_job_request(pod, body, task_id=task_id, pod_id="alice/census") == record
    for task, pod_id in ((other_task, "alice/census"), (task_id, "alice/other")):
        with pytest.raises(DecryptionError):
            open_job_request(pod, body, task_id=task, pod_id=pod_id)
    with pytest.raises(DecryptionError):
        open_job_request(EncryptionKeyPair.generate(), body, task_id=task_id, pod_id="alice/census")
    lifted = seal(
        pod.public_bytes, encode_payload(record), aad=job_request_aad(other_task, "alice/census")
    )
    with pytest.raises(PayloadError, match="not one for task"):
        open_job_request(pod, lifted, task_id=other_task, pod_id="alice/census")
