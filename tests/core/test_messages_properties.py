"""Property tests: frames and payloads round-trip exactly, and no input, random or a
mutation of a valid frame, makes a decoder raise anything but its own refusal."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.crypto import (
    InMemoryNonceRegistry,
    InvalidSignatureError,
    SessionKey,
    SigningKeyPair,
)
from podium.core.messages import (
    PAYLOAD_CLASSES,
    AbortReason,
    Ack,
    BatchesComplete,
    BatchesCompleteKind,
    CloseCode,
    CurrentBatchId,
    Deliver,
    Envelope,
    FrameError,
    JobRequest,
    LogLevel,
    LogMessage,
    MessageType,
    NumberOfBatches,
    Payload,
    PayloadError,
    Receipt,
    Subscribe,
    TaskAbort,
    TrainingMetrics,
    VerifiedJobRequest,
    decode_client_frame,
    decode_frame,
    decode_hub_frame,
    decode_payload,
    encode_control,
    encode_deliver,
    encode_frame,
    encode_payload,
    pod_mailbox,
    task_hash_of,
    task_mailbox,
)
from podium.core.messages._frames import _envelope_map
from podium.core.names import NAME_CHARS

PROPERTY = settings(max_examples=200, derandomize=True, deadline=None)
#: Fuzzing also checks that no input makes a decoder slow (a hang would fail the deadline).
FUZZ = settings(max_examples=300, derandomize=True, deadline=timedelta(seconds=1))
LIMIT = 1 << 16

_NAME = st.from_regex(NAME_CHARS, fullmatch=True)
_TASK_ID = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
_PARTY = _NAME | st.builds(lambda owner, pod: f"{owner}.{pod}", _NAME, _NAME)
_META_VALUE = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=256)
)
_META = st.dictionaries(
    st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True), _META_VALUE, max_size=32
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    """Any valid envelope, to a pod mailbox or to a mailbox of its own task."""
    task_id = draw(_TASK_ID)
    recipient = draw(
        st.builds(pod_mailbox, _NAME, _NAME) | st.builds(task_mailbox, st.just(task_id), _PARTY)
    )
    return Envelope(
        type=draw(st.sampled_from(MessageType)),
        task_id=task_id,
        sender=draw(_PARTY),
        recipient=recipient,
        seq=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        sent_at=draw(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)),
        meta=draw(_META),
        body=draw(st.binary(max_size=2048)),
    )


def _same(left: object, right: object) -> bool:
    """Equal, with floats compared bit for bit (0.0 vs -0.0) and types kept."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return math.copysign(1.0, left) == math.copysign(1.0, right) and left == right  # type: ignore[arg-type]
    return left == right


@PROPERTY
@given(envelopes())
def test_envelopes_round_trip_exactly(envelope: Envelope) -> None:
    """Decoding an envelope's frame gives back every field, with the same types."""
    decoded = decode_frame(encode_frame(envelope), max_frame_bytes=LIMIT)
    assert decoded == envelope
    assert _same(decoded.sent_at, envelope.sent_at)
    assert all(_same(decoded.meta[key], value) for key, value in envelope.meta.items())


@PROPERTY
@given(envelopes(), st.sampled_from([0, 1, 255, 256, 65535, 65536, 70_000]))
def test_frames_are_plain_msgpack_of_the_envelope(envelope: Envelope, body_size: int) -> None:
    """The fast encoder writes exactly what msgpack writes for the envelope's map, at
    every bin header size."""
    envelope = dataclasses.replace(envelope, body=bytes(body_size))
    expected = msgpack.packb(_envelope_map(envelope), use_bin_type=True)
    assert encode_frame(envelope) == expected


@PROPERTY
@given(envelopes(), st.integers(min_value=0, max_value=2**63 - 1))
def test_delivered_envelopes_round_trip(envelope: Envelope, delivery_id: int) -> None:
    """A DELIVER built from stored frame bytes decodes to the same envelope and id."""
    frame = encode_frame(envelope)
    decoded = decode_hub_frame(encode_deliver(delivery_id, frame), max_frame_bytes=len(frame))
    assert decoded == Deliver(delivery_id, envelope)


