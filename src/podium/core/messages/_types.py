"""The enumerations of the wire: message types, control types, abort reasons."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AbortReason",
    "BatchesCompleteKind",
    "ControlType",
    "LogLevel",
    "MessageType",
]


class MessageType(StrEnum):
    """Application messages between a modeller and its pods (names follow Bitfount's)."""

    JOB_REQUEST = "JOB_REQUEST"
    JOB_ACCEPT = "JOB_ACCEPT"
    JOB_REJECT = "JOB_REJECT"
    PREPARING_DATA = "PREPARING_DATA"
    CONFIGURING_TASK = "CONFIGURING_TASK"
    PREPARING_DATA_BATCHES = "PREPARING_DATA_BATCHES"
    NUMBER_OF_BATCHES = "NUMBER_OF_BATCHES"
    CURRENT_BATCH_ID = "CURRENT_BATCH_ID"
    TASK_START = "TASK_START"
    ALGORITHM_EXCHANGE = "ALGORITHM_EXCHANGE"
    MODEL_PARAMETERS = "MODEL_PARAMETERS"
    TRAINING_UPDATE = "TRAINING_UPDATE"
    TRAINING_METRICS = "TRAINING_METRICS"
    TRAINING_COMPLETE = "TRAINING_COMPLETE"
    EVALUATION_RESULTS = "EVALUATION_RESULTS"
    SECURE_SHARE = "SECURE_SHARE"
    BATCHES_COMPLETE = "BATCHES_COMPLETE"
    TASK_COMPLETE = "TASK_COMPLETE"
    TASK_ABORT = "TASK_ABORT"
    TASK_CANCEL = "TASK_CANCEL"
    ONLINE_CHECK = "ONLINE_CHECK"
    ONLINE_RESPONSE = "ONLINE_RESPONSE"
    LOG_MESSAGE = "LOG_MESSAGE"


class ControlType(StrEnum):
    """Frames between a client and the relay itself (never relayed to a peer).

    Client to hub: ``SUBSCRIBE`` (start delivery from mailboxes), ``ACK`` (delivered
    messages handled: the hub may forget them). Hub to client: ``DELIVER`` (a message
    from a mailbox, with the hub's id to acknowledge), ``RECEIPT`` (a sent message is
    stored durably), ``REFUSED`` (a sent message was not accepted, with a close code as
    the reason; the connection stays open).
    """

    SUBSCRIBE = "SUBSCRIBE"
    ACK = "ACK"
    DELIVER = "DELIVER"
    RECEIPT = "RECEIPT"
    REFUSED = "REFUSED"


class AbortReason(StrEnum):
    """Why a worker ended a task early (the reason of ``TASK_ABORT``)."""

    WORKER_ERROR = "WORKER_ERROR"
    NO_NEW_DATA = "NO_NEW_DATA"
    MODELLER_TIMEOUT = "MODELLER_TIMEOUT"
    NO_DATA = "NO_DATA"
    LIMITS_EXCEEDED = "LIMITS_EXCEEDED"
    DATA_NOT_AVAILABLE = "DATA_NOT_AVAILABLE"
    CANCELLED = "CANCELLED"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    STALE_REQUEST = "STALE_REQUEST"


class BatchesCompleteKind(StrEnum):
    """What ``BATCHES_COMPLETE`` announces: the batches only, or the whole task."""

    BATCHES_ONLY = "BATCHES_ONLY"
    TASK_COMPLETE = "TASK_COMPLETE"


class LogLevel(StrEnum):
    """Level of a ``LOG_MESSAGE`` (the names of :mod:`logging`'s levels)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"
