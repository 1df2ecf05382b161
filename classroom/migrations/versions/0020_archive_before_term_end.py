"""Archives before term end (when the agent reported, when the home last changed, a start for archiving only),
and their retention (each archive's recorded expiry, and what the purge job deleted).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = (
    ("archive_reported_at", sa.DateTime(timezone=True)),  # when the agent's report arrived
    ("home_changed_at", sa.DateTime(timezone=True)),  # the last heartbeat that counted changed files
    ("archiving_until", sa.DateTime(timezone=True)),  # started for its archive only: the sweep spares it until then
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("workspaces", sa.Column(name, kind, nullable=True))
    op.add_column("workspace_archives", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspace_archives", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE workspace_archives SET expires_at = created_at + retain_days * interval '1 day'")
    op.create_index("ix_workspace_archives_expires_at", "workspace_archives", ["expires_at"])
    op.create_table(
        "archive_purges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "archive_id",
            sa.Integer(),
            sa.ForeignKey("workspace_archives.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),  # fmt: skip
        sa.Column("course_id", sa.Integer(), nullable=False, index=True),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("s3_key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_purges")
    op.drop_index("ix_workspace_archives_expires_at", table_name="workspace_archives")
    op.drop_column("workspace_archives", "purged_at")
    op.drop_column("workspace_archives", "expires_at")
    for name, _ in reversed(COLUMNS):
        op.drop_column("workspaces", name)
