"""A failed home archive is tried again and staff can act on a kept disk (issue 11, item 5): how many tries
failed, when the next one is due, and when staff chose to delete the disk without an archive.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("archive_tries", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("workspaces", sa.Column("archive_retry_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workspaces", sa.Column("archive_waived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(op.f("ck_workspaces_archive_tries"), "workspaces", "archive_tries >= 0")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_workspaces_archive_tries"), "workspaces", type_="check")
    for name in ("archive_waived_at", "archive_retry_at", "archive_tries"):
        op.drop_column("workspaces", name)
