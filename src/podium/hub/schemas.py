"""The hub API's request and response bodies (the OpenAPI document is built from them).

The client (:mod:`podium.hub.client`) parses answers into the same models, so the two
cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "MAX_COUNT",
    "MAX_SCHEMA_DEPTH",
    "NO_NUL",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "AuditEventOut",
    "AuditPage",
    "DecisionIn",
    "DecisionOut",
    "DeviceAuthorizationOut",
    "GrantChange",
    "GrantIn",
    "GrantOut",
    "Health",
    "HeartbeatOut",
    "LimitIn",
    "LimitOut",
    "PodIn",
    "PodList",
    "PodOut",
    "Problem",
    "ProjectDetail",
    "ProjectIn",
    "ProjectOut",
    "ProjectTaskIn",
    "ProjectTaskOut",
    "PublicKeyIn",
    "PublicKeyOut",
    "RolesOut",
    "TokenOut",
    "UserCreate",
    "UserOut",
]

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["alice"])]
PodId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_-]{0,62}$",
        examples=["alice/census-income"],
    ),
]
#: Free text may hold anything but NUL, which PostgreSQL's text columns refuse.
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[str, Field(max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, Field(max_length=10_000, pattern=NO_NUL)]
#: The largest count a store keeps (a signed 64-bit column).
MAX_COUNT = 2**63 - 1
#: How deeply a pod's schema JSON may nest. Real schemas are a few levels deep (tables,
#: columns, values); a far deeper one cannot be serialised back (pydantic stops at its
#: own depth limit), so it would break every answer that shows the pod.
MAX_SCHEMA_DEPTH = 32


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if its objects and arrays nest at most :data:`MAX_SCHEMA_DEPTH` deep."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_SCHEMA_DEPTH:
            raise ValueError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error (RFC 9457 problem document); the OAuth fields on the token endpoint."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    error: str | None = None
    error_description: str | None = None


class Health(BaseModel):
    """``GET /api/v1/health``."""

    status: Literal["ok"]
    version: str


class TokenOut(BaseModel):
    """A successful login (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int
    refresh_token: str
    username: str


class DeviceAuthorizationOut(BaseModel):
    """RFC 8628 section 3.2."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class UserCreate(_Body):
    """An admin creates an account."""

    name: Name
    password: Annotated[str, Field(min_length=8, max_length=1024)]
    is_admin: bool = False


class UserOut(BaseModel):
    """A user, without any secret."""

    name: str
    is_admin: bool
    created_at: datetime


class ApiKeyCreate(_Body):
    """A name to recognise the key by."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]


class ApiKeyOut(BaseModel):
    """An API key, without the key."""

    key_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new API key: ``key`` is shown this once and never again."""

    key: str


class PublicKeyIn(_Body):
    """Register a public key of yourself (``owner`` = your name) or of your pod."""

    owner: Annotated[
        str,
        Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}(/[a-z0-9][a-z0-9_-]{0,62})?$"),
    ]
    purpose: Literal["signing", "encryption"]
    public_key: Annotated[
        str, Field(min_length=40, max_length=64, description="raw 32 bytes, base64url")
    ]


class PublicKeyOut(BaseModel):
    """A registered key; ``algorithm`` is Ed25519 for signing, X25519 for encryption."""

    key_id: str
    owner: str
    purpose: Literal["signing", "encryption"]
    algorithm: Literal["Ed25519", "X25519"]
    public_key: str
    created_at: datetime
    revoked_at: datetime | None


class PodIn(_Body):
    """Register or update a pod (``PUT /api/v1/pods/{owner}/{name}``)."""

    display_name: ShortText = ""
    description: LongText = ""
    schema_: Annotated[dict[str, Any], Field(alias="schema"), AfterValidator(_shallow)] = Field(
        default_factory=dict
    )
    schema_hash: Annotated[str, Field(max_length=128, pattern=NO_NUL)] = ""
    number_of_records: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    signing_key: Annotated[str | None, Field(max_length=64)] = None
    encryption_key: Annotated[str | None, Field(max_length=64)] = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PodOut(BaseModel):
    """A pod as the registry shows it. ``status`` is ``online`` when a heartbeat arrived
    within the last three intervals."""

    pod_id: str
    owner: str
    name: str
    display_name: str
    description: str
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    schema_hash: str
    number_of_records: int | None
    status: Literal["online", "offline", "archived"]
    last_heartbeat_at: datetime | None
    created_at: datetime
    updated_at: datetime
    keys: list[PublicKeyOut] = Field(default_factory=list)

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class PodList(BaseModel):
    """A page of pods."""

    pods: list[PodOut]


class HeartbeatOut(BaseModel):
    """A heartbeat's answer: when to send the next one."""

    status: Literal["online"]
    next_heartbeat_s: float


class GrantIn(_Body):
    """Give a role, or a preset's roles, to a user."""

    user: Name
    role: Annotated[str, Field(max_length=50, examples=["sql", "general-modeller"])]


class GrantOut(BaseModel):
    """A role held on a pod."""

    pod_id: str
    user: str
    role: str
    granted_by: str
    created_at: datetime


class GrantChange(BaseModel):
    """Which roles a grant or revoke changed (empty: nothing changed)."""

    pod_id: str
    user: str
    changed: list[str]


class LimitIn(_Body):
    """Cap a user's model inference on a pod (``model="*"``: every model)."""

    model: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)] = "*"
    max_inferences: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class LimitOut(BaseModel):
    """A usage limit."""

    pod_id: str
    user: str
    model: str
    max_inferences: int
    set_by: str
    created_at: datetime


class RolesOut(BaseModel):
    """The roles and presets the access manager knows."""

    roles: dict[str, str]
    presets: dict[str, list[str]]


class ProjectIn(_Body):
    """Create a project."""

    name: Name
    display_name: ShortText = ""
    description: LongText = ""


class ProjectOut(BaseModel):
    """A project."""

    name: str
    owner: str
    display_name: str
    description: str
    created_at: datetime


class ProjectTaskIn(_Body):
    """Approve a task definition by the hash of its canonical form."""

    task_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16,128}$")]
    description: LongText = ""


class ProjectTaskOut(BaseModel):
    """An approved task definition."""

    task_hash: str
    description: str
    approved_by: str
    created_at: datetime


class ProjectDetail(ProjectOut):
    """A project with its members, pods and approved tasks."""

    members: list[str]
    pods: list[str]
    tasks: list[ProjectTaskOut]


class DecisionIn(_Body):
    """A pod asks whether a modeller may run a task on it."""

    modeller: Name
    pod: PodId
    protocol: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
    algorithms: Annotated[
        list[Annotated[str, Field(max_length=100, pattern=NO_NUL)]], Field(max_length=50)
    ]
    task_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16,128}$")]
    project: Name | None = None


class DecisionOut(BaseModel):
    """ACCEPT, or REFUSE with one reason code and a message; the modeller's limits."""

    decision: Literal["ACCEPT", "REFUSE"]
    reason: str | None
    message: str
    roles_required: list[str]
    roles_held: list[str]
    limits: list[LimitOut]
    via: str


class AuditEventOut(BaseModel):
    """One audit log entry."""

    event_id: int
    at: datetime
    actor: str
    action: str
    pod_id: str | None
    subject: str | None
    outcome: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """Audit events, newest first; pass ``next_before`` as ``before`` for older ones."""

    events: list[AuditEventOut]
    next_before: int | None
