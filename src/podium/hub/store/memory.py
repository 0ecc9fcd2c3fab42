"""The in-memory twin of the hub store: for tests and throw-away hubs.

It keeps the same guarantees as the SQL store (atomic steps, audit with every access
change) by holding one lock around each method.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

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
from podium.hub.store.base import AlreadyExistsError, HubStore, NewAuditEvent, PodQuery

__all__ = ["InMemoryHubStore"]


def pod_matches_text(pod: Pod, text: str) -> bool:
    """Plain, case-insensitive substring match on identifier, display name, description."""
    needle = text.casefold()
    return any(
        needle in field.casefold() for field in (pod.pod_id, pod.display_name, pod.description)
    )


class InMemoryHubStore(HubStore):
    """Every record in dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, User] = {}
        self._failures: dict[str, LoginFailures] = {}
        self._api_keys: dict[str, ApiKey] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._devices: dict[str, DeviceCode] = {}
        self._keys: dict[str, PublicKey] = {}
        self._pods: dict[str, Pod] = {}
        self._grants: dict[tuple[str, str, str], Grant] = {}
        self._limits: dict[tuple[str, str, str], UsageLimit] = {}
        self._projects: dict[str, Project] = {}
        self._members: dict[str, set[str]] = {}
        self._project_pods: dict[str, set[str]] = {}
        self._tasks: dict[tuple[str, str], ProjectTask] = {}
        self._audit: list[AuditEvent] = []
        self._ended_sessions: dict[str, datetime] = {}

    # -- users -------------------------------------------------------------------------

    def create_user(self, user: User) -> None:
        with self._lock:
            if user.name in self._users:
                raise AlreadyExistsError(f"user {user.name!r} already exists")
            self._users[user.name] = user

    def get_user(self, name: str) -> User | None:
        with self._lock:
            return self._users.get(name)

    def list_users(self) -> list[User]:
        with self._lock:
            return [self._users[n] for n in sorted(self._users)]

    def update_user(self, user: User) -> bool:
        with self._lock:
            if user.name not in self._users:
                return False
            self._users[user.name] = user
            return True

    # -- failed logins -----------------------------------------------------------------

    def get_login_failures(self, username: str) -> LoginFailures | None:
        with self._lock:
            return self._failures.get(username)

    def put_login_failures(self, failures: LoginFailures) -> None:
        with self._lock:
            self._failures[failures.username] = failures

    def clear_login_failures(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)

    # -- API keys ----------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            if key.key_id in self._api_keys:
                raise AlreadyExistsError(f"API key id {key.key_id!r} already exists")
            self._api_keys[key.key_id] = key

    def get_api_key(self, key_id: str) -> ApiKey | None:
        with self._lock:
            return self._api_keys.get(key_id)

    def list_api_keys(self, owner: str) -> list[ApiKey]:
        with self._lock:
            keys = [k for k in self._api_keys.values() if k.owner == owner]
            return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        with self._lock:
            key = self._api_keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            self._api_keys[key_id] = replace(key, revoked_at=at)
            return True

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        with self._lock:
            key = self._api_keys.get(key_id)
            if key is not None:
                self._api_keys[key_id] = replace(key, last_used_at=at)

    # -- refresh tokens ----------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> None:
        with self._lock:
            if token.token_hash in self._refresh:
                raise AlreadyExistsError("refresh token already exists")
            self._refresh[token.token_hash] = token

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        with self._lock:
            return self._refresh.get(token_hash)

    def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        with self._lock:
            token = self._refresh.get(token_hash)
            if token is None or token.revoked_at is not None:
                return False
            self._refresh[token_hash] = replace(token, revoked_at=at)
            return True

    def revoke_refresh_tokens_of(self, owner: str, at: datetime) -> int:
        with self._lock:
            live = [t for t in self._refresh.values() if t.owner == owner and t.revoked_at is None]
            for token in live:
                self._refresh[token.token_hash] = replace(token, revoked_at=at)
            return len(live)

    # -- device authorization ----------------------------------------------------------

    def add_device_code(self, code: DeviceCode) -> None:
        with self._lock:
            if any(d.user_code == code.user_code for d in self._devices.values()):
                raise AlreadyExistsError("user code in use")
            if code.device_code_hash in self._devices:
                raise AlreadyExistsError("device code in use")
            self._devices[code.device_code_hash] = code

    def get_device_code(self, device_code_hash: str) -> DeviceCode | None:
        with self._lock:
            return self._devices.get(device_code_hash)

    def get_device_code_by_user_code(self, user_code: str) -> DeviceCode | None:
        with self._lock:
            return next((d for d in self._devices.values() if d.user_code == user_code), None)

    def transition_device_code(
        self,
        device_code_hash: str,
        expected: DeviceCodeStatus,
        new: DeviceCodeStatus,
        *,
        user: str | None = None,
    ) -> bool:
        with self._lock:
            code = self._devices.get(device_code_hash)
            if code is None or code.status != expected:
                return False
            self._devices[device_code_hash] = replace(
                code, status=new, user=user if user is not None else code.user
            )
            return True

    def mark_device_code_polled(self, device_code_hash: str, at: datetime) -> None:
        with self._lock:
            code = self._devices.get(device_code_hash)
            if code is not None:
                self._devices[device_code_hash] = replace(code, last_polled_at=at)

    # -- public keys -------------------------------------------------------------------

    def add_public_key(self, key: PublicKey) -> None:
        with self._lock:
            if key.key_id in self._keys:
                raise AlreadyExistsError(f"key {key.key_id!r} is already registered")
            self._keys[key.key_id] = key

    def get_public_key(self, key_id: str) -> PublicKey | None:
        with self._lock:
            return self._keys.get(key_id)

    def list_public_keys(
        self, owner: str, *, purpose: KeyPurpose | None = None, include_revoked: bool = False
    ) -> list[PublicKey]:
        with self._lock:
            keys = [
                k
                for k in self._keys.values()
                if k.owner == owner
                and (purpose is None or k.purpose == purpose)
                and (include_revoked or k.revoked_at is None)
            ]
            return sorted(keys, key=lambda k: (k.created_at, k.key_id), reverse=True)

    def revoke_public_key(self, key_id: str, at: datetime) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            self._keys[key_id] = replace(key, revoked_at=at)
            return True

    # -- pods --------------------------------------------------------------------------

    def save_pod(self, pod: Pod) -> None:
        with self._lock:
            self._pods[pod.pod_id] = pod

    def get_pod(self, owner: str, name: str) -> Pod | None:
        with self._lock:
            return self._pods.get(f"{owner}/{name}")

    def list_pods(self, query: PodQuery) -> list[Pod]:
        with self._lock:
            granted = (
                {g.pod_id for g in self._grants.values() if g.user == query.visible_to}
                if query.visible_to is not None
                else set()
            )
            pods = [
                p
                for p in self._pods.values()
                if (query.include_archived or not p.archived)
                and (query.owner is None or p.owner == query.owner)
                and (query.visible_to is None or p.owner == query.visible_to or p.pod_id in granted)
                and (query.text is None or pod_matches_text(p, query.text))
            ]
            pods.sort(key=lambda p: p.pod_id)
            return pods[query.offset : query.offset + query.limit]

    def record_heartbeat(self, owner: str, name: str, at: datetime) -> bool:
        with self._lock:
            pod = self._pods.get(f"{owner}/{name}")
            if pod is None or pod.archived:
                return False
            self._pods[pod.pod_id] = replace(pod, last_heartbeat_at=at)
            return True

    def record_heartbeat_with_api_key(
        self, owner: str, name: str, key_id: str, secret_hash: str, at: datetime
    ) -> bool:
        with self._lock:
            key = self._api_keys.get(key_id)
            user = self._users.get(owner)
            if (
                key is None
                or key.secret_hash != secret_hash
                or key.revoked_at is not None
                or key.owner != owner
                or user is None
                or user.disabled
            ):
                return False
            return self.record_heartbeat(owner, name, at)

    # -- grants and limits -------------------------------------------------------------

    def add_grant(self, grant: Grant, audit: NewAuditEvent) -> bool:
        with self._lock:
            key = (grant.pod_id, grant.user, grant.role)
            if key in self._grants:
                return False
            self._grants[key] = grant
            self.append_audit(audit)
            return True

    def remove_grant(self, pod_id: str, user: str, role: str, audit: NewAuditEvent) -> bool:
        with self._lock:
            if self._grants.pop((pod_id, user, role), None) is None:
                return False
            self.append_audit(audit)
            return True

    def list_grants(self, *, pod_id: str | None = None, user: str | None = None) -> list[Grant]:
        with self._lock:
            return [
                self._grants[k]
                for k in sorted(self._grants)
                if (pod_id is None or k[0] == pod_id) and (user is None or k[1] == user)
            ]

    def set_usage_limit(self, limit: UsageLimit, audit: NewAuditEvent) -> None:
        with self._lock:
            self._limits[(limit.pod_id, limit.user, limit.model)] = limit
            self.append_audit(audit)

    def remove_usage_limit(self, pod_id: str, user: str, model: str, audit: NewAuditEvent) -> bool:
        with self._lock:
            if self._limits.pop((pod_id, user, model), None) is None:
                return False
            self.append_audit(audit)
            return True

    def list_usage_limits(self, pod_id: str, *, user: str | None = None) -> list[UsageLimit]:
        with self._lock:
            return [
                self._limits[k]
                for k in sorted(self._limits)
                if k[0] == pod_id and (user is None or k[1] == user)
            ]

    # -- projects ----------------------------------------------------------------------

    def create_project(self, project: Project, audit: NewAuditEvent) -> None:
        with self._lock:
            if project.name in self._projects:
                raise AlreadyExistsError(f"project {project.name!r} already exists")
            self._projects[project.name] = project
            self._members[project.name] = set()
            self._project_pods[project.name] = set()
            self.append_audit(audit)

    def get_project(self, name: str) -> Project | None:
        with self._lock:
            return self._projects.get(name)

    def list_projects(self, *, member: str | None = None) -> list[Project]:
        with self._lock:
            return [
                self._projects[n]
                for n in sorted(self._projects)
                if member is None or self._projects[n].owner == member or member in self._members[n]
            ]

    def _change_set(
        self, sets: dict[str, set[str]], project: str, item: str, add: bool, audit: NewAuditEvent
    ) -> bool:
        with self._lock:
            members = sets.get(project)
            if members is None or (item in members) == add:
                return False
            if add:
                members.add(item)
            else:
                members.discard(item)
            self.append_audit(audit)
            return True

    def add_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        return self._change_set(self._members, project, user, True, audit)

    def remove_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        return self._change_set(self._members, project, user, False, audit)

    def list_project_members(self, project: str) -> list[str]:
        with self._lock:
            return sorted(self._members.get(project, set()))

    def add_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        return self._change_set(self._project_pods, project, pod_id, True, audit)

    def remove_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        return self._change_set(self._project_pods, project, pod_id, False, audit)

    def list_project_pods(self, project: str) -> list[str]:
        with self._lock:
            return sorted(self._project_pods.get(project, set()))

    def approve_project_task(self, task: ProjectTask, audit: NewAuditEvent) -> bool:
        with self._lock:
            key = (task.project, task.task_hash)
            if task.project not in self._projects or key in self._tasks:
                return False
            self._tasks[key] = task
            self.append_audit(audit)
            return True

    def revoke_project_task(self, project: str, task_hash: str, audit: NewAuditEvent) -> bool:
        with self._lock:
            if self._tasks.pop((project, task_hash), None) is None:
                return False
            self.append_audit(audit)
            return True

    def list_project_tasks(self, project: str) -> list[ProjectTask]:
        with self._lock:
            tasks = [t for (p, _), t in self._tasks.items() if p == project]
            return sorted(tasks, key=lambda t: (t.created_at, t.task_hash))

    # -- web sessions ------------------------------------------------------------------

    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        with self._lock:
            self._ended_sessions[session_id] = expires_at

    def is_session_revoked(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._ended_sessions

    # -- housekeeping ------------------------------------------------------------------

    def purge_expired(self, now: datetime, *, failures_older_than: datetime) -> int:
        with self._lock:
            devices = [h for h, d in self._devices.items() if d.expires_at < now]
            tokens = [h for h, t in self._refresh.items() if t.expires_at < now]
            failures = [
                n
                for n, f in self._failures.items()
                if f.last_failed_at < failures_older_than
                and (f.locked_until is None or f.locked_until < now)
            ]
            for code_hash in devices:
                del self._devices[code_hash]
            for token_hash in tokens:
                del self._refresh[token_hash]
            for username in failures:
                del self._failures[username]
            sessions = [s for s, until in self._ended_sessions.items() if until < now]
            for session_id in sessions:
                del self._ended_sessions[session_id]
            return len(devices) + len(tokens) + len(failures) + len(sessions)

    # -- audit -------------------------------------------------------------------------

    def append_audit(self, event: NewAuditEvent) -> AuditEvent:
        with self._lock:
            stored = AuditEvent(
                event_id=len(self._audit) + 1,
                at=event.at,
                actor=event.actor,
                action=event.action,
                pod_id=event.pod_id,
                subject=event.subject,
                outcome=event.outcome,
                detail=dict(event.detail),
            )
            self._audit.append(stored)
            return stored

    def list_audit(
        self,
        *,
        pod_ids: Sequence[str] | None = None,
        actor: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        with self._lock:
            wanted = set(pod_ids) if pod_ids is not None else None
            events = [
                e
                for e in reversed(self._audit)
                if (wanted is None or e.pod_id in wanted)
                and (actor is None or e.actor == actor)
                and (before_id is None or e.event_id < before_id)
            ]
            return events[:limit]
