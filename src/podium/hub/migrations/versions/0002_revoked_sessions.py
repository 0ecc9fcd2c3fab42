"""Web sessions ended by logging out, so their cookies stop working at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``hub_revoked_sessions``."""
    op.create_table(
        "hub_revoked_sessions",
        sa.Column("session_id", sa.String(), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop ``hub_revoked_sessions`` (logged-out cookies work again until they expire)."""
    op.drop_table("hub_revoked_sessions")
