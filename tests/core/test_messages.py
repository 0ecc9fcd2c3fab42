"""The relay's wire messages: names, envelopes, strict framing, control frames, payloads."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from podium.core.crypto import SessionKey, SignedRequest, SigningKeyPair
from podium.core.errors import PodiumError
from podium.core.messages import (
    CLOSE_REASONS,
    DELIVER_OVERHEAD,
    MAX_REQUEST_BYTES,
    PAYLOAD_CLASSES,
    STREAMING,
    AbortReason,
    Ack,
    BatchesComplete,
    BatchesCompleteKind,
    CloseCode,
    ControlType,
    CurrentBatchId,
    Deliver,
    Envelope,
    FrameError,
    JobReject,
    JobRequest,
    LogLevel,
    LogMessage,
    MessageError,
    MessageType,
    NumberOfBatches,
    Opaque,
    Payload,
    PayloadError,
    PodMailbox,
    Receipt,
    Refused,
    Signal,
    Subscribe,
    TaskAbort,
    TaskMailbox,
    TrainingComplete,
    TrainingMetrics,
    decode_client_frame,
    decode_frame,
    decode_hub_frame,
    decode_payload,
    encode_control,
    encode_deliver,
    encode_frame,
    encode_payload,
    is_valid_task_id,
    new_task_id,
    parse_mailbox,
    pod_mailbox,
    pod_party,
    task_mailbox,
    user_party,
)

TASK = "0123456789abcdef0123456789abcdef"
LIMIT = 1 << 16

DESIGN_TYPES = [
    "JOB_REQUEST", "JOB_ACCEPT", "JOB_REJECT", "PREPARING_DATA", "CONFIGURING_TASK",
    "PREPARING_DATA_BATCHES", "NUMBER_OF_BATCHES", "CURRENT_BATCH_ID", "TASK_START",
    "ALGORITHM_EXCHANGE", "MODEL_PARAMETERS", "TRAINING_UPDATE", "TRAINING_METRICS",
    "TRAINING_COMPLETE", "EVALUATION_RESULTS", "SECURE_SHARE", "BATCHES_COMPLETE",
    "TASK_COMPLETE", "TASK_ABORT", "TASK_CANCEL", "ONLINE_CHECK", "ONLINE_RESPONSE",
    "LOG_MESSAGE",
]  # fmt: skip


def _envelope(**changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "type": MessageType.MODEL_PARAMETERS,
        "task_id": TASK,
        "sender": "acme.census",
        "recipient": task_mailbox(TASK, "alice"),
        "seq": 3,
        "sent_at": 1_700_000_000.25,
        "meta": {"chunk": 1, "last": False, "note": "x", "ratio": 0.5, "none": None},
        "body": b"\x00sealed\xff",
    }
    fields.update(changes)
    return Envelope(**fields)


def _wire(**changes: object) -> dict[str, object]:
    """The wire map of a valid envelope with some keys changed (``...`` removes one)."""
    value = msgpack.unpackb(encode_frame(_envelope()))
    assert isinstance(value, dict)
    for key, item in changes.items():
        if item is ...:
            del value[key]
        else:
            value[key] = item
    return value


def _refusal(data: bytes, decode: Callable[..., object] = decode_frame) -> FrameError:
    with pytest.raises(FrameError) as caught:
        decode(data, max_frame_bytes=LIMIT)
    return caught.value


# --- names ----------------------------------------------------------------------------


def test_message_types_are_exactly_the_design_names() -> None:
    """MessageType lists DESIGN.md section 4's names, in order, with values equal to names."""
    assert [member.name for member in MessageType] == DESIGN_TYPES
    assert all(member.value == member.name for member in MessageType)


def test_abort_reasons_and_batches_complete_kinds() -> None:
    """The abort reasons and BATCHES_COMPLETE kinds are the documented ones."""
    assert {r.value for r in AbortReason} == {
        "WORKER_ERROR", "NO_NEW_DATA", "MODELLER_TIMEOUT", "NO_DATA", "LIMITS_EXCEEDED",
        "DATA_NOT_AVAILABLE", "CANCELLED", "INVALID_SIGNATURE", "STALE_REQUEST",
    }  # fmt: skip
    assert [k.value for k in BatchesCompleteKind] == ["BATCHES_ONLY", "TASK_COMPLETE"]


