"""The final archive comes after the lockout (issue 11, item 5; audit gap 4): when a workspace's student was
locked out for its last archive (sessions ended, keys removed through the heartbeat answer), and when an answer
first carried that lockout (a report arriving in that heartbeat or before predates it and is refused).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("locked_out_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspaces", sa.Column("lockout_answered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("workspaces", "lockout_answered_at")
    op.drop_column("workspaces", "locked_out_at")
