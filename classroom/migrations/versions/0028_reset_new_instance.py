"""A reset's new EC2 instance (issue 17 on EC2): its host keys as its own agent reported them, when that agent was
last seen, when it was launched, and when the old instance's end was asked for.

The new instance is not the workspace's until the switch, so its pin lives on the reset row (the workspace row's
pin stays the old instance's, which the student keeps using meanwhile); the switch copies it to the workspace.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspace_resets", sa.Column("new_host_keys", sa.Text(), nullable=False, server_default=""))
    op.add_column("workspace_resets", sa.Column("new_host_keys_refused", sa.Text(), nullable=False, server_default=""))
    op.add_column("workspace_resets", sa.Column("new_agent_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspace_resets", sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspace_resets", sa.Column("old_end_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in ("old_end_requested_at", "launched_at", "new_agent_seen_at", "new_host_keys_refused", "new_host_keys"):
        op.drop_column("workspace_resets", name)
