"""The SQLAlchemy version of the hub store, on SQLite (embedded) or PostgreSQL (at scale).

Every method runs in one transaction. Steps that only one caller may win (revoking a
token, moving a device authorization on) are a single conditional ``UPDATE`` whose row
count says who won; grants and memberships insert with ``ON CONFLICT DO NOTHING`` and write
their audit event only when a row changed, in the same transaction.

Engines come from :func:`~podium.hub.store.engine.create_hub_engine` (SQLite set up for a
threaded server: WAL, ``BEGIN IMMEDIATE`` for writes). Strings sort by code point on both
databases (``COLLATE "C"`` on PostgreSQL), as the in-memory store sorts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

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
from podium.hub.store import _tables as t
from podium.hub.store.base import (
    AlreadyExistsError,
    HubStore,
    NewAuditEvent,
    PodQuery,
    StoreError,
)
from podium.hub.store.engine import SUPPORTED_BACKENDS, create_hub_engine
from podium.hub.store.migrate import WRITE_OPTION, upgrade_to_head

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["SqlHubStore", "open_sql_store"]


#: The hot path, built once: 1,000 pods heartbeat every 10 s.
_HEARTBEAT = (
    sa.update(t.pods)
    .where(t.pods.c.pod_id == sa.bindparam("heartbeat_pod_id"), t.pods.c.archived == sa.false())
    .values(last_heartbeat_at=sa.bindparam("heartbeat_at", type_=t.UtcDateTime()))
)

_HEARTBEAT_WITH_KEY = (
    sa.update(t.pods)
    .where(
        t.pods.c.pod_id == sa.bindparam("heartbeat_pod_id"),
        t.pods.c.owner == sa.bindparam("heartbeat_owner"),
        t.pods.c.archived == sa.false(),
        sa.exists()
        .where(
            t.api_keys.c.key_id == sa.bindparam("heartbeat_key_id"),
            t.api_keys.c.secret_hash == sa.bindparam("heartbeat_secret_hash"),
            t.api_keys.c.owner == sa.bindparam("heartbeat_owner"),
            t.api_keys.c.revoked_at.is_(None),
            t.users.c.name == t.api_keys.c.owner,
            t.users.c.disabled == sa.false(),
        )
        .correlate_except(t.api_keys, t.users),
    )
    .values(last_heartbeat_at=sa.bindparam("heartbeat_at", type_=t.UtcDateTime()))
)
_GET_API_KEY = sa.select(t.api_keys).where(t.api_keys.c.key_id == sa.bindparam("key_id"))


def open_sql_store(url: str) -> SqlHubStore:
    """Connect to the hub's database at ``url``, migrate it to the newest schema and
    return the store; the caller closes it."""
    engine = create_hub_engine(url)
    try:
        upgrade_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return SqlHubStore(engine)


# -- records and rows ------------------------------------------------------------------

_R = TypeVar("_R", bound="DataclassInstance")


def _values(record: DataclassInstance) -> dict[str, Any]:
    """A record's fields as column values (enums by value)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


def _record(cls: type[_R], row: sa.RowMapping, **converted: Any) -> _R:
    """The record ``cls`` from a row whose columns carry its field names."""
    values = {f.name: row[f.name] for f in fields(cls)}
    values.update(converted)
    return cls(**values)


def _device_code(row: sa.RowMapping) -> DeviceCode:
    return _record(DeviceCode, row, status=DeviceCodeStatus(row["status"]))


def _public_key(row: sa.RowMapping) -> PublicKey:
    return _record(PublicKey, row, purpose=KeyPurpose(row["purpose"]))


