"""The hub's records: plain frozen dataclasses that every store returns.

Names follow one rule (:mod:`podium.core.names`, re-exported here as ``NAME_PATTERN`` and
``is_valid_name``): lower-case letters, digits, ``-`` and ``_``, 1 to 63 characters,
starting with a letter or digit; a pod's identifier is ``owner/name``. Times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from podium.core.names import NAME_PATTERN, is_valid_name

__all__ = [
    "NAME_PATTERN",
    "ApiKey",
    "AuditEvent",
    "DeviceCode",
    "DeviceCodeStatus",
    "Grant",
    "KeyPurpose",
    "LoginFailures",
    "Pod",
    "Project",
    "ProjectTask",
    "PublicKey",
    "RefreshToken",
    "UsageLimit",
    "User",
    "is_valid_name",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class User:
    """A hub account. ``password_hash`` is an argon2id PHC string, never the password."""

    name: str
    password_hash: str
    is_admin: bool = False
    created_at: datetime = field(default_factory=utcnow)
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key: only the SHA-256 of its secret is stored; the key is shown once."""

    key_id: str
    owner: str
    name: str
    secret_hash: str
    created_at: datetime = field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token, stored by the SHA-256 of its value; rotated on every use."""

    token_hash: str
    owner: str
    expires_at: datetime
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None


class DeviceCodeStatus(StrEnum):
    """Where an RFC 8628 device authorization stands."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    USED = "used"


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """An RFC 8628 device authorization: the CLI polls with the device code (stored
    hashed), the user types the short user code into the hub's web page."""

    device_code_hash: str
    user_code: str
    client_id: str
    expires_at: datetime
    interval_s: int
    status: DeviceCodeStatus = DeviceCodeStatus.PENDING
    user: str | None = None
    last_polled_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """Failed password logins for one user name since the last success."""

    username: str
    count: int
    last_failed_at: datetime
    locked_until: datetime | None = None


class KeyPurpose(StrEnum):
    """What a registered public key is for; each purpose has one algorithm."""

    SIGNING = "signing"  # Ed25519
    ENCRYPTION = "encryption"  # X25519


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A registered public key of a user (``owner="alice"``) or a pod
    (``owner="alice/census"``). ``public_key`` is the raw 32 bytes, base64url without
    padding; ``key_id`` is derived from them, so the same key always has the same id."""

    key_id: str
    owner: str
    purpose: KeyPurpose
    public_key: str
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """A registered pod. ``number_of_records`` is None when the pod hides it."""

    owner: str
    name: str
    display_name: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    schema_hash: str = ""
    number_of_records: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    last_heartbeat_at: datetime | None = None
    archived: bool = False

    @property
    def pod_id(self) -> str:
        """The pod's identifier, ``owner/name``."""
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class Grant:
    """A role on a pod given to a user."""

    pod_id: str
    user: str
    role: str
    granted_by: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class UsageLimit:
    """How many records a user may run a model's inference on, on one pod.
    ``model`` is a model name or ``*`` for every model."""

    pod_id: str
    user: str
    model: str
    max_inferences: int
    set_by: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Project:
    """A project groups pods, members and approved task definitions."""

    name: str
    owner: str
    display_name: str
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ProjectTask:
    """A task definition approved in a project, by the hash of its canonical form."""

    project: str
    task_hash: str
    description: str
    approved_by: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit log: access decisions and every change to access."""

    event_id: int
    at: datetime
    actor: str
    action: str
    pod_id: str | None = None
    subject: str | None = None
    outcome: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
