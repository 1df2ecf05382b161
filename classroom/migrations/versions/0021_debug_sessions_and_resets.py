"""Debug sessions and their recordings, workspace resets, home backups, reset keep paths, heartbeat mem/disk.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("heartbeats", sa.Column("mem_pct", sa.Numeric(5, 2), nullable=True))
    op.add_column("heartbeats", sa.Column("disk_pct", sa.Numeric(5, 2), nullable=True))
    op.create_table(
        "debug_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("student_person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "cert_id", sa.Integer, sa.ForeignKey("staff_ssh_certs.id", ondelete="CASCADE"), nullable=False, unique=True
        ),  # fmt: skip
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("full_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_by_person_id", sa.Integer, nullable=True),
        sa.CheckConstraint("mode IN ('view', 'full')", name="ck_debug_sessions_mode"),
        sa.CheckConstraint("mode = 'view' OR full_reason <> ''", name="ck_debug_sessions_full_reason"),
    )
    op.create_index("ix_debug_sessions_ws", "debug_sessions", ["workspace_id", "started_at"])
    op.create_table(
        "debug_recordings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "debug_session_id",
            sa.Integer,
            sa.ForeignKey("debug_sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),  # fmt: skip
        sa.Column("s3_key", sa.Text, nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "workspace_backups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column(
            "workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
        ),  # fmt: skip
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("s3_key", sa.Text, nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by_person_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "workspace_resets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("progress", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("old_instance_id", sa.String(32), nullable=False),
        sa.Column("new_instance_id", sa.String(32), nullable=True),
        sa.Column("new_agent_token_hash", sa.String(64), nullable=True),
        sa.Column("backup_id", sa.Integer, sa.ForeignKey("workspace_backups.id"), nullable=True),
        sa.Column("kept", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'backing_up', 'launching', 'restoring', 'switching', 'done', 'failed')",
            name="ck_workspace_resets_state",
        ),
    )
    op.create_index("uq_workspace_resets_one_active", "workspace_resets", ["workspace_id"], unique=True,
                    postgresql_where=sa.text("state NOT IN ('done', 'failed')"))  # fmt: skip
    op.create_table(
        "course_reset_settings",
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("keep_paths", JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("course_reset_settings", "workspace_resets", "workspace_backups", "debug_recordings",
                  "debug_sessions"):  # fmt: skip
        op.drop_table(table)
    op.drop_column("heartbeats", "disk_pct")
    op.drop_column("heartbeats", "mem_pct")
