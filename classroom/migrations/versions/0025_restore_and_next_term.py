"""Restore a student after term end, and next term's duplicate (issue 20 items 5 and 6).

`student_restores`: one per restore of a student's archived home (days, top-up, until when access is open, when
it closed again); at most one open per student and course. `courses.previous_course_id`: the course a duplicate
came from (lineage); `courses.context_history`: the LMS's `$Context.id.history` claim as last launched.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=20, scale=12)
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "student_restores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "archive_id", sa.Integer(), sa.ForeignKey("workspace_archives.id", ondelete="RESTRICT"), nullable=False
        ),  # fmt: skip
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="SET NULL"), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("top_up", MONEY, nullable=False, server_default="0"),
        sa.Column("access_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("days BETWEEN 1 AND 60", name="restore_days"),
    )
    op.create_index(
        "uq_student_restores_open",
        "student_restores",
        ["course_id", "person_id"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index("ix_student_restores_workspace_id", "student_restores", ["workspace_id"])
    op.add_column(
        "courses",
        sa.Column("previous_course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="SET NULL"), nullable=True),
    )
    op.add_column("courses", sa.Column("context_history", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("courses", "context_history")
    op.drop_column("courses", "previous_course_id")
    op.drop_index("ix_student_restores_workspace_id", table_name="student_restores")
    op.drop_index("uq_student_restores_open", table_name="student_restores")
    op.drop_table("student_restores")
