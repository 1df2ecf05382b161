"""A start for the archive only is the course's cost (issue 11, item 5): when it was asked for
(workspaces.archive_started_at), and the course line its running is booked as (course_charges kind 'archive_run').

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

OLD = "kind IN ('efs', 'snapshot', 'archive', 'transfer', 'orphan')"
NEW = "kind IN ('efs', 'snapshot', 'archive', 'transfer', 'orphan', 'archive_run')"


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("archive_started_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_course_charges_kind"), "course_charges", type_="check")
    op.create_check_constraint(op.f("ck_course_charges_kind"), "course_charges", NEW)


def downgrade() -> None:
    op.execute("DELETE FROM course_charges WHERE kind = 'archive_run'")
    op.drop_constraint(op.f("ck_course_charges_kind"), "course_charges", type_="check")
    op.create_check_constraint(op.f("ck_course_charges_kind"), "course_charges", OLD)
    op.drop_column("workspaces", "archive_started_at")
