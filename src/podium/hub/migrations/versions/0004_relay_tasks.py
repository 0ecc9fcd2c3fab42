"""The relay's tasks and their participants, so they outlive a hub restart.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``hub_relay_tasks``."""
    op.create_table(
        "hub_relay_tasks",
        sa.Column("task_id", sa.String(), primary_key=True),
        sa.Column("owner_party", sa.String(), nullable=False),
        sa.Column("pod_party", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_hub_relay_tasks_last_active_at", "hub_relay_tasks", ["last_active_at"])


def downgrade() -> None:
    """Drop ``hub_relay_tasks``."""
    op.drop_table("hub_relay_tasks")
