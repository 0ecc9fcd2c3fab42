"""The hub's tables (SQLAlchemy Core), shared by the SQL store and the migration check.

The Alembic revisions under ``podium/hub/migrations`` create these tables explicitly;
a test compares the migrated schema with this metadata so the two cannot drift.

Times are stored as UTC: :class:`UtcDateTime` converts aware values to UTC on the way in
(SQLite keeps no offset, and UTC text sorts in time order) and hands back aware UTC
datetimes on the way out. A pod's ``pod_id`` (``owner/name``) is stored beside its owner
and name so grants and listings can join and sort on it.

The relay's durable mailboxes (``hub_relay_*``, used by
:mod:`podium.hub.relay.mailbox_sql`) live in the same database and metadata, so one
migration history covers the whole hub.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from podium.core.sqlite import UtcDateTime

__all__ = [
    "UtcDateTime",
    "api_keys",
    "audit_events",
    "device_codes",
    "grants",
    "login_failures",
    "metadata",
    "pods",
    "project_members",
    "project_pods",
    "project_tasks",
    "projects",
    "public_keys",
    "refresh_tokens",
    "relay_mailboxes",
    "relay_messages",
    "relay_tasks",
    "usage_limits",
    "users",
]


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


#: Audit ids: 64-bit on PostgreSQL; SQLite needs exactly INTEGER for an auto-increment key.
AUDIT_ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

users = sa.Table(
    "hub_users",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("is_admin", sa.Boolean(), nullable=False),
    _when("created_at"),
    sa.Column("disabled", sa.Boolean(), nullable=False),
)

login_failures = sa.Table(
    "hub_login_failures",
    metadata,
    sa.Column("username", sa.String(), primary_key=True),
    sa.Column("count", sa.Integer(), nullable=False),
    _when("last_failed_at"),
    _when("locked_until", nullable=True),
)

api_keys = sa.Table(
    "hub_api_keys",
    metadata,
    sa.Column("key_id", sa.String(), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("secret_hash", sa.String(), nullable=False),
    _when("created_at"),
    _when("last_used_at", nullable=True),
    _when("revoked_at", nullable=True),
    sa.Index("ix_hub_api_keys_owner", "owner"),
)

refresh_tokens = sa.Table(
    "hub_refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    _when("expires_at"),
    _when("created_at"),
    _when("revoked_at", nullable=True),
    sa.Index("ix_hub_refresh_tokens_owner", "owner"),
)

revoked_sessions = sa.Table(
    "hub_revoked_sessions",
    metadata,
    sa.Column("session_id", sa.String(), primary_key=True),
    _when("expires_at"),
)

device_codes = sa.Table(
    "hub_device_codes",
    metadata,
    sa.Column("device_code_hash", sa.String(), primary_key=True),
    sa.Column("user_code", sa.String(), nullable=False),
    sa.Column("client_id", sa.String(), nullable=False),
    _when("expires_at"),
    sa.Column("interval_s", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("user", sa.String(), nullable=True),
    _when("last_polled_at", nullable=True),
    _when("created_at"),
    sa.UniqueConstraint("user_code", name="uq_hub_device_codes_user_code"),
)

public_keys = sa.Table(
    "hub_public_keys",
    metadata,
    sa.Column("key_id", sa.String(), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("public_key", sa.String(), nullable=False),
    _when("created_at"),
    _when("revoked_at", nullable=True),
    sa.Index("ix_hub_public_keys_owner", "owner"),
)

pods = sa.Table(
    "hub_pods",
    metadata,
    sa.Column("pod_id", sa.String(), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("schema", sa.JSON(), nullable=False),
    sa.Column("schema_hash", sa.String(), nullable=False),
    sa.Column("number_of_records", sa.BigInteger(), nullable=True),
    _when("created_at"),
    _when("updated_at"),
    _when("last_heartbeat_at", nullable=True),
    sa.Column("archived", sa.Boolean(), nullable=False),
    sa.UniqueConstraint("owner", "name", name="uq_hub_pods_owner_name"),
)

grants = sa.Table(
    "hub_grants",
    metadata,
    sa.Column("pod_id", sa.String(), primary_key=True),
    sa.Column("user", sa.String(), primary_key=True),
    sa.Column("role", sa.String(), primary_key=True),
    sa.Column("granted_by", sa.String(), nullable=False),
    _when("created_at"),
    sa.Index("ix_hub_grants_user", "user"),
)

usage_limits = sa.Table(
    "hub_usage_limits",
    metadata,
    sa.Column("pod_id", sa.String(), primary_key=True),
    sa.Column("user", sa.String(), primary_key=True),
    sa.Column("model", sa.String(), primary_key=True),
    sa.Column("max_inferences", sa.BigInteger(), nullable=False),
    sa.Column("set_by", sa.String(), nullable=False),
    _when("created_at"),
)

projects = sa.Table(
    "hub_projects",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    _when("created_at"),
    sa.Index("ix_hub_projects_owner", "owner"),
)

project_members = sa.Table(
    "hub_project_members",
    metadata,
    sa.Column(
        "project",
        sa.String(),
        sa.ForeignKey("hub_projects.name", name="fk_hub_project_members_project"),
        primary_key=True,
    ),
    sa.Column("user", sa.String(), primary_key=True),
    sa.Index("ix_hub_project_members_user", "user"),
)

project_pods = sa.Table(
    "hub_project_pods",
    metadata,
    sa.Column(
        "project",
        sa.String(),
        sa.ForeignKey("hub_projects.name", name="fk_hub_project_pods_project"),
        primary_key=True,
    ),
    sa.Column("pod_id", sa.String(), primary_key=True),
)

project_tasks = sa.Table(
    "hub_project_tasks",
    metadata,
    sa.Column(
        "project",
        sa.String(),
        sa.ForeignKey("hub_projects.name", name="fk_hub_project_tasks_project"),
        primary_key=True,
    ),
    sa.Column("task_hash", sa.String(), primary_key=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("approved_by", sa.String(), nullable=False),
    _when("created_at"),
)

audit_events = sa.Table(
    "hub_audit_events",
    metadata,
    sa.Column("event_id", AUDIT_ID_TYPE, primary_key=True, autoincrement=True),
    _when("at"),
    sa.Column("actor", sa.String(), nullable=False),
    sa.Column("action", sa.String(), nullable=False),
    sa.Column("pod_id", sa.String(), nullable=True),
    sa.Column("subject", sa.String(), nullable=True),
    sa.Column("outcome", sa.String(), nullable=False),
    sa.Column("detail", sa.JSON(), nullable=False),
    sa.Index("ix_hub_audit_events_pod_id", "pod_id", "event_id"),
    sa.Index("ix_hub_audit_events_actor", "actor", "event_id"),
    sqlite_autoincrement=True,
)

#: Relay message ids: 64-bit on PostgreSQL, INTEGER (the rowid) on SQLite.
RELAY_ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

relay_mailboxes = sa.Table(
    "hub_relay_mailboxes",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    _when("created_at"),
    _when("last_active_at"),
    sa.Index("ix_hub_relay_mailboxes_last_active_at", "last_active_at"),
)

relay_messages = sa.Table(
    "hub_relay_messages",
    metadata,
    # AUTOINCREMENT on SQLite: ids are never reused after the newest message is deleted,
    # so a reader's ``after_id`` cursor stays valid.
    sa.Column("message_id", RELAY_ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column(
        "mailbox",
        sa.String(),
        sa.ForeignKey(
            "hub_relay_mailboxes.name", name="fk_hub_relay_messages_mailbox", ondelete="CASCADE"
        ),
        nullable=False,
    ),
    sa.Column("sender", sa.String(), nullable=False),
    sa.Column("task_id", sa.String(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("frame", sa.LargeBinary(), nullable=False),
    _when("created_at"),
    _when("acked_at", nullable=True),
    # Set when the frame is in a file of the store's frame folder (``frame`` is then empty).
    sa.Column("frame_file", sa.String(), nullable=True),
    sa.UniqueConstraint("mailbox", "sender", "task_id", "seq", name="uq_hub_relay_messages_dedup"),
    sa.Index("ix_hub_relay_messages_mailbox", "mailbox", "message_id"),
    sa.Index("ix_hub_relay_messages_acked_at", "acked_at"),
    sqlite_autoincrement=True,
)

#: A task learnt from its job request: the requester owns it, the pod takes part.
relay_tasks = sa.Table(
    "hub_relay_tasks",
    metadata,
    sa.Column("task_id", sa.String(), primary_key=True),
    sa.Column("owner_party", sa.String(), nullable=False),
    sa.Column("pod_party", sa.String(), nullable=False),
    _when("created_at"),
    _when("last_active_at"),
    sa.Index("ix_hub_relay_tasks_last_active_at", "last_active_at"),
)
