"""Staff levels are the owner's: the roles NRPS reports kept apart from launch roles, and owner-set levels pinned.

`enrollments.lti_roles` keeps the roles of the latest launch; `nrps_roles` the roles of the latest roster entry
(Moodle reports its non-editing teachers as Learner there while launching them as Instructor). `level_pinned`
marks a level the course owner chose: no launch or sync changes it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "enrollments",
        sa.Column(
            "nrps_roles",
            postgresql.ARRAY(sa.String(length=255)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.add_column("enrollments", sa.Column("level_pinned", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("enrollments", "level_pinned")
    op.drop_column("enrollments", "nrps_roles")
