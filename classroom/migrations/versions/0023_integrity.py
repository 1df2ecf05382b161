"""Academic integrity: course settings, deadline snapshots, similarity runs, audit purges; purge-only deletes.

The audit and activity logs stay append-only, except for the retention purge: a DELETE passes only inside a
transaction that set `cwc.retention_purge` to 'on' (the purge job does, and records what it removed).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _append_only(table: str, message: str, purge: bool) -> str:
    allow = (
        "IF TG_OP = 'DELETE' AND current_setting('cwc.retention_purge', true) = 'on' THEN RETURN OLD; END IF;"
        if purge
        else ""
    )
    return f"""
        CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {allow}
            RAISE EXCEPTION '{message}';
        END $$;
    """


def upgrade() -> None:
    op.create_table(
        "integrity_settings",
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("campus_ranges", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("record_commands", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("snapshot_path", sa.String(128), nullable=False, server_default="homework/{assignment}"),
        sa.Column("similarity_threshold", sa.Integer(), nullable=False, server_default="60"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("similarity_threshold BETWEEN 1 AND 100", name="ck_integrity_settings_similarity_threshold"),
    )
    op.create_table(
        "deadline_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(255), nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("s3_key", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=True),
        sa.UniqueConstraint("workspace_id", "link_key", name="uq_deadline_snapshots_ws_link"),
    )
    op.create_index("ix_deadline_snapshots_course_id", "deadline_snapshots", ["course_id"])
    op.create_index("ix_deadline_snapshots_person_id", "deadline_snapshots", ["person_id"])
    op.create_table(
        "similarity_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("link_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("starter", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("pairs", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_similarity_runs_status"),
    )
    op.create_index("ix_similarity_runs_course_id", "similarity_runs", ["course_id"])
    op.create_table(
        "audit_purges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("audit_events", sa.Integer(), nullable=False),
        sa.Column("activity_events", sa.Integer(), nullable=False),
        sa.Column("first_event_id", sa.BigInteger(), nullable=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=True),
        sa.Column("last_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.execute(
        _append_only("audit_events", "audit_events is append-only (% refused)", True).replace(
            "'audit_events is append-only (% refused)'", "'audit_events is append-only (% refused)', TG_OP"
        )
    )
    op.execute(_append_only("activity_events", "activity_events is append-only", True))


def downgrade() -> None:
    op.execute(
        _append_only("audit_events", "audit_events is append-only (% refused)", False).replace(
            "'audit_events is append-only (% refused)'", "'audit_events is append-only (% refused)', TG_OP"
        )
    )
    op.execute(_append_only("activity_events", "activity_events is append-only", False))
    op.drop_table("audit_purges")
    op.drop_table("similarity_runs")
    op.drop_table("deadline_snapshots")
    op.drop_table("integrity_settings")