def test_control_types_never_collide_with_message_types() -> None:
    """No control frame type shares a name with an application message type."""
    assert not {c.value for c in ControlType} & {m.value for m in MessageType}


def test_every_close_code_has_a_short_public_reason_in_the_app_range() -> None:
    """Each CloseCode is in 4000-4999 and has a reason that fits a WebSocket close frame."""
    assert set(CLOSE_REASONS) == set(CloseCode)
    for code, reason in CLOSE_REASONS.items():
        assert 4000 <= code <= 4999
        assert 0 < len(reason.encode()) <= 123


def test_frame_error_is_a_podium_error_with_a_public_reason() -> None:
    """A FrameError carries its code and the catalogue reason; the detail stays in str()."""
    error = FrameError(CloseCode.FRAME_TOO_LARGE, "9 > 8 bytes")
    assert isinstance(error, PodiumError)
    assert error.reason == "frame too large"
    assert "9 > 8 bytes" in str(error)
    assert "4413" in str(error)


def test_mailbox_names_round_trip_through_parse() -> None:
    """pod_mailbox and task_mailbox build names that parse_mailbox reads back."""
    assert parse_mailbox(pod_mailbox("acme", "census")) == PodMailbox("acme", "census")
    party = pod_party("acme", "census-2")
    assert party == "acme.census-2"
    assert parse_mailbox(task_mailbox(TASK, party)) == TaskMailbox(TASK, party)
    assert str(parse_mailbox(task_mailbox(TASK, user_party("alice")))) == f"task/{TASK}/alice"


@pytest.mark.parametrize(
    "name",
    [
        "pod/acme",
        "pod/Acme/census",
        "pod/acme/census/x",
        "pod/acme.x/census",
        "pod/acme/census\n",
        "pod/acme/" + "a" * 64,
        "pod/_acme/census",
        f"task/{TASK.upper()}/alice",
        f"task/{TASK[:-1]}/alice",
        f"task/{TASK}/alice.",
        f"task/{TASK}/a.b.c",
        f"task/{TASK}/",
        "blob/acme/census",
        "",
        b"pod/acme/census",
        None,
    ],
)
def test_parse_mailbox_refuses_malformed_names(name: object) -> None:
    """Anything but pod/<owner>/<pod> or task/<task_id>/<party> is a MessageError."""
    with pytest.raises(MessageError):
        parse_mailbox(name)


def test_builders_refuse_bad_parts() -> None:
    """The mailbox and party builders validate each part."""
    with pytest.raises(MessageError):
        pod_mailbox("acme", "Census")
    with pytest.raises(MessageError):
        task_mailbox("not-a-task", "alice")
    with pytest.raises(MessageError):
        task_mailbox(TASK, "Alice")
    with pytest.raises(MessageError):
        pod_party("acme.x", "census")


def test_new_task_ids_are_valid_and_distinct() -> None:
    """new_task_id gives 32 lowercase hex digits, different each time."""
    ids = {new_task_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_valid_task_id(task_id) for task_id in ids)


# --- envelopes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "NOPE"},
        {"type": ControlType.ACK},
        {"task_id": TASK.upper()},
        {"task_id": 5},
        {"sender": "Alice"},
        {"sender": "a.b.c"},
        {"recipient": "pod/acme"},
        {"recipient": task_mailbox("f" * 32, "alice")},
        {"seq": -1},
        {"seq": 2**63},
        {"seq": True},
        {"seq": 1.0},
        {"sent_at": math.nan},
        {"sent_at": math.inf},
        {"sent_at": -1.0},
        {"sent_at": "now"},
        {"meta": {f"k{i}": i for i in range(33)}},
        {"meta": {"bad key": 1}},
        {"meta": {"": 1}},
        {"meta": {"k" * 65: 1}},
        {"meta": {"k": [1]}},
        {"meta": {"k": "x" * 257}},
        {"meta": {"k": 2**63}},
        {"meta": {"k": math.nan}},
        {"meta": {"k": "\ud800"}},
        {"meta": [("k", 1)]},
        {"body": "text"},
        {"body": bytearray(b"x")},
    ],
)
def test_envelope_refuses_invalid_fields(changes: dict[str, Any]) -> None:
    """Building an Envelope with a field that breaks the rules raises MessageError."""
    with pytest.raises(MessageError):
        _envelope(**changes)


