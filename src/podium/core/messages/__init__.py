"""The relay's wire messages: envelopes, control frames, payload records and their framing.

A message between a modeller and a pod is an :class:`Envelope` (routing the hub can read)
around a sealed body (which it cannot). Frames are msgpack maps, encoded by
:func:`encode_frame` / :func:`encode_control` and decoded strictly by
:func:`decode_frame`, :func:`decode_client_frame` (the hub) and :func:`decode_hub_frame`
(clients), which raise :class:`FrameError` with the WebSocket :class:`CloseCode` to answer.
Inside a body, after opening it, each :class:`MessageType` has a payload record
(:data:`PAYLOAD_CLASSES`; :func:`encode_payload`, :func:`decode_payload`).
:class:`JobRequest` carries a :class:`podium.core.crypto.SignedRequest` (build it with
:meth:`JobRequest.build`, check it with :meth:`JobRequest.verify`).

Mailboxes are ``pod/<owner>/<pod>`` and ``task/<task_id>/<party>`` (see :mod:`._names`).
"""

from __future__ import annotations

from podium.core.messages._envelope import Envelope
from podium.core.messages._errors import (
    CLOSE_REASONS,
    CloseCode,
    FrameError,
    MessageError,
    PayloadError,
)
from podium.core.messages._frames import (
    DEFAULT_MAX_FRAME_BYTES,
    DELIVER_OVERHEAD,
    FORMAT_VERSION,
    Ack,
    ControlFrame,
    Deliver,
    Receipt,
    Refused,
    Subscribe,
    decode_client_frame,
    decode_frame,
    decode_hub_frame,
    encode_control,
    encode_deliver,
    encode_frame,
)
from podium.core.messages._job_request import (
    MAX_REQUEST_BYTES,
    VerifiedJobRequest,
    pod_id_of,
    task_hash_of,
)
from podium.core.messages._names import (
    PodMailbox,
    TaskMailbox,
    is_valid_party,
    is_valid_task_id,
    new_task_id,
    parse_mailbox,
    pod_mailbox,
    pod_party,
    task_mailbox,
    user_party,
)
from podium.core.messages._payloads import (
    PAYLOAD_CLASSES,
    STREAMING,
    BatchesComplete,
    CurrentBatchId,
    JobReject,
    JobRequest,
    LogMessage,
    NumberOfBatches,
    Opaque,
    Payload,
    Signal,
    TaskAbort,
    TrainingComplete,
    TrainingMetrics,
    decode_payload,
    encode_payload,
)
from podium.core.messages._sealed_request import (
    job_request_aad,
    open_job_request,
    seal_job_request,
)
from podium.core.messages._types import (
    AbortReason,
    BatchesCompleteKind,
    ControlType,
    LogLevel,
    MessageType,
)
from podium.core.messages._values import MetaValue

__all__ = [
    "CLOSE_REASONS",
    "DEFAULT_MAX_FRAME_BYTES",
    "DELIVER_OVERHEAD",
    "FORMAT_VERSION",
    "MAX_REQUEST_BYTES",
    "PAYLOAD_CLASSES",
    "STREAMING",
    "AbortReason",
    "Ack",
    "BatchesComplete",
    "BatchesCompleteKind",
    "CloseCode",
    "ControlFrame",
    "ControlType",
    "CurrentBatchId",
    "Deliver",
    "Envelope",
    "FrameError",
    "JobReject",
    "JobRequest",
    "LogLevel",
    "LogMessage",
    "MessageError",
    "MessageType",
    "MetaValue",
    "NumberOfBatches",
    "Opaque",
    "Payload",
    "PayloadError",
    "PodMailbox",
    "Receipt",
    "Refused",
    "Signal",
    "Subscribe",
    "TaskAbort",
    "TaskMailbox",
    "TrainingComplete",
    "TrainingMetrics",
    "VerifiedJobRequest",
    "decode_client_frame",
    "decode_frame",
    "decode_hub_frame",
    "decode_payload",
    "encode_control",
    "encode_deliver",
    "encode_frame",
    "encode_payload",
    "is_valid_party",
    "is_valid_task_id",
    "job_request_aad",
    "new_task_id",
    "open_job_request",
    "parse_mailbox",
    "pod_id_of",
    "pod_mailbox",
    "pod_party",
    "seal_job_request",
    "task_hash_of",
    "task_mailbox",
    "user_party",
]
