"""The pod DB: an interface with an in-memory twin and a SQLite version."""

from podium.pod.store.base import (
    AlreadyExistsError,
    AuditEvent,
    BudgetSpend,
    FailedFile,
    FileVersion,
    NewAuditEvent,
    PodStore,
    PodStoreError,
    ProcessedFile,
    SchemaVersionError,
    TaskDefinition,
    TaskRun,
    TaskRunStatus,
)
from podium.pod.store.memory import InMemoryPodStore
from podium.pod.store.nonces import DEFAULT_NONCE_RETENTION, StoreNonceRegistry
from podium.pod.store.sql import SqlitePodStore, open_pod_store

__all__ = [
    "DEFAULT_NONCE_RETENTION",
    "AlreadyExistsError",
    "AuditEvent",
    "BudgetSpend",
    "FailedFile",
    "FileVersion",
    "InMemoryPodStore",
    "NewAuditEvent",
    "PodStore",
    "PodStoreError",
    "ProcessedFile",
    "SchemaVersionError",
    "SqlitePodStore",
    "StoreNonceRegistry",
    "TaskDefinition",
    "TaskRun",
    "TaskRunStatus",
    "open_pod_store",
]
