"""Per-student spend totals kept by triggers on spend_daily, so the minute's sweep does not sum the whole term.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

# One function for the three statement-level triggers (a trigger with transition tables has one event): a
# single upsert of each student's change, inserted rows adding, deleted rows subtracting, updated rows both.
APPLY = """
CREATE FUNCTION spend_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO spend_totals (course_id, person_id, spent)
        SELECT course_id, person_id, SUM(compute + storage) FROM new_rows GROUP BY 1, 2
        ON CONFLICT (course_id, person_id) DO UPDATE SET spent = spend_totals.spent + EXCLUDED.spent;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO spend_totals (course_id, person_id, spent)
        SELECT course_id, person_id, SUM(delta) FROM (
            SELECT course_id, person_id, compute + storage AS delta FROM new_rows
            UNION ALL
            SELECT course_id, person_id, -(compute + storage) FROM old_rows
        ) changes GROUP BY 1, 2
        ON CONFLICT (course_id, person_id) DO UPDATE SET spent = spend_totals.spent + EXCLUDED.spent;
    ELSE
        UPDATE spend_totals t SET spent = t.spent - o.spent
        FROM (SELECT course_id, person_id, SUM(compute + storage) AS spent FROM old_rows GROUP BY 1, 2) o
        WHERE t.course_id = o.course_id AND t.person_id = o.person_id;
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "spend_totals",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("spent", sa.Numeric(precision=20, scale=12), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "person_id", name=op.f("pk_spend_totals")),
    )
    op.execute(APPLY)
    op.execute(
        "CREATE TRIGGER spend_totals_insert AFTER INSERT ON spend_daily REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION spend_totals_apply()"
    )
    op.execute(
        "CREATE TRIGGER spend_totals_update AFTER UPDATE ON spend_daily "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION spend_totals_apply()"
    )
    op.execute(
        "CREATE TRIGGER spend_totals_delete AFTER DELETE ON spend_daily REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION spend_totals_apply()"
    )
    op.execute(
        "INSERT INTO spend_totals (course_id, person_id, spent) "
        "SELECT course_id, person_id, SUM(compute + storage) FROM spend_daily GROUP BY 1, 2"
    )


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER spend_totals_{event} ON spend_daily")
    op.execute("DROP FUNCTION spend_totals_apply()")
    op.drop_table("spend_totals")
