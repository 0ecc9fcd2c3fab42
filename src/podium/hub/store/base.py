"""The hub's store: one interface, an in-memory twin and a SQLAlchemy version.

Every method is one atomic step. Methods that change who may do what (grants, limits,
projects) take the :class:`NewAuditEvent` that records the change and write it in the same
transaction, so the audit log never misses a change that happened. Methods are synchronous:
the API runs them in a worker thread (FastAPI's sync endpoints), the one edge between the
asyncio server and blocking storage.

One contract suite (``tests/hub/store/test_store_contract.py``) runs against every version.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.core.errors import ExitCode, PodiumError
from podium.hub.models import (
    ApiKey,
    AuditEvent,
    DeviceCode,
    DeviceCodeStatus,
    Grant,
    KeyPurpose,
    LoginFailures,
    Pod,
    Project,
    ProjectTask,
    PublicKey,
    RefreshToken,
    UsageLimit,
    User,
)

__all__ = ["AlreadyExistsError", "HubStore", "NewAuditEvent", "PodQuery", "StoreError"]


class StoreError(PodiumError):
    """The hub's store failed or was asked for something impossible."""

    exit_code = ExitCode.CONFIG


class AlreadyExistsError(StoreError):
    """A record with the same identity already exists."""


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    """An audit event to append; the store assigns its id."""

    at: datetime
    actor: str
    action: str
    pod_id: str | None = None
    subject: str | None = None
    outcome: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodQuery:
    """Which pods to list.

    ``visible_to`` limits the list to pods that user owns or holds a grant on (None: every
    pod, for admins). ``text`` matches the identifier, display name or description,
    case-insensitively, as plain text (never a pattern).
    """

    visible_to: str | None = None
    owner: str | None = None
    text: str | None = None
    include_archived: bool = False
    limit: int = 100
    offset: int = 0


