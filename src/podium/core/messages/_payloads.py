"""Payload records: the plaintext inside a sealed body, one record class per message type.

Each record is a frozen dataclass that checks its fields when built, and travels as a
msgpack map of its field names (:func:`encode_payload`, :func:`decode_payload`), decoded
as strictly as a frame. Two kinds are special: :class:`Opaque` is the bytes themselves
(weights, results, shares: their own formats, such as safetensors or Arrow, decide the
layout) and :class:`Signal` is an empty map (a message whose type says everything).
:class:`JobRequest` (in :mod:`._job_request`) carries a signed request from
:mod:`podium.core.crypto`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar, cast

from podium.core.messages._base import Payload
from podium.core.messages._errors import MessageError, PayloadError
from podium.core.messages._job_request import JobRequest
from podium.core.messages._types import AbortReason, BatchesCompleteKind, LogLevel, MessageType
from podium.core.messages._values import (
    INT64_MAX,
    check_bytes,
    check_float,
    check_int,
    check_str,
)
from podium.core.messages._wire import Limits, Malformed, pack, require_keys, unpack

__all__ = [
    "PAYLOAD_CLASSES",
    "STREAMING",
    "BatchesComplete",
    "CurrentBatchId",
    "JobReject",
    "JobRequest",
    "LogMessage",
    "NumberOfBatches",
    "Opaque",
    "Payload",
    "Signal",
    "TaskAbort",
    "TrainingComplete",
    "TrainingMetrics",
    "decode_payload",
    "encode_payload",
]

#: ``NumberOfBatches.n`` of a streaming run: batches are counted as they come.
STREAMING = -1
MAX_TEXT = 4096
MAX_LOG_TEXT = 65536
MAX_METRICS = 1024

_E = TypeVar("_E", bound=StrEnum)


def _enum(cls: type[_E], value: object, what: str) -> _E:
    if isinstance(value, cls):
        return value
    if type(value) is str and value in cls.__members__:
        return cls(value)
    raise MessageError(f"{what} must be one of {', '.join(cls)}")


@dataclass(frozen=True, slots=True)
class Signal(Payload):
    """No content: the message type says it all (``JOB_ACCEPT``, ``TASK_START``, ...)."""


@dataclass(frozen=True, slots=True)
class Opaque(Payload):
    """Bytes in a format of their own (``MODEL_PARAMETERS``, ``EVALUATION_RESULTS``, ...)."""

    data: bytes

    def __post_init__(self) -> None:
        check_bytes(self.data, "data")


@dataclass(frozen=True, slots=True)
class JobReject(Payload):
    """A pod's refusal of a job request, with a reason for the modeller."""

    reason: str

    def __post_init__(self) -> None:
        check_str(self.reason, "reason", max_chars=MAX_TEXT)


@dataclass(frozen=True, slots=True)
class NumberOfBatches(Payload):
    """How many batches the worker will run: 1 or more, or :data:`STREAMING` (-1)."""

    n: int

    def __post_init__(self) -> None:
        if check_int(self.n, "n", low=STREAMING) == 0:
            raise MessageError("n must be at least 1, or -1 for streaming batches")


@dataclass(frozen=True, slots=True)
class CurrentBatchId(Payload):
    """The batch the worker is about to run (from 0)."""

    batch: int

    def __post_init__(self) -> None:
        check_int(self.batch, "batch", low=0, high=INT64_MAX)


@dataclass(frozen=True, slots=True)
class TrainingMetrics(Payload):
    """Named metrics of a training round (finite numbers; at most 1024; kept read-only)."""

    metrics: Mapping[str, float]

    def __post_init__(self) -> None:
        if not isinstance(self.metrics, Mapping) or len(self.metrics) > MAX_METRICS:
            raise MessageError(f"metrics must be a mapping of at most {MAX_METRICS} entries")
        checked = {
            check_str(name, "metric name", max_chars=256): check_float(value, f"metric {name!r}")
            for name, value in self.metrics.items()
        }
        object.__setattr__(self, "metrics", MappingProxyType(checked))


@dataclass(frozen=True, slots=True)
class TrainingComplete(Payload):
    """Whether training is complete (the modeller's early-stopping verdict)."""

    complete: bool

    def __post_init__(self) -> None:
        if type(self.complete) is not bool:
            raise MessageError("complete must be a boolean")


