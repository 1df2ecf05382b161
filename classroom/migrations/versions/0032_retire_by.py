"""Who set a workspace's retirement date (`retire_after`): 'term-end' for the closure's own mark, else the staff
member's or student's request. A reopened course clears the closure's marks only (issue 11, item 5: disks end,
but not those of a course in session again).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("retire_by", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("workspaces", "retire_by")