class HubStore(ABC):
    """Users, credentials, keys, pods, access and the audit log."""

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook: the in-memory store holds nothing
        """Release connections."""

    # -- users -------------------------------------------------------------------------

    @abstractmethod
    def create_user(self, user: User) -> None:
        """Add a user; :class:`AlreadyExistsError` if the name is taken."""

    @abstractmethod
    def get_user(self, name: str) -> User | None:
        """The user called ``name``, or None."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def update_user(self, user: User) -> bool:
        """Replace a user's record (password hash, admin flag, disabled); False if absent."""

    # -- failed logins -----------------------------------------------------------------

    @abstractmethod
    def get_login_failures(self, username: str) -> LoginFailures | None:
        """Failed logins for ``username`` since its last success, or None."""

    @abstractmethod
    def put_login_failures(self, failures: LoginFailures) -> None:
        """Store the failure count of one user name (insert or replace)."""

    @abstractmethod
    def clear_login_failures(self, username: str) -> None:
        """Forget failed logins after a success."""

    # -- API keys ----------------------------------------------------------------------

    @abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Store a new API key (its hash); :class:`AlreadyExistsError` on a duplicate id."""

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKey | None:
        """The API key with this id, revoked or not, or None."""

    @abstractmethod
    def list_api_keys(self, owner: str) -> list[ApiKey]:
        """A user's API keys, oldest first, revoked ones included."""

    @abstractmethod
    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Revoke a key; False if it does not exist or was already revoked."""

    @abstractmethod
    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record when a key was last used."""

    # -- refresh tokens ----------------------------------------------------------------

    @abstractmethod
    def add_refresh_token(self, token: RefreshToken) -> None:
        """Store a refresh token (its hash)."""

    @abstractmethod
    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, or None."""

    @abstractmethod
    def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        """Revoke one token. True only for the one call that revoked it, so two
        concurrent uses of the same token cannot both succeed."""

    @abstractmethod
    def revoke_refresh_tokens_of(self, owner: str, at: datetime) -> int:
        """Revoke every live refresh token of a user; how many were revoked."""

    # -- device authorization (RFC 8628) ----------------------------------------------

    @abstractmethod
    def add_device_code(self, code: DeviceCode) -> None:
        """Store a new device authorization; :class:`AlreadyExistsError` if its user
        code is in use."""

    @abstractmethod
    def get_device_code(self, device_code_hash: str) -> DeviceCode | None:
        """The device authorization with this device-code hash, or None."""

    @abstractmethod
    def get_device_code_by_user_code(self, user_code: str) -> DeviceCode | None:
        """The device authorization with this user code, or None."""

    @abstractmethod
    def transition_device_code(
        self,
        device_code_hash: str,
        expected: DeviceCodeStatus,
        new: DeviceCodeStatus,
        *,
        user: str | None = None,
    ) -> bool:
        """Move an authorization from ``expected`` to ``new`` (setting the approving
        user when given); False if it is not in ``expected`` any more."""

    @abstractmethod
    def mark_device_code_polled(self, device_code_hash: str, at: datetime) -> None:
        """Record a poll, for RFC 8628's ``slow_down``."""

    # -- public keys -------------------------------------------------------------------

    @abstractmethod
    def add_public_key(self, key: PublicKey) -> None:
        """Register a key; :class:`AlreadyExistsError` if its id is registered."""

    @abstractmethod
    def get_public_key(self, key_id: str) -> PublicKey | None:
        """The key with this id, revoked or not, or None."""

    @abstractmethod
    def list_public_keys(
        self, owner: str, *, purpose: KeyPurpose | None = None, include_revoked: bool = False
    ) -> list[PublicKey]:
        """An owner's keys, newest first."""

    @abstractmethod
    def revoke_public_key(self, key_id: str, at: datetime) -> bool:
        """Revoke a key; False if absent or already revoked."""

    # -- pods --------------------------------------------------------------------------

    @abstractmethod
    def save_pod(self, pod: Pod) -> None:
        """Insert a pod or replace every field of an existing one."""

    @abstractmethod
    def get_pod(self, owner: str, name: str) -> Pod | None:
        """The pod ``owner/name``, archived or not, or None."""

    @abstractmethod
    def list_pods(self, query: PodQuery) -> list[Pod]:
        """Pods matching ``query``, by identifier."""

    @abstractmethod
    def record_heartbeat(self, owner: str, name: str, at: datetime) -> bool:
        """Set a pod's last heartbeat; False if there is no such live (unarchived) pod."""

    @abstractmethod
    def record_heartbeat_with_api_key(
        self, owner: str, name: str, key_id: str, secret_hash: str, at: datetime
    ) -> bool:
        """The heartbeat's fast path, in one statement: set the live pod ``owner/name``'s
        last heartbeat only if API key ``key_id`` has ``secret_hash``, is not revoked,
        belongs to ``owner``, and ``owner`` is an enabled user. False otherwise (the
        caller then checks step by step to give the precise error)."""

    # -- grants and limits -------------------------------------------------------------

    @abstractmethod
    def add_grant(self, grant: Grant, audit: NewAuditEvent) -> bool:
        """Give a role; False (and no audit event) if the user already held it."""

    @abstractmethod
    def remove_grant(self, pod_id: str, user: str, role: str, audit: NewAuditEvent) -> bool:
        """Take a role away; False (and no audit event) if the user did not hold it."""

    @abstractmethod
    def list_grants(self, *, pod_id: str | None = None, user: str | None = None) -> list[Grant]:
        """Grants on a pod and/or of a user, by pod, user and role."""

    @abstractmethod
    def set_usage_limit(self, limit: UsageLimit, audit: NewAuditEvent) -> None:
        """Set (insert or replace) a user's inference limit for a model on a pod."""

    @abstractmethod
    def remove_usage_limit(self, pod_id: str, user: str, model: str, audit: NewAuditEvent) -> bool:
        """Remove a limit; False (and no audit event) if none was set."""

    @abstractmethod
    def list_usage_limits(self, pod_id: str, *, user: str | None = None) -> list[UsageLimit]:
        """Limits on a pod, optionally for one user, by user and model."""

    # -- projects ----------------------------------------------------------------------

    @abstractmethod
    def create_project(self, project: Project, audit: NewAuditEvent) -> None:
        """Add a project; :class:`AlreadyExistsError` if the name is taken."""

    @abstractmethod
    def get_project(self, name: str) -> Project | None:
        """The project called ``name``, or None."""

    @abstractmethod
    def list_projects(self, *, member: str | None = None) -> list[Project]:
        """Every project, or those ``member`` owns or belongs to, by name."""

    @abstractmethod
    def add_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        """Add a member; False (and no audit event) if already a member."""

    @abstractmethod
    def remove_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        """Remove a member; False (and no audit event) if not a member."""

    @abstractmethod
    def list_project_members(self, project: str) -> list[str]:
        """Member names, sorted."""

    @abstractmethod
    def add_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        """Add a pod to a project; False (and no audit event) if it was in it."""

    @abstractmethod
    def remove_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        """Take a pod out of a project; False (and no audit event) if it was not in it."""

    @abstractmethod
    def list_project_pods(self, project: str) -> list[str]:
        """Pod identifiers in a project, sorted."""

    @abstractmethod
    def approve_project_task(self, task: ProjectTask, audit: NewAuditEvent) -> bool:
        """Approve a task definition; False (and no audit event) if already approved."""

    @abstractmethod
    def revoke_project_task(self, project: str, task_hash: str, audit: NewAuditEvent) -> bool:
        """Withdraw an approval; False (and no audit event) if there was none."""

    @abstractmethod
    def list_project_tasks(self, project: str) -> list[ProjectTask]:
        """Approved task definitions of a project, oldest first."""

    # -- web sessions ------------------------------------------------------------------

    @abstractmethod
    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        """Remember that a web session ended (logged out) before its cookie expires."""

    @abstractmethod
    def is_session_revoked(self, session_id: str) -> bool:
        """Whether a web session was ended."""

    # -- housekeeping ------------------------------------------------------------------

    @abstractmethod
    def purge_expired(self, now: datetime, *, failures_older_than: datetime) -> int:
        """Delete device authorizations, refresh tokens and ended web sessions that
        expired before ``now``,
        and unlocked failed-login records last updated before ``failures_older_than``;
        how many records went. Anyone can start a device login, so without this the
        table would only grow."""

    # -- audit -------------------------------------------------------------------------

    @abstractmethod
    def append_audit(self, event: NewAuditEvent) -> AuditEvent:
        """Append one event (an access decision, say) and return it with its id."""

    @abstractmethod
    def list_audit(
        self,
        *,
        pod_ids: Sequence[str] | None = None,
        actor: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        """Events, newest first. ``pod_ids`` limits them to those pods (None: all);
        ``before_id`` pages back through older events."""