def test_envelope_normalises_and_freezes() -> None:
    """A str type becomes the enum, an int time a float, and meta a read-only copy."""
    meta = {"k": 1}
    envelope = _envelope(type="TASK_ABORT", sent_at=5, meta=meta)
    meta["k"] = 2
    assert envelope.type is MessageType.TASK_ABORT
    assert envelope.sent_at == 5.0
    assert type(envelope.sent_at) is float
    assert envelope.meta == {"k": 1}
    with pytest.raises(TypeError):
        envelope.meta["k"] = 3  # type: ignore[index]


def test_a_job_request_goes_to_a_pod_mailbox_with_any_task_id() -> None:
    """A pod mailbox does not pin the task id; a task mailbox must name the envelope's."""
    envelope = _envelope(type=MessageType.JOB_REQUEST, recipient=pod_mailbox("acme", "census"))
    assert decode_frame(encode_frame(envelope), max_frame_bytes=LIMIT) == envelope


# --- frames ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MessageType))
def test_every_message_type_round_trips(kind: MessageType) -> None:
    """An envelope of each type decodes from its frame to an equal envelope."""
    envelope = _envelope(type=kind)
    decoded = decode_frame(encode_frame(envelope), max_frame_bytes=LIMIT)
    assert decoded == envelope
    assert decoded.type is kind


def test_frame_is_a_versioned_map() -> None:
    """A frame is a msgpack map carrying format version 1."""
    value = msgpack.unpackb(encode_frame(_envelope()))
    assert value["v"] == 1
    assert set(value) == {"v", "type", "task", "from", "to", "seq", "at", "meta", "body"}


def test_a_bytearray_frame_is_accepted() -> None:
    """A frame may arrive as a bytearray."""
    envelope = _envelope()
    assert decode_frame(bytearray(encode_frame(envelope)), max_frame_bytes=LIMIT) == envelope  # type: ignore[arg-type]


def _ext_meta() -> bytes:
    packed: bytes = msgpack.packb(_wire(meta={"k": msgpack.ExtType(5, b"x")}))
    return packed


def _timestamp_meta() -> bytes:
    packed: bytes = msgpack.packb(_wire(meta={"k": msgpack.Timestamp(1, 0)}))
    return packed


