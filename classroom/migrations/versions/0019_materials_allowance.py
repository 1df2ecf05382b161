"""Course materials: a storage allowance per course (bytes under the course's S3 prefix), 200 GiB by default.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DEFAULT_BYTES = 200 * 1024**3


def upgrade() -> None:
    op.add_column(
        "course_policies",
        sa.Column("materials_allowance_bytes", sa.BigInteger(), nullable=False, server_default=str(DEFAULT_BYTES)),
    )
    op.create_check_constraint(
        "ck_course_policies_materials_allowance_bytes", "course_policies", "materials_allowance_bytes > 0"
    )


def downgrade() -> None:
    op.drop_constraint("ck_course_policies_materials_allowance_bytes", "course_policies", type_="check")
    op.drop_column("course_policies", "materials_allowance_bytes")