def _like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, as plain text (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@contextmanager
def _unique(message: str) -> Iterator[None]:
    """Turn a uniqueness violation into :class:`AlreadyExistsError`."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise AlreadyExistsError(message) from exc


# -- the store -------------------------------------------------------------------------


class SqlHubStore(HubStore):
    """The hub store on an engine from :func:`create_hub_engine` whose database is
    migrated (:func:`open_sql_store` does both). The constructor does no I/O."""

    def __init__(self, engine: sa.Engine) -> None:
        if engine.dialect.name not in SUPPORTED_BACKENDS:
            raise StoreError(
                f"the hub store runs on SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def engine(self) -> sa.Engine:
        """The engine the store runs on."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # -- helpers -----------------------------------------------------------------------

    def _read(self) -> AbstractContextManager[sa.Connection]:
        return self._engine.begin()

    def _write(self) -> AbstractContextManager[sa.Connection]:
        return self._writer.begin()

    def _ordered(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """Sort strings by code point, as Python does, whatever the database's locale."""
        return column.collate("C") if self._postgres else column

    def _lower(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        return sa.func.lower(column) if self._postgres else sa.func.podium_lower(column)

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> postgresql.Insert | sqlite.Insert:
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        return dialect_insert(table).values(values)

    def _upsert(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
        keys = [c.name for c in table.primary_key.columns]
        stmt = self._insert(table, values)
        update = {name: stmt.excluded[name] for name in values if name not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))

    def _insert_new(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
        """Insert unless the primary key exists; whether a row was inserted."""
        stmt = self._insert(table, values).on_conflict_do_nothing()
        # SQLAlchemy only keeps an INSERT's row count when asked to.
        return conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount == 1

    def _add(self, table: sa.Table, record: DataclassInstance, duplicate: str) -> None:
        """Insert one record; :class:`AlreadyExistsError` with ``duplicate`` if it exists."""
        with _unique(duplicate), self._write() as conn:
            conn.execute(sa.insert(table).values(_values(record)))

    @staticmethod
    def _append(conn: sa.Connection, event: NewAuditEvent) -> AuditEvent:
        values = _values(event)
        values["detail"] = dict(event.detail)
        result = conn.execute(sa.insert(t.audit_events).values(values))
        key = result.inserted_primary_key
        if key is None or key[0] is None:  # pragma: no cover - both backends return it
            raise StoreError("the database did not return the new audit event's id")
        return AuditEvent(event_id=int(key[0]), **values)

    def _first(self, stmt: sa.Select[Any]) -> sa.RowMapping | None:
        with self._read() as conn:
            return conn.execute(stmt).mappings().first()

    def _rows(self, stmt: sa.Select[Any]) -> Sequence[sa.RowMapping]:
        with self._read() as conn:
            return conn.execute(stmt).mappings().all()

    def _get(self, cls: type[_R], stmt: sa.Select[Any]) -> _R | None:
        row = self._first(stmt)
        return None if row is None else _record(cls, row)

    def _list(self, cls: type[_R], stmt: sa.Select[Any]) -> list[_R]:
        return [_record(cls, row) for row in self._rows(stmt)]

    def _changed(self, stmt: sa.Update | sa.Delete, audit: NewAuditEvent | None = None) -> int:
        """Run one UPDATE or DELETE; write ``audit`` only if it touched a row."""
        with self._write() as conn:
            count: int = conn.execute(stmt).rowcount
            if count and audit is not None:
                self._append(conn, audit)
            return count

    def _revoke(self, table: sa.Table, key: str, value: str, at: datetime) -> bool:
        """Set ``revoked_at`` on one live row; True only for the call that did it."""
        stmt = (
            sa.update(table)
            .where(table.c[key] == value, table.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self._changed(stmt) == 1

    # -- users -------------------------------------------------------------------------

    def create_user(self, user: User) -> None:
        self._add(t.users, user, f"user {user.name!r} already exists")

    def get_user(self, name: str) -> User | None:
        return self._get(User, sa.select(t.users).where(t.users.c.name == name))

    def list_users(self) -> list[User]:
        return self._list(User, sa.select(t.users).order_by(self._ordered(t.users.c.name)))

    def update_user(self, user: User) -> bool:
        values = _values(user)
        stmt = sa.update(t.users).where(t.users.c.name == values.pop("name")).values(values)
        return self._changed(stmt) == 1

    # -- failed logins -----------------------------------------------------------------

    def get_login_failures(self, username: str) -> LoginFailures | None:
        c = t.login_failures.c
        return self._get(LoginFailures, sa.select(t.login_failures).where(c.username == username))

    def put_login_failures(self, failures: LoginFailures) -> None:
        with self._write() as conn:
            self._upsert(conn, t.login_failures, _values(failures))

    def clear_login_failures(self, username: str) -> None:
        self._changed(sa.delete(t.login_failures).where(t.login_failures.c.username == username))

    # -- API keys ----------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> None:
        self._add(t.api_keys, key, f"API key id {key.key_id!r} already exists")

    def get_api_key(self, key_id: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(_GET_API_KEY, {"key_id": key_id}).mappings().first()
        return None if row is None else _record(ApiKey, row)

    def list_api_keys(self, owner: str) -> list[ApiKey]:
        c = t.api_keys.c
        stmt = sa.select(t.api_keys).where(c.owner == owner)
        return self._list(ApiKey, stmt.order_by(c.created_at, self._ordered(c.key_id)))

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        return self._revoke(t.api_keys, "key_id", key_id, at)

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        c = t.api_keys.c
        self._changed(sa.update(t.api_keys).where(c.key_id == key_id).values(last_used_at=at))

    # -- refresh tokens ----------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> None:
        self._add(t.refresh_tokens, token, "refresh token already exists")

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        c = t.refresh_tokens.c
        stmt = sa.select(t.refresh_tokens).where(c.token_hash == token_hash)
        return self._get(RefreshToken, stmt)

    def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool:
        return self._revoke(t.refresh_tokens, "token_hash", token_hash, at)

    def revoke_refresh_tokens_of(self, owner: str, at: datetime) -> int:
        c = t.refresh_tokens.c
        stmt = (
            sa.update(t.refresh_tokens)
            .where(c.owner == owner, c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self._changed(stmt)

    # -- device authorization ----------------------------------------------------------

    def add_device_code(self, code: DeviceCode) -> None:
        self._add(t.device_codes, code, "user code or device code in use")

    def get_device_code(self, device_code_hash: str) -> DeviceCode | None:
        c = t.device_codes.c
        row = self._first(sa.select(t.device_codes).where(c.device_code_hash == device_code_hash))
        return None if row is None else _device_code(row)

    def get_device_code_by_user_code(self, user_code: str) -> DeviceCode | None:
        c = t.device_codes.c
        row = self._first(sa.select(t.device_codes).where(c.user_code == user_code))
        return None if row is None else _device_code(row)

    def transition_device_code(
        self,
        device_code_hash: str,
        expected: DeviceCodeStatus,
        new: DeviceCodeStatus,
        *,
        user: str | None = None,
    ) -> bool:
        c = t.device_codes.c
        values: dict[str, Any] = {"status": new.value}
        if user is not None:
            values["user"] = user
        stmt = (
            sa.update(t.device_codes)
            .where(c.device_code_hash == device_code_hash, c.status == expected.value)
            .values(values)
        )
        return self._changed(stmt) == 1

    def mark_device_code_polled(self, device_code_hash: str, at: datetime) -> None:
        c = t.device_codes.c
        stmt = sa.update(t.device_codes).where(c.device_code_hash == device_code_hash)
        self._changed(stmt.values(last_polled_at=at))

    # -- public keys -------------------------------------------------------------------

    def add_public_key(self, key: PublicKey) -> None:
        self._add(t.public_keys, key, f"key {key.key_id!r} is already registered")

    def get_public_key(self, key_id: str) -> PublicKey | None:
        row = self._first(sa.select(t.public_keys).where(t.public_keys.c.key_id == key_id))
        return None if row is None else _public_key(row)

    def list_public_keys(
        self, owner: str, *, purpose: KeyPurpose | None = None, include_revoked: bool = False
    ) -> list[PublicKey]:
        c = t.public_keys.c
        stmt = sa.select(t.public_keys).where(c.owner == owner)
        if purpose is not None:
            stmt = stmt.where(c.purpose == purpose.value)
        if not include_revoked:
            stmt = stmt.where(c.revoked_at.is_(None))
        stmt = stmt.order_by(c.created_at.desc(), self._ordered(c.key_id).desc())
        return [_public_key(row) for row in self._rows(stmt)]

    def revoke_public_key(self, key_id: str, at: datetime) -> bool:
        return self._revoke(t.public_keys, "key_id", key_id, at)

    # -- pods --------------------------------------------------------------------------

    def save_pod(self, pod: Pod) -> None:
        with self._write() as conn:
            self._upsert(conn, t.pods, {"pod_id": pod.pod_id, **_values(pod)})

    def get_pod(self, owner: str, name: str) -> Pod | None:
        return self._get(Pod, sa.select(t.pods).where(t.pods.c.pod_id == f"{owner}/{name}"))

    def list_pods(self, query: PodQuery) -> list[Pod]:
        c = t.pods.c
        stmt = sa.select(t.pods)
        if not query.include_archived:
            stmt = stmt.where(c.archived == sa.false())
        if query.owner is not None:
            stmt = stmt.where(c.owner == query.owner)
        if query.visible_to is not None:
            granted = sa.select(t.grants.c.pod_id).where(t.grants.c.user == query.visible_to)
            stmt = stmt.where(sa.or_(c.owner == query.visible_to, c.pod_id.in_(granted)))
        if query.text is not None:
            pattern = _like_contains(query.text.lower())
            searched = (c.pod_id, c.display_name, c.description)
            stmt = stmt.where(
                sa.or_(*(self._lower(col).like(pattern, escape="\\") for col in searched))
            )
        stmt = stmt.order_by(self._ordered(c.pod_id)).limit(query.limit).offset(query.offset)
        return self._list(Pod, stmt)

    def record_heartbeat(self, owner: str, name: str, at: datetime) -> bool:
        params = {"heartbeat_pod_id": f"{owner}/{name}", "heartbeat_at": at}
        with self._write() as conn:
            return bool(conn.execute(_HEARTBEAT, params).rowcount == 1)

    def record_heartbeat_with_api_key(
        self, owner: str, name: str, key_id: str, secret_hash: str, at: datetime
    ) -> bool:
        params = {
            "heartbeat_pod_id": f"{owner}/{name}",
            "heartbeat_owner": owner,
            "heartbeat_key_id": key_id,
            "heartbeat_secret_hash": secret_hash,
            "heartbeat_at": at,
        }
        with self._write() as conn:
            return bool(conn.execute(_HEARTBEAT_WITH_KEY, params).rowcount == 1)

    # -- grants and limits -------------------------------------------------------------

    def add_grant(self, grant: Grant, audit: NewAuditEvent) -> bool:
        with self._write() as conn:
            if not self._insert_new(conn, t.grants, _values(grant)):
                return False
            self._append(conn, audit)
            return True

    def remove_grant(self, pod_id: str, user: str, role: str, audit: NewAuditEvent) -> bool:
        c = t.grants.c
        stmt = sa.delete(t.grants).where(c.pod_id == pod_id, c.user == user, c.role == role)
        return self._changed(stmt, audit) == 1

    def list_grants(self, *, pod_id: str | None = None, user: str | None = None) -> list[Grant]:
        c = t.grants.c
        stmt = sa.select(t.grants)
        if pod_id is not None:
            stmt = stmt.where(c.pod_id == pod_id)
        if user is not None:
            stmt = stmt.where(c.user == user)
        stmt = stmt.order_by(*(self._ordered(col) for col in (c.pod_id, c.user, c.role)))
        return self._list(Grant, stmt)

    def set_usage_limit(self, limit: UsageLimit, audit: NewAuditEvent) -> None:
        with self._write() as conn:
            self._upsert(conn, t.usage_limits, _values(limit))
            self._append(conn, audit)

    def remove_usage_limit(self, pod_id: str, user: str, model: str, audit: NewAuditEvent) -> bool:
        c = t.usage_limits.c
        stmt = sa.delete(t.usage_limits).where(c.pod_id == pod_id, c.user == user, c.model == model)
        return self._changed(stmt, audit) == 1

    def list_usage_limits(self, pod_id: str, *, user: str | None = None) -> list[UsageLimit]:
        c = t.usage_limits.c
        stmt = sa.select(t.usage_limits).where(c.pod_id == pod_id)
        if user is not None:
            stmt = stmt.where(c.user == user)
        stmt = stmt.order_by(self._ordered(c.user), self._ordered(c.model))
        return self._list(UsageLimit, stmt)

    # -- projects ----------------------------------------------------------------------

    def create_project(self, project: Project, audit: NewAuditEvent) -> None:
        with _unique(f"project {project.name!r} already exists"), self._write() as conn:
            conn.execute(sa.insert(t.projects).values(_values(project)))
            self._append(conn, audit)

    def get_project(self, name: str) -> Project | None:
        return self._get(Project, sa.select(t.projects).where(t.projects.c.name == name))

    def list_projects(self, *, member: str | None = None) -> list[Project]:
        c = t.projects.c
        stmt = sa.select(t.projects)
        if member is not None:
            members = t.project_members.c
            joined = sa.select(members.project).where(members.user == member)
            stmt = stmt.where(sa.or_(c.owner == member, c.name.in_(joined)))
        return self._list(Project, stmt.order_by(self._ordered(c.name)))

    def _link(self, table: sa.Table, values: dict[str, Any], audit: NewAuditEvent) -> bool:
        """Insert a row of a project; False if the project is missing or the row exists."""
        exists = sa.select(t.projects.c.name).where(t.projects.c.name == values["project"])
        with self._write() as conn:
            if conn.execute(exists).first() is None:
                return False
            if not self._insert_new(conn, table, values):
                return False
            self._append(conn, audit)
            return True

    def _unlink(
        self, table: sa.Table, project: str, column: str, item: str, audit: NewAuditEvent
    ) -> bool:
        stmt = sa.delete(table).where(table.c.project == project, table.c[column] == item)
        return self._changed(stmt, audit) == 1

    def _linked(self, table: sa.Table, project: str, column: str) -> list[str]:
        col = table.c[column]
        stmt = sa.select(col).where(table.c.project == project).order_by(self._ordered(col))
        return [row[column] for row in self._rows(stmt)]

    def add_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        return self._link(t.project_members, {"project": project, "user": user}, audit)

    def remove_project_member(self, project: str, user: str, audit: NewAuditEvent) -> bool:
        return self._unlink(t.project_members, project, "user", user, audit)

    def list_project_members(self, project: str) -> list[str]:
        return self._linked(t.project_members, project, "user")

    def add_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        return self._link(t.project_pods, {"project": project, "pod_id": pod_id}, audit)

    def remove_project_pod(self, project: str, pod_id: str, audit: NewAuditEvent) -> bool:
        return self._unlink(t.project_pods, project, "pod_id", pod_id, audit)

    def list_project_pods(self, project: str) -> list[str]:
        return self._linked(t.project_pods, project, "pod_id")

    def approve_project_task(self, task: ProjectTask, audit: NewAuditEvent) -> bool:
        return self._link(t.project_tasks, _values(task), audit)

    def revoke_project_task(self, project: str, task_hash: str, audit: NewAuditEvent) -> bool:
        return self._unlink(t.project_tasks, project, "task_hash", task_hash, audit)

    def list_project_tasks(self, project: str) -> list[ProjectTask]:
        c = t.project_tasks.c
        stmt = sa.select(t.project_tasks).where(c.project == project)
        return self._list(ProjectTask, stmt.order_by(c.created_at, self._ordered(c.task_hash)))

    # -- web sessions ------------------------------------------------------------------

    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        with self._write() as conn:
            self._upsert(
                conn, t.revoked_sessions, {"session_id": session_id, "expires_at": expires_at}
            )

    def is_session_revoked(self, session_id: str) -> bool:
        stmt = sa.select(t.revoked_sessions.c.session_id).where(
            t.revoked_sessions.c.session_id == session_id
        )
        return self._first(stmt) is not None

    # -- housekeeping ------------------------------------------------------------------

    def purge_expired(self, now: datetime, *, failures_older_than: datetime) -> int:
        failures = t.login_failures.c
        with self._write() as conn:
            removed = conn.execute(
                sa.delete(t.device_codes).where(t.device_codes.c.expires_at < now)
            ).rowcount
            removed += conn.execute(
                sa.delete(t.refresh_tokens).where(t.refresh_tokens.c.expires_at < now)
            ).rowcount
            removed += conn.execute(
                sa.delete(t.revoked_sessions).where(t.revoked_sessions.c.expires_at < now)
            ).rowcount
            removed += conn.execute(
                sa.delete(t.login_failures).where(
                    failures.last_failed_at < failures_older_than,
                    sa.or_(failures.locked_until.is_(None), failures.locked_until < now),
                )
            ).rowcount
        return int(removed)

    # -- audit -------------------------------------------------------------------------

    def append_audit(self, event: NewAuditEvent) -> AuditEvent:
        with self._write() as conn:
            return self._append(conn, event)

    def list_audit(
        self,
        *,
        pod_ids: Sequence[str] | None = None,
        actor: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        c = t.audit_events.c
        stmt = sa.select(t.audit_events)
        if pod_ids is not None:
            stmt = stmt.where(c.pod_id.in_(list(pod_ids)))
        if actor is not None:
            stmt = stmt.where(c.actor == actor)
        if before_id is not None:
            stmt = stmt.where(c.event_id < before_id)
        return self._list(AuditEvent, stmt.order_by(c.event_id.desc()).limit(limit))
