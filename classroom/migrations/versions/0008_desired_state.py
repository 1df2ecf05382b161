"""Desired state apart from the observed one, and how the drive toward a wanted stop is going.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DESIRED = postgresql.ENUM("running", "stopped", "hibernated", "terminated", name="workspace_desired_state")
UNCONVERGED = (
    "desired_state IN ('stopped', 'hibernated') AND state NOT IN ('stopped', 'hibernated', 'terminated', 'failed')"
)


def upgrade() -> None:
    DESIRED.create(op.get_bind())
    desired = postgresql.ENUM(name="workspace_desired_state", create_type=False)
    op.add_column("workspaces", sa.Column("desired_state", desired, nullable=False, server_default="running"))
    op.add_column(
        "workspaces",
        sa.Column("desired_changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("workspaces", sa.Column("stop_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("workspaces", sa.Column("stop_last_error", sa.Text(), nullable=False, server_default=""))
    op.add_column("workspaces", sa.Column("stop_next_try_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspaces", sa.Column("stop_alerted_at", sa.DateTime(timezone=True), nullable=True))
    # Existing rows: intent follows what was last asked (a pending stop keeps being wanted).
    op.execute(
        """
        UPDATE workspaces SET desired_changed_at = state_changed_at, desired_state = CASE
            WHEN state IN ('terminating', 'terminated', 'failed') THEN 'terminated'
            WHEN state = 'hibernated' OR (state = 'stopping' AND stop_mode = 'hibernate') THEN 'hibernated'
            WHEN state IN ('stopping', 'stopped') THEN 'stopped'
            ELSE 'running' END::workspace_desired_state
        """
    )
    op.create_index(
        "ix_workspaces_unconverged_stops",
        "workspaces",
        ["desired_state"],
        postgresql_where=sa.text(UNCONVERGED),
    )


def downgrade() -> None:
    op.drop_index("ix_workspaces_unconverged_stops", table_name="workspaces")
    for column in (
        "stop_alerted_at",
        "stop_next_try_at",
        "stop_last_error",
        "stop_attempts",
        "desired_changed_at",
        "desired_state",
    ):
        op.drop_column("workspaces", column)
    DESIRED.drop(op.get_bind())
