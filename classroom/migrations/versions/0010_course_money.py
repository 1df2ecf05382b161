"""Course charges: costs booked to the course (shared EFS, snapshots, S3 archives, transfer out, orphans).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course_charges",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('efs', 'snapshot', 'archive', 'transfer', 'orphan')", name=op.f("ck_course_charges_kind")
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_course_charges_amount")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_course_charges_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_charges")),
        sa.UniqueConstraint("course_id", "kind", "ref", "period_start", name="uq_course_charges_once"),
    )
    op.create_index(op.f("ix_course_charges_course_id"), "course_charges", ["course_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_course_charges_course_id"), table_name="course_charges")
    op.drop_table("course_charges")