@PROPERTY
@given(
    st.lists(
        st.builds(pod_mailbox, _NAME, _NAME) | st.builds(task_mailbox, _TASK_ID, _PARTY),
        min_size=1,
        max_size=16,
    ),
    st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=64),
)
def test_client_control_frames_round_trip(mailboxes: list[str], ids: list[int]) -> None:
    """Any SUBSCRIBE and ACK decode on the hub to equal frames."""
    for frame in (Subscribe(tuple(mailboxes)), Ack(tuple(ids))):
        assert decode_client_frame(encode_control(frame), max_frame_bytes=LIMIT) == frame


@PROPERTY
@given(envelopes())
def test_size_limit_is_exact(envelope: Envelope) -> None:
    """A frame passes at exactly the limit and is refused as too large one byte under it."""
    frame = encode_frame(envelope)
    assert decode_frame(frame, max_frame_bytes=len(frame)) == envelope
    with pytest.raises(FrameError) as caught:
        decode_frame(frame, max_frame_bytes=len(frame) - 1)
    assert caught.value.code is CloseCode.FRAME_TOO_LARGE


def _refusal(decode: Callable[..., object], data: bytes) -> FrameError | None:
    try:
        decode(data, max_frame_bytes=LIMIT)
    except FrameError as error:
        return error
    return None


def _decode_all(data: bytes) -> None:
    """Run every frame decoder on ``data``; each may return or raise FrameError only."""
    for decode in (decode_frame, decode_client_frame, decode_hub_frame):
        error = _refusal(decode, data)
        assert error is None or error.code in CloseCode


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_only_ever_give_frame_errors(data: bytes) -> None:
    """Arbitrary bytes decode or raise FrameError, never another exception."""
    _decode_all(data)


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "set"]),
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=255),
)


def _mutate(data: bytes, mutation: tuple[str, int, int]) -> bytes:
    kind, where, byte = mutation
    index = where % (len(data) + 1)
    if kind == "insert":
        return data[:index] + bytes([byte]) + data[index:]
    if kind == "truncate" or not data:
        return data[:index]
    index %= len(data)
    if kind == "delete":
        return data[:index] + data[index + 1 :]
    new = data[index] ^ (byte or 1) if kind == "flip" else byte
    return data[:index] + bytes([new]) + data[index + 1 :]


_FRAMES = (
    envelopes().map(encode_frame)
    | st.tuples(st.integers(min_value=0, max_value=2**63 - 1), envelopes()).map(
        lambda pair: encode_deliver(pair[0], encode_frame(pair[1]))
    )
    | st.builds(
        Receipt,
        _TASK_ID,
        st.builds(pod_mailbox, _NAME, _NAME),
        st.integers(min_value=0, max_value=2**63 - 1),
    ).map(encode_control)
)


@FUZZ
@given(_FRAMES, st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_frames_only_ever_give_frame_errors(
    frame: bytes, mutations: list[tuple[str, int, int]]
) -> None:
    """Valid frames with bytes flipped, set, inserted or removed never escape FrameError."""
    for mutation in mutations:
        frame = _mutate(frame, mutation)
    _decode_all(frame)


_MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from([*MessageType, "SUBSCRIBE", "ACK", "DELIVER", "RECEIPT", "REFUSED"]),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)
_FRAME_KEYS = st.sampled_from(
    ["v", "type", "task", "from", "to", "seq", "at", "meta", "body", "id", "env", "ids", "code"]
)


@FUZZ
@given(st.dictionaries(_FRAME_KEYS, _MSGPACK_VALUES, max_size=10), st.booleans())
def test_random_well_formed_maps_only_ever_give_frame_errors(
    value: dict[str, object], versioned: bool
) -> None:
    """Valid msgpack maps with frame-like keys and any values never escape FrameError."""
    if versioned:
        value["v"] = 1
    _decode_all(msgpack.packb(value))


