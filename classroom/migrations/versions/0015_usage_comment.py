"""Usage passback as a comment on each assignment's score, or (as before) as a separate column.

`course_lms.usage_mode` says which; courses that already turned usage passback on keep the column they have.
`lms_grades.usage_comment` carries the usage line posted with the assignment's score, and `score_given` may be
empty: a usage comment on an assignment nobody has graded in the tool is posted without a grade.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("course_lms", sa.Column("usage_mode", sa.String(length=16), nullable=False, server_default="comment"))
    op.create_check_constraint(op.f("ck_course_lms_usage_mode"), "course_lms", "usage_mode IN ('comment', 'column')")
    # Raw SQL: a one-off data move; a course already posting a usage column keeps doing so.
    op.execute("UPDATE course_lms SET usage_mode = 'column' WHERE usage_passback")
    op.add_column("lms_grades", sa.Column("usage_comment", sa.Text(), nullable=False, server_default=""))
    op.alter_column("lms_grades", "score_given", existing_type=sa.Numeric(precision=12, scale=4), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM lms_grades WHERE score_given IS NULL")
    op.alter_column("lms_grades", "score_given", existing_type=sa.Numeric(precision=12, scale=4), nullable=False)
    op.drop_column("lms_grades", "usage_comment")
    op.drop_constraint(op.f("ck_course_lms_usage_mode"), "course_lms", type_="check")
    op.drop_column("course_lms", "usage_mode")
