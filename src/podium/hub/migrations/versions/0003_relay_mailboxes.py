"""The relay's durable mailboxes and the messages waiting in them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add ``hub_relay_mailboxes`` and ``hub_relay_messages``."""
    op.create_table(
        "hub_relay_mailboxes",
        sa.Column("name", sa.String(), primary_key=True),
        _when("created_at"),
        _when("last_active_at"),
    )
    op.create_index(
        "ix_hub_relay_mailboxes_last_active_at", "hub_relay_mailboxes", ["last_active_at"]
    )
    op.create_table(
        "hub_relay_messages",
        sa.Column(
            "message_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "mailbox",
            sa.String(),
            sa.ForeignKey(
                "hub_relay_mailboxes.name",
                name="fk_hub_relay_messages_mailbox",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("frame", sa.LargeBinary(), nullable=False),
        _when("created_at"),
        _when("acked_at", nullable=True),
        sa.UniqueConstraint(
            "mailbox", "sender", "task_id", "seq", name="uq_hub_relay_messages_dedup"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_hub_relay_messages_mailbox", "hub_relay_messages", ["mailbox", "message_id"]
    )
    op.create_index("ix_hub_relay_messages_acked_at", "hub_relay_messages", ["acked_at"])


def downgrade() -> None:
    """Drop the relay's tables (and every message waiting in them)."""
    op.drop_table("hub_relay_messages")
    op.drop_table("hub_relay_mailboxes")
