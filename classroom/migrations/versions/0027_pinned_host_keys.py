"""Pinned SSH host keys of a workspace's instance (issue 17 on EC2): what its agent reported first.

Observed state, apart from intent: the keys the agent read from /etc/ssh/ssh_host_*_key.pub, the instance they
were reported for (a pin counts only for that instance: a reset or a new instance starts without one), when, and a
later report that differed (refused and flagged, never a silent replacement).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("ssh_host_keys", sa.Text(), nullable=False, server_default=""))
    op.add_column("workspaces", sa.Column("ssh_host_keys_instance_id", sa.String(32), nullable=True))
    op.add_column("workspaces", sa.Column("ssh_host_keys_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspaces", sa.Column("ssh_host_keys_refused", sa.Text(), nullable=False, server_default=""))
    op.add_column("workspaces", sa.Column("ssh_host_keys_refused_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in ("ssh_host_keys_refused_at", "ssh_host_keys_refused", "ssh_host_keys_at",
                 "ssh_host_keys_instance_id", "ssh_host_keys"):  # fmt: skip
        op.drop_column("workspaces", name)
