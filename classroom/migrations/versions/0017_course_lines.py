"""Course lines attributed to a student: course_charges.person_id, and spend_daily.transfer (data transfer out
of a student's workspace counts in the student's spend, so spend_totals now sums compute + storage + transfer).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _apply(spent: str) -> str:
    """spend_totals_apply() (migration 0006) with `spent` as each spend_daily row's contribution."""
    return f"""
CREATE OR REPLACE FUNCTION spend_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO spend_totals (course_id, person_id, spent)
        SELECT course_id, person_id, SUM({spent}) FROM new_rows GROUP BY 1, 2
        ON CONFLICT (course_id, person_id) DO UPDATE SET spent = spend_totals.spent + EXCLUDED.spent;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO spend_totals (course_id, person_id, spent)
        SELECT course_id, person_id, SUM(delta) FROM (
            SELECT course_id, person_id, {spent} AS delta FROM new_rows
            UNION ALL
            SELECT course_id, person_id, -({spent}) FROM old_rows
        ) changes GROUP BY 1, 2
        ON CONFLICT (course_id, person_id) DO UPDATE SET spent = spend_totals.spent + EXCLUDED.spent;
    ELSE
        UPDATE spend_totals t SET spent = t.spent - o.spent
        FROM (SELECT course_id, person_id, SUM({spent}) AS spent FROM old_rows GROUP BY 1, 2) o
        WHERE t.course_id = o.course_id AND t.person_id = o.person_id;
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.add_column("course_charges", sa.Column("person_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_course_charges_person_id_people"),
        "course_charges",
        "people",
        ["person_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column(
        "spend_daily",
        sa.Column("transfer", sa.Numeric(precision=20, scale=12), server_default="0", nullable=False),
    )
    op.execute(_apply("compute + storage + transfer"))


def downgrade() -> None:
    op.execute(_apply("compute + storage"))
    op.execute(
        "UPDATE spend_totals t SET spent = t.spent - d.transfer FROM (SELECT course_id, person_id, SUM(transfer) "
        "AS transfer FROM spend_daily GROUP BY 1, 2) d WHERE t.course_id = d.course_id AND t.person_id = d.person_id"
    )
    op.drop_column("spend_daily", "transfer")
    op.drop_constraint(op.f("fk_course_charges_person_id_people"), "course_charges", type_="foreignkey")
    op.drop_column("course_charges", "person_id")