@dataclass(frozen=True, slots=True)
class BatchesComplete(Payload):
    """The worker finished its batches only, or the whole task (after the final step)."""

    kind: BatchesCompleteKind

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _enum(BatchesCompleteKind, self.kind, "kind"))


@dataclass(frozen=True, slots=True)
class TaskAbort(Payload):
    """A worker ended the task early: why, with a detail for the modeller."""

    reason: AbortReason
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", _enum(AbortReason, self.reason, "reason"))
        check_str(self.detail, "detail", max_chars=MAX_TEXT)


@dataclass(frozen=True, slots=True)
class LogMessage(Payload):
    """A log line a worker forwards to the modeller."""

    level: LogLevel
    message: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", _enum(LogLevel, self.level, "level"))
        check_str(self.message, "message", max_chars=MAX_LOG_TEXT)


_OPAQUE = (
    MessageType.ALGORITHM_EXCHANGE,
    MessageType.MODEL_PARAMETERS,
    MessageType.TRAINING_UPDATE,
    MessageType.EVALUATION_RESULTS,
    MessageType.SECURE_SHARE,
)
_SIGNALS = (
    MessageType.JOB_ACCEPT,
    MessageType.PREPARING_DATA,
    MessageType.CONFIGURING_TASK,
    MessageType.PREPARING_DATA_BATCHES,
    MessageType.TASK_START,
    MessageType.TASK_COMPLETE,
    MessageType.TASK_CANCEL,
    MessageType.ONLINE_CHECK,
    MessageType.ONLINE_RESPONSE,
)

#: The record class of each message type's plaintext.
PAYLOAD_CLASSES: Mapping[MessageType, type[Payload]] = MappingProxyType(
    {
        **dict.fromkeys(_OPAQUE, Opaque),
        **dict.fromkeys(_SIGNALS, Signal),
        MessageType.JOB_REQUEST: JobRequest,
        MessageType.JOB_REJECT: JobReject,
        MessageType.NUMBER_OF_BATCHES: NumberOfBatches,
        MessageType.CURRENT_BATCH_ID: CurrentBatchId,
        MessageType.TRAINING_METRICS: TrainingMetrics,
        MessageType.TRAINING_COMPLETE: TrainingComplete,
        MessageType.BATCHES_COMPLETE: BatchesComplete,
        MessageType.TASK_ABORT: TaskAbort,
        MessageType.LOG_MESSAGE: LogMessage,
    }
)

_LIMITS = Limits(
    max_str_len=1 << 20, max_bin_len=1 << 30, max_array_len=100_000, max_map_len=10_000
)


def _field_names(cls: type[Payload]) -> frozenset[str]:
    return frozenset(item.name for item in dataclasses.fields(cast(Any, cls)) if item.init)


_KEYS = {cls: _field_names(cls) for cls in set(PAYLOAD_CLASSES.values())}


def _wire_value(value: object) -> object:
    return dict(value) if isinstance(value, MappingProxyType) else value


def encode_payload(record: Payload) -> bytes:
    """The plaintext bytes of a record (to be sealed into an envelope's body)."""
    if isinstance(record, Opaque):
        return record.data
    if not isinstance(record, tuple(_KEYS)):
        raise MessageError(f"{type(record).__name__} is not a payload record")
    fields = {name: _wire_value(getattr(record, name)) for name in _KEYS[type(record)]}
    return pack(fields)


def decode_payload(message_type: MessageType, data: bytes) -> Payload:
    """The record of ``message_type`` in the plaintext ``data``.

    Raises:
        PayloadError: ``data`` is not that record's msgpack map, or a field is invalid.
    """
    cls = PAYLOAD_CLASSES.get(message_type)
    if cls is None:
        raise PayloadError(f"{message_type!r} is not a message type")
    if type(data) is not bytes:
        raise PayloadError("a payload must be bytes")
    if cls is Opaque:
        return Opaque(data)
    try:
        fields = require_keys(unpack(data, _LIMITS), _KEYS[cls], f"a {message_type} payload")
        return cls(**cast(dict[str, Any], fields))
    except Malformed as error:
        raise PayloadError(f"{message_type} payload: {error.reason}") from None
    except PayloadError:
        raise
    except MessageError as error:
        raise PayloadError(f"{message_type} payload: {error}") from None
