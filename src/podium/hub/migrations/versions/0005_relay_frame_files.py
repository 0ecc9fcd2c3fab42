"""Relay frames kept in files beside the database (large ones, on SQLite by default).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``hub_relay_messages.frame_file``: the name of the file holding the frame
    (the ``frame`` column is then empty), or NULL when the frame is in the row."""
    with op.batch_alter_table("hub_relay_messages") as batch:
        batch.add_column(sa.Column("frame_file", sa.String(), nullable=True))


def downgrade() -> None:
    """Drop ``hub_relay_messages.frame_file`` (frames kept in files are lost)."""
    with op.batch_alter_table("hub_relay_messages") as batch:
        batch.drop_column("frame_file")