REFUSALS: dict[str, tuple[Callable[[], object], CloseCode]] = {
    "empty": (lambda: b"", CloseCode.MALFORMED_FRAME),
    "not msgpack": (lambda: b"\xc1", CloseCode.MALFORMED_FRAME),
    "truncated": (lambda: encode_frame(_envelope())[:-1], CloseCode.MALFORMED_FRAME),
    "trailing bytes": (lambda: encode_frame(_envelope()) + b"\xc0", CloseCode.MALFORMED_FRAME),
    "text frame": (lambda: "hello", CloseCode.MALFORMED_FRAME),
    "array": (lambda: msgpack.packb(list(_wire().values())), CloseCode.MALFORMED_FRAME),
    "scalar": (lambda: msgpack.packb(1), CloseCode.MALFORMED_FRAME),
    "missing key": (lambda: msgpack.packb(_wire(meta=...)), CloseCode.MALFORMED_FRAME),
    "unknown key": (lambda: msgpack.packb(_wire(extra=1)), CloseCode.MALFORMED_FRAME),
    "int map key": (lambda: msgpack.packb({1: 2}), CloseCode.MALFORMED_FRAME),
    "missing version": (lambda: msgpack.packb(_wire(v=...)), CloseCode.MALFORMED_FRAME),
    "version as str": (lambda: msgpack.packb(_wire(v="1")), CloseCode.MALFORMED_FRAME),
    "version 2": (lambda: msgpack.packb(_wire(v=2)), CloseCode.UNSUPPORTED_VERSION),
    "type not str": (lambda: msgpack.packb(_wire(type=1)), CloseCode.MALFORMED_FRAME),
    "unknown type": (lambda: msgpack.packb(_wire(type="HELLO")), CloseCode.UNKNOWN_MESSAGE_TYPE),
    "control type": (lambda: msgpack.packb(_wire(type="ACK")), CloseCode.UNKNOWN_MESSAGE_TYPE),
    "lowercase type": (
        lambda: msgpack.packb(_wire(type="job_request")),
        CloseCode.UNKNOWN_MESSAGE_TYPE,
    ),
    "bad task id": (lambda: msgpack.packb(_wire(task="x" * 32)), CloseCode.MALFORMED_FRAME),
    "bad sender": (lambda: msgpack.packb(_wire(**{"from": "A"})), CloseCode.MALFORMED_FRAME),
    "bad mailbox": (lambda: msgpack.packb(_wire(to="pod/x")), CloseCode.MALFORMED_FRAME),
    "other task's mailbox": (
        lambda: msgpack.packb(_wire(to=task_mailbox("e" * 32, "alice"))),
        CloseCode.MALFORMED_FRAME,
    ),
    "seq negative": (lambda: msgpack.packb(_wire(seq=-1)), CloseCode.MALFORMED_FRAME),
    "seq 2**63": (lambda: msgpack.packb(_wire(seq=2**63)), CloseCode.MALFORMED_FRAME),
    "seq float": (lambda: msgpack.packb(_wire(seq=1.0)), CloseCode.MALFORMED_FRAME),
    "seq bool": (lambda: msgpack.packb(_wire(seq=True)), CloseCode.MALFORMED_FRAME),
    "time int": (lambda: msgpack.packb(_wire(at=5)), CloseCode.MALFORMED_FRAME),
    "time nan": (lambda: msgpack.packb(_wire(at=math.nan)), CloseCode.MALFORMED_FRAME),
    "time inf": (lambda: msgpack.packb(_wire(at=math.inf)), CloseCode.MALFORMED_FRAME),
    "meta array": (lambda: msgpack.packb(_wire(meta=[1])), CloseCode.MALFORMED_FRAME),
    "meta nested": (lambda: msgpack.packb(_wire(meta={"k": {}})), CloseCode.MALFORMED_FRAME),
    "meta bytes value": (lambda: msgpack.packb(_wire(meta={"k": b""})), CloseCode.MALFORMED_FRAME),
    "meta int out of range": (
        lambda: msgpack.packb(_wire(meta={"k": 2**64 - 1})),
        CloseCode.MALFORMED_FRAME,
    ),
    "meta string too long": (
        lambda: msgpack.packb(_wire(meta={"k": "x" * 2000})),
        CloseCode.MALFORMED_FRAME,
    ),
    "meta too many keys": (
        lambda: msgpack.packb(_wire(meta={f"k{i}": 0 for i in range(33)})),
        CloseCode.MALFORMED_FRAME,
    ),
    "body str": (lambda: msgpack.packb(_wire(body="x")), CloseCode.MALFORMED_FRAME),
    "body raw str bytes": (
        lambda: msgpack.packb(_wire(body=b"x"), use_bin_type=False),
        CloseCode.MALFORMED_FRAME,
    ),
    "invalid utf-8": (lambda: b"\x81\xa1v\xa2\xff\xfe", CloseCode.MALFORMED_FRAME),
    "extension type": (_ext_meta, CloseCode.MALFORMED_FRAME),
    "timestamp extension": (_timestamp_meta, CloseCode.MALFORMED_FRAME),
    "repeated key": (
        lambda: b"\x82" + msgpack.packb("v") + b"\x01" + msgpack.packb("v") + b"\x01",
        CloseCode.MALFORMED_FRAME,
    ),
    "long array bomb": (lambda: msgpack.packb([0] * 2000), CloseCode.MALFORMED_FRAME),
    "big map bomb": (
        lambda: msgpack.packb({str(i): 0 for i in range(100)}),
        CloseCode.MALFORMED_FRAME,
    ),
    "deep nesting": (lambda: b"\x91" * 5000 + b"\xc0", CloseCode.MALFORMED_FRAME),
    "huge declared bin": (lambda: b"\xc6\xff\xff\xff\xff", CloseCode.MALFORMED_FRAME),
    "oversize": (lambda: b"\xc1" * (LIMIT + 1), CloseCode.FRAME_TOO_LARGE),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_decode_frame_refuses_with_the_right_close_code(case: str) -> None:
    """Each malformed frame is refused with FrameError and the close code of its fault."""
    build, code = REFUSALS[case]
    assert _refusal(build()).code is code  # type: ignore[arg-type]


def test_size_is_checked_before_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame one byte over the limit is refused without reaching msgpack."""
    frame = encode_frame(_envelope())

    def explode(*args: object, **kwargs: object) -> object:
        raise AssertionError("unpacked an oversize frame")

    monkeypatch.setattr(msgpack, "unpackb", explode)
    with pytest.raises(FrameError) as caught:
        decode_frame(frame, max_frame_bytes=len(frame) - 1)
    assert caught.value.code is CloseCode.FRAME_TOO_LARGE


def test_a_frame_exactly_at_the_limit_passes() -> None:
    """A frame of exactly max_frame_bytes decodes."""
    frame = encode_frame(_envelope())
    assert decode_frame(frame, max_frame_bytes=len(frame)) == _envelope()


# --- control frames -------------------------------------------------------------------

CLIENT_CONTROLS: list[Subscribe | Ack] = [
    Subscribe((pod_mailbox("acme", "census"), task_mailbox(TASK, "acme.census"))),
    Ack((0, 7, 2**63 - 1)),
]
HUB_CONTROLS: list[Deliver | Receipt | Refused] = [
    Deliver(42, _envelope()),
    Receipt(TASK, task_mailbox(TASK, "alice"), 9),
    Refused(TASK, pod_mailbox("acme", "gone"), 0, CloseCode.UNKNOWN_MAILBOX, "no such pod"),
]


@pytest.mark.parametrize("frame", CLIENT_CONTROLS, ids=lambda f: type(f).__name__)
def test_client_control_frames_round_trip(frame: Subscribe | Ack) -> None:
    """SUBSCRIBE and ACK decode on the hub to equal frames."""
    assert decode_client_frame(encode_control(frame), max_frame_bytes=LIMIT) == frame


@pytest.mark.parametrize("frame", HUB_CONTROLS, ids=lambda f: type(f).__name__)
def test_hub_control_frames_round_trip(frame: Deliver | Receipt | Refused) -> None:
    """DELIVER, RECEIPT and REFUSED decode on a client to equal frames."""
    assert decode_hub_frame(encode_control(frame), max_frame_bytes=LIMIT) == frame


def test_the_hub_accepts_envelopes_as_client_frames() -> None:
    """decode_client_frame returns an envelope frame's envelope."""
    assert decode_client_frame(encode_frame(_envelope()), max_frame_bytes=LIMIT) == _envelope()


@pytest.mark.parametrize("frame", HUB_CONTROLS, ids=lambda f: type(f).__name__)
def test_the_hub_refuses_hub_to_client_types(frame: Deliver | Receipt | Refused) -> None:
    """A client that sends DELIVER, RECEIPT or REFUSED gets 'unexpected type'."""
    assert _refusal(encode_control(frame), decode_client_frame).code is (
        CloseCode.UNKNOWN_MESSAGE_TYPE
    )


@pytest.mark.parametrize(
    "data",
    [encode_frame(_envelope()), *(encode_control(f) for f in CLIENT_CONTROLS)],
    ids=["envelope", "SUBSCRIBE", "ACK"],
)
def test_a_client_refuses_client_to_hub_types(data: bytes) -> None:
    """A hub that sends a bare envelope, SUBSCRIBE or ACK gets 'unexpected type'."""
    assert _refusal(data, decode_hub_frame).code is CloseCode.UNKNOWN_MESSAGE_TYPE


def test_deliver_splices_the_stored_frame() -> None:
    """encode_deliver wraps stored frame bytes unchanged, within DELIVER_OVERHEAD."""
    frame = encode_frame(_envelope())
    wrapped = encode_deliver(2**63 - 1, frame)
    assert wrapped.endswith(frame)
    assert len(wrapped) - len(frame) <= DELIVER_OVERHEAD
    assert decode_hub_frame(wrapped, max_frame_bytes=len(frame)) == Deliver(2**63 - 1, _envelope())


def test_deliver_of_a_frame_at_the_limit_passes_on_the_client() -> None:
    """A client accepts a DELIVER carrying an envelope frame of exactly the frame limit."""
    frame = encode_frame(_envelope())
    wrapped = encode_deliver(1, frame)
    assert decode_hub_frame(wrapped, max_frame_bytes=len(frame)).envelope == _envelope()  # type: ignore[union-attr]
    too_long = b"\xc1" * (len(frame) + DELIVER_OVERHEAD + 1)
    assert _refusal_at(too_long, len(frame)).code is CloseCode.FRAME_TOO_LARGE


def _refusal_at(data: bytes, limit: int) -> FrameError:
    with pytest.raises(FrameError) as caught:
        decode_hub_frame(data, max_frame_bytes=limit)
    return caught.value


def test_encode_deliver_refuses_what_is_not_a_frame() -> None:
    """encode_deliver checks the delivery id and that the bytes start as a map."""
    with pytest.raises(MessageError):
        encode_deliver(1, b"")
    with pytest.raises(MessageError):
        encode_deliver(1, b"\x91\x00")
    with pytest.raises(MessageError):
        encode_deliver(-1, encode_frame(_envelope()))


def _control(kind: str, **fields: object) -> bytes:
    packed: bytes = msgpack.packb({"v": 1, "type": kind, **fields})
    return packed


_REF = {"task": TASK, "to": task_mailbox(TASK, "alice"), "seq": 1}

CONTROL_REFUSALS: dict[str, tuple[bytes, Callable[..., object], CloseCode]] = {
    "ack empty": (_control("ACK", ids=[]), decode_client_frame, CloseCode.MALFORMED_FRAME),
    "ack negative": (_control("ACK", ids=[-1]), decode_client_frame, CloseCode.MALFORMED_FRAME),
    "ack bool": (_control("ACK", ids=[True]), decode_client_frame, CloseCode.MALFORMED_FRAME),
    "ack not array": (_control("ACK", ids=5), decode_client_frame, CloseCode.MALFORMED_FRAME),
    "ack too many": (
        _control("ACK", ids=list(range(1025))),
        decode_client_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "ack extra key": (
        _control("ACK", ids=[1], more=1),
        decode_client_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "subscribe bad name": (
        _control("SUBSCRIBE", mailboxes=["pod/x"]),
        decode_client_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "subscribe empty": (
        _control("SUBSCRIBE", mailboxes=[]),
        decode_client_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "deliver bad envelope": (
        _control("DELIVER", id=1, env=_wire(seq=-1)),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "deliver of a control frame": (
        _control("DELIVER", id=1, env={"v": 1, "type": "ACK", "ids": [1]}),
        decode_hub_frame,
        CloseCode.UNKNOWN_MESSAGE_TYPE,
    ),
    "deliver env not map": (
        _control("DELIVER", id=1, env=b"x"),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "receipt bad mailbox": (
        _control("RECEIPT", **{**_REF, "to": "x"}),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "refused unknown code": (
        _control("REFUSED", **_REF, code=1000, reason="x"),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "refused float code": (
        _control("REFUSED", **_REF, code=4404.0, reason="x"),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
    "refused long reason": (
        _control("REFUSED", **_REF, code=4404, reason="é" * 100),
        decode_hub_frame,
        CloseCode.MALFORMED_FRAME,
    ),
}


@pytest.mark.parametrize("case", list(CONTROL_REFUSALS))
def test_control_frames_are_decoded_strictly(case: str) -> None:
    """A malformed control frame is refused with the close code of its fault."""
    data, decode, code = CONTROL_REFUSALS[case]
    assert _refusal(data, decode).code is code


# --- payloads -------------------------------------------------------------------------


def _job_request() -> JobRequest:
    return JobRequest.build(
        SigningKeyPair.generate(),
        modeller="alice",
        pod_id="acme/census",
        task={"protocol": {"name": "results-only"}, "algorithms": [{"name": "sql", "q": 1}]},
        session_key=SessionKey(bytes(range(32))),
        task_id=TASK,
        now=datetime(2025, 1, 2, tzinfo=UTC),
    )


SAMPLES: dict[type[Payload], Payload] = {
    JobRequest: _job_request(),
    Signal: Signal(),
    Opaque: Opaque(b"\x00weights\xff"),
    JobReject: JobReject("no grant for role train"),
    NumberOfBatches: NumberOfBatches(STREAMING),
    CurrentBatchId: CurrentBatchId(4),
    TrainingMetrics: TrainingMetrics({"loss": 0.25, "accuracy": 0.9}),
    TrainingComplete: TrainingComplete(complete=True),
    BatchesComplete: BatchesComplete(BatchesCompleteKind.BATCHES_ONLY),
    TaskAbort: TaskAbort(AbortReason.LIMITS_EXCEEDED, "3 of 3 inferences used"),
    LogMessage: LogMessage(LogLevel.WARNING, "batch 3 skipped"),
}


def test_every_message_type_has_a_payload_class() -> None:
    """PAYLOAD_CLASSES maps each MessageType to a record class with a sample here."""
    assert set(PAYLOAD_CLASSES) == set(MessageType)
    assert set(PAYLOAD_CLASSES.values()) == set(SAMPLES)


@pytest.mark.parametrize("kind", list(MessageType))
def test_every_payload_round_trips(kind: MessageType) -> None:
    """Each message type's sample record decodes from its bytes to an equal record."""
    record = SAMPLES[PAYLOAD_CLASSES[kind]]
    decoded = decode_payload(kind, encode_payload(record))
    assert decoded == record
    assert type(decoded) is type(record)


def test_opaque_payloads_are_the_bytes_themselves() -> None:
    """An Opaque record encodes to its data unchanged (no copy into a wrapper)."""
    data = b"\x93\x01\x02"
    assert encode_payload(Opaque(data)) is data
    assert decode_payload(MessageType.MODEL_PARAMETERS, data) == Opaque(data)


def test_enum_fields_decode_to_enums() -> None:
    """Enum fields come back as enum members, not plain strings."""
    decoded = decode_payload(MessageType.TASK_ABORT, encode_payload(SAMPLES[TaskAbort]))
    assert isinstance(decoded, TaskAbort)
    assert decoded.reason is AbortReason.LIMITS_EXCEEDED


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (MessageType.JOB_ACCEPT, b""),
        (MessageType.JOB_ACCEPT, b"\x81\xa1x\x01"),
        (MessageType.JOB_ACCEPT, b"\x80\x80"),
        (MessageType.NUMBER_OF_BATCHES, msgpack.packb({"n": 0})),
        (MessageType.NUMBER_OF_BATCHES, msgpack.packb({"n": -2})),
        (MessageType.NUMBER_OF_BATCHES, msgpack.packb({"n": "1"})),
        (MessageType.CURRENT_BATCH_ID, msgpack.packb({"batch": -1})),
        (MessageType.TASK_ABORT, msgpack.packb({"reason": "BORED", "detail": ""})),
        (MessageType.TASK_ABORT, msgpack.packb({"reason": "NO_DATA"})),
        (MessageType.BATCHES_COMPLETE, msgpack.packb({"kind": "ALL"})),
        (MessageType.LOG_MESSAGE, msgpack.packb({"level": "LOUD", "message": ""})),
        (MessageType.TRAINING_METRICS, msgpack.packb({"metrics": {"loss": math.nan}})),
        (MessageType.TRAINING_METRICS, msgpack.packb({"metrics": [1]})),
        (MessageType.TRAINING_COMPLETE, msgpack.packb({"complete": 1})),
        (MessageType.JOB_REJECT, msgpack.packb([1])),
        (MessageType.JOB_REJECT, msgpack.packb({"reason": msgpack.ExtType(1, b"")})),
        (MessageType.JOB_REQUEST, encode_payload(_job_request())[:-1]),
        (MessageType.JOB_REQUEST, encode_payload(_job_request()) + b"\x00"),
        (MessageType.JOB_REQUEST, msgpack.packb({"task_id": TASK, "request": b"x" * 80})),
    ],
)
def test_decode_payload_refuses_malformed_plaintext(kind: MessageType, data: bytes) -> None:
    """A plaintext that is not its type's record raises PayloadError."""
    with pytest.raises(PayloadError):
        decode_payload(kind, data)


@pytest.mark.parametrize(
    ("task_id", "signed"),
    [
        ("x", _job_request().request),
        (TASK, bytearray(_job_request().request)),
        (TASK, _job_request().request[:-1]),
        (TASK, b"s" * 64 + b"{}"),
        (TASK, b""),
        (TASK, b"s" * (MAX_REQUEST_BYTES + 1)),
    ],
)
def test_job_request_refuses_invalid_fields(task_id: str, signed: bytes) -> None:
    """A JobRequest with a bad task id or a malformed signed request raises MessageError."""
    with pytest.raises(MessageError):
        JobRequest(task_id, signed)


def test_job_request_wire_form_is_task_id_and_signed_request() -> None:
    """A JobRequest travels as exactly its task id and the signed request's bytes."""
    record = _job_request()
    fields = msgpack.unpackb(encode_payload(record))
    assert fields == {"task_id": TASK, "request": record.request}
    assert SignedRequest.from_bytes(fields["request"]).modeller == "alice"


def test_records_are_frozen() -> None:
    """Payload records and envelopes cannot be changed after they are built."""
    with pytest.raises(AttributeError):
        SAMPLES[JobReject].reason = "x"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        replace(_envelope()).seq = 1  # type: ignore[misc]
