"""Office hours: help requests (one unresolved per student) and staff-student messages with read state.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ATTACHMENT_MAX_BYTES = 256 * 1024  # classroom.models.ta.ATTACHMENT_MAX_BYTES at the time of writing


def upgrade() -> None:
    op.create_table(
        "help_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("file_path", sa.String(length=512), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("claimed_by", sa.Integer(), sa.ForeignKey("people.id", ondelete="SET NULL"), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("resolved_by", sa.Integer(), sa.ForeignKey("people.id", ondelete="SET NULL"), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'claimed', 'resolved')", name="status"),
        sa.CheckConstraint("line IS NULL OR line >= 1", name="line"),
        sa.CheckConstraint(
            "(status = 'open' AND claimed_by IS NULL AND resolved_at IS NULL)"
            " OR (status = 'claimed' AND claimed_by IS NOT NULL AND resolved_at IS NULL)"
            " OR (status = 'resolved' AND resolved_at IS NOT NULL)",
            name="status_columns",
        ),
    )
    op.create_index(
        "uq_help_requests_one_unresolved",
        "help_requests",
        ["course_id", "person_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_index("ix_help_requests_course_status", "help_requests", ["course_id", "status"])
    op.create_table(
        "staff_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_student", sa.Boolean(), nullable=False),
        sa.Column("reply_to", sa.BigInteger(), sa.ForeignKey("staff_messages.id", ondelete="SET NULL"), nullable=True),
        sa.Column(
            "help_request_id", sa.Integer(), sa.ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("file_path", sa.String(length=512), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("attachment_name", sa.String(length=255), nullable=False),
        sa.Column("attachment_type", sa.String(length=100), nullable=False),
        sa.Column("attachment_size", sa.Integer(), nullable=False),
        sa.Column("attachment", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("shown_at_login_at", TS, nullable=True),
        sa.UniqueConstraint("author_id", "client_key", name="uq_staff_messages_author_key"),
        sa.CheckConstraint("line IS NULL OR line >= 1", name="line"),
        sa.CheckConstraint(f"attachment_size BETWEEN 0 AND {ATTACHMENT_MAX_BYTES}", name="attachment_size"),
    )
    op.create_index("ix_staff_messages_course_student", "staff_messages", ["course_id", "student_id"])


def downgrade() -> None:
    op.drop_table("staff_messages")
    op.drop_table("help_requests")
