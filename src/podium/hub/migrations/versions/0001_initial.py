"""The hub's first schema: accounts, credentials, keys, pods, access, projects, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Every table is spelled out here (not ``metadata.create_all``) so later revisions can alter
it; ``tests/hub/store/test_migrations.py`` checks the result matches ``_tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = (
    "hub_audit_events",
    "hub_project_tasks",
    "hub_project_pods",
    "hub_project_members",
    "hub_projects",
    "hub_usage_limits",
    "hub_grants",
    "hub_pods",
    "hub_public_keys",
    "hub_device_codes",
    "hub_refresh_tokens",
    "hub_api_keys",
    "hub_login_failures",
    "hub_users",
)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _accounts() -> None:
    op.create_table(
        "hub_users",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "hub_login_failures",
        sa.Column("username", sa.String(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        _when("last_failed_at"),
        _when("locked_until", nullable=True),
    )
    op.create_table(
        "hub_api_keys",
        sa.Column("key_id", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        _when("created_at"),
        _when("last_used_at", nullable=True),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_hub_api_keys_owner", "hub_api_keys", ["owner"])
    op.create_table(
        "hub_refresh_tokens",
        sa.Column("token_hash", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        _when("expires_at"),
        _when("created_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_hub_refresh_tokens_owner", "hub_refresh_tokens", ["owner"])
    op.create_table(
        "hub_device_codes",
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
    op.create_table(
        "hub_public_keys",
        sa.Column("key_id", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(), nullable=False),
        _when("created_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_hub_public_keys_owner", "hub_public_keys", ["owner"])


def _pods_and_access() -> None:
    op.create_table(
        "hub_pods",
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
    op.create_table(
        "hub_grants",
        sa.Column("pod_id", sa.String(), primary_key=True),
        sa.Column("user", sa.String(), primary_key=True),
        sa.Column("role", sa.String(), primary_key=True),
        sa.Column("granted_by", sa.String(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_hub_grants_user", "hub_grants", ["user"])
    op.create_table(
        "hub_usage_limits",
        sa.Column("pod_id", sa.String(), primary_key=True),
        sa.Column("user", sa.String(), primary_key=True),
        sa.Column("model", sa.String(), primary_key=True),
        sa.Column("max_inferences", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        _when("created_at"),
    )


def _project_column(table: str) -> sa.Column[object]:
    return sa.Column(
        "project",
        sa.String(),
        sa.ForeignKey("hub_projects.name", name=f"fk_{table}_project"),
        primary_key=True,
    )


def _projects() -> None:
    op.create_table(
        "hub_projects",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_hub_projects_owner", "hub_projects", ["owner"])
    op.create_table(
        "hub_project_members",
        _project_column("hub_project_members"),
        sa.Column("user", sa.String(), primary_key=True),
    )
    op.create_index("ix_hub_project_members_user", "hub_project_members", ["user"])
    op.create_table(
        "hub_project_pods",
        _project_column("hub_project_pods"),
        sa.Column("pod_id", sa.String(), primary_key=True),
    )
    op.create_table(
        "hub_project_tasks",
        _project_column("hub_project_tasks"),
        sa.Column("task_hash", sa.String(), primary_key=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(), nullable=False),
        _when("created_at"),
    )


def _audit() -> None:
    op.create_table(
        "hub_audit_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        _when("at"),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("pod_id", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hub_audit_events_pod_id", "hub_audit_events", ["pod_id", "event_id"])
    op.create_index("ix_hub_audit_events_actor", "hub_audit_events", ["actor", "event_id"])


def upgrade() -> None:
    """Create every hub table."""
    _accounts()
    _pods_and_access()
    _projects()
    _audit()


def downgrade() -> None:
    """Drop every hub table (and its data)."""
    for table in _TABLES:
        op.drop_table(table)
