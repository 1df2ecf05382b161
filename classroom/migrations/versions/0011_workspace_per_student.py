"""One workspace per student, assignment folders, and disks that end (archives in S3, grace before deletion).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "course_policies", sa.Column("workspace_scope", sa.String(length=16), server_default="student", nullable=False)
    )
    op.add_column("course_policies", sa.Column("close_after_due", sa.Boolean(), server_default="false", nullable=False))
    op.add_column(
        "course_policies", sa.Column("archive_retention_days", sa.Integer(), server_default="365", nullable=False)
    )
    op.add_column("course_policies", sa.Column("disk_grace_days", sa.Integer(), server_default="14", nullable=False))
    op.create_check_constraint(
        op.f("ck_course_policies_workspace_scope"), "course_policies", "workspace_scope IN ('student', 'assignment')"
    )
    op.create_check_constraint(
        op.f("ck_course_policies_archive_retention_days"),
        "course_policies",
        "archive_retention_days BETWEEN 1 AND 3650",
    )
    op.create_check_constraint(
        op.f("ck_course_policies_disk_grace_days"), "course_policies", "disk_grace_days BETWEEN 0 AND 365"
    )
    # Existing courses keep what they had: one workspace per assignment link.
    op.execute("UPDATE course_policies SET workspace_scope = 'assignment'")
    op.add_column("workspaces", sa.Column("retire_after", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "workspace_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("folder", sa.String(length=128), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_folders_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_folders")),
        sa.UniqueConstraint("workspace_id", "link_key", name="uq_workspace_folders_ws_link"),
    )
    op.create_table(
        "workspace_archives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("s3_key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("retain_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_archives_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_archives")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_workspace_archives_workspace_id")),
    )
    op.create_index(op.f("ix_workspace_archives_course_id"), "workspace_archives", ["course_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_workspace_archives_course_id"), table_name="workspace_archives")
    op.drop_table("workspace_archives")
    op.drop_table("workspace_folders")
    op.drop_column("workspaces", "retire_after")
    for name in ("disk_grace_days", "archive_retention_days", "workspace_scope"):
        op.drop_constraint(op.f(f"ck_course_policies_{name}"), "course_policies", type_="check")
    for name in ("disk_grace_days", "archive_retention_days", "close_after_due", "workspace_scope"):
        op.drop_column("course_policies", name)