_TEXT = st.text(max_size=200)
_RECORDS: st.SearchStrategy[tuple[MessageType, Payload]] = st.one_of(
    st.builds(
        NumberOfBatches,
        st.just(-1) | st.integers(min_value=1, max_value=2**63 - 1),
    ).map(lambda r: (MessageType.NUMBER_OF_BATCHES, r)),
    st.builds(CurrentBatchId, st.integers(min_value=0, max_value=2**63 - 1)).map(
        lambda r: (MessageType.CURRENT_BATCH_ID, r)
    ),
    st.builds(
        TrainingMetrics,
        st.dictionaries(_TEXT, st.floats(allow_nan=False, allow_infinity=False), max_size=20),
    ).map(lambda r: (MessageType.TRAINING_METRICS, r)),
    st.builds(TaskAbort, st.sampled_from(AbortReason), _TEXT).map(
        lambda r: (MessageType.TASK_ABORT, r)
    ),
    st.builds(LogMessage, st.sampled_from(LogLevel), _TEXT).map(
        lambda r: (MessageType.LOG_MESSAGE, r)
    ),
    st.builds(BatchesComplete, st.sampled_from(BatchesCompleteKind)).map(
        lambda r: (MessageType.BATCHES_COMPLETE, r)
    ),
)


@PROPERTY
@given(_RECORDS)
def test_payload_records_round_trip(pair: tuple[MessageType, Payload]) -> None:
    """A record decodes from its bytes to an equal record of the same class."""
    kind, record = pair
    decoded = decode_payload(kind, encode_payload(record))
    assert decoded == record
    assert type(decoded) is PAYLOAD_CLASSES[kind]


@FUZZ
@given(st.sampled_from(MessageType), st.binary(max_size=512) | _MSGPACK_VALUES.map(msgpack.packb))
def test_random_payloads_only_ever_give_payload_errors(kind: MessageType, data: bytes) -> None:
    """Arbitrary plaintext decodes to its record or raises PayloadError, nothing else."""
    try:
        record = decode_payload(kind, data)
    except PayloadError:
        return
    assert isinstance(record, PAYLOAD_CLASSES[kind])


_NOW = datetime(2025, 1, 2, tzinfo=UTC)
_KEYS = SigningKeyPair.generate()
#: Task definitions as canonical JSON allows them: no floats, no bytes.
_TASKS = st.dictionaries(
    st.text(max_size=20),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=50),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    ),
    max_size=6,
)


def _job(task: dict[str, Any], task_id: str) -> JobRequest:
    return JobRequest.build(
        _KEYS,
        modeller="alice",
        pod_id="acme/census",
        task=task,
        session_key=SessionKey(bytes(32)),
        task_id=task_id,
        now=_NOW,
    )


def _receive(payload: bytes) -> VerifiedJobRequest:
    """What the pod does: decode the plaintext, then verify the signed request."""
    received = decode_payload(MessageType.JOB_REQUEST, payload)
    assert isinstance(received, JobRequest)
    return received.verify(
        public=_KEYS.public_bytes,
        pod_id="acme/census",
        now=_NOW,
        nonces=InMemoryNonceRegistry(),
    )


@PROPERTY
@given(_TASKS, _TASK_ID)
def test_job_requests_carry_any_task_to_the_pod(task: dict[str, Any], task_id: str) -> None:
    """Any canonical task survives framing and verification, with its hash and task id."""
    verified = _receive(encode_payload(_job(task, task_id)))
    assert (verified.task, verified.task_id) == (task, task_id)
    assert verified.task_hash == task_hash_of(task)


_SIGNED = _job({"protocol": "results-only", "q": "SELECT 1", "n": [1, 2]}, "a" * 32)


@PROPERTY
@given(st.integers(min_value=0, max_value=len(_SIGNED.request) - 1), st.integers(1, 255))
def test_flipping_any_byte_of_a_job_request_is_refused(index: int, mask: int) -> None:
    """A job request with any one byte changed is refused: malformed, or a bad signature."""
    data = bytearray(_SIGNED.request)
    data[index] ^= mask
    payload = encode_payload(_SIGNED).replace(_SIGNED.request, bytes(data))
    with pytest.raises((PayloadError, InvalidSignatureError)):
        _receive(payload)
