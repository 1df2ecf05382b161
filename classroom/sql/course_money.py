"""The course's money statements: its position (total, spent, lines, disks and what follows the term), allocation,
and charges."""

from __future__ import annotations

from sqlalchemy import text

from classroom.budget.disk_end import ARCHIVE_MAX_GB
from classroom.models import EnrollmentStatus
from classroom.roles import StaffLevel
from classroom.sql import sql_states, sql_value
from classroom.workspaces.archive_rules import ARCHIVE_RUN_ENDS
from classroom.workspaces.lifecycle import COMMITTED_DISK

# Raw: one pass per course over four aggregates, shared by the launch check and the sweep (courses = NULL: all).
POSITION_SQL = text(f"""
SELECT p.course_id, p.total_budget AS total, c.term_end, c.time_zone, p.disk_grace_days, p.archive_retention_days,
       COALESCE((SELECT SUM(t.spent) FROM spend_totals t WHERE t.course_id = p.course_id), 0) AS spent,
       COALESCE((SELECT SUM(x.amount) FROM course_charges x  -- a student's line is in spend_totals
                 WHERE x.course_id = p.course_id AND x.person_id IS NULL), 0) AS charges, d.disk_gb, d.archive_gb,
       o.window_types, o.window_secs
FROM course_policies p JOIN courses c ON c.id = p.course_id
CROSS JOIN LATERAL (  -- the disks held, and what their archives may be (each at most ARCHIVE_MAX_GB)
    SELECT COALESCE(SUM(w.volume_gb), 0) AS disk_gb,
           COALESCE(SUM(LEAST(w.volume_gb, {ARCHIVE_MAX_GB})), 0) AS archive_gb
    FROM workspaces w WHERE w.course_id = p.course_id AND w.state IN {sql_states(COMMITTED_DISK)}
) d
CROSS JOIN LATERAL (  -- open starts for the archive only: the running not yet metered (booked to the course) to the
    -- window's end, from the later of the start's request and the last metering
    SELECT COALESCE(array_agg(w.instance_type ORDER BY w.id), '{{}}') AS window_types,
           COALESCE(array_agg(GREATEST(0, EXTRACT(EPOCH FROM w.archiving_until
                                                  - GREATEST(w.metered_until, w.archive_started_at)))
                              ORDER BY w.id), '{{}}') AS window_secs
    FROM workspaces w WHERE w.course_id = p.course_id AND w.archiving_until > CAST(:now AS timestamptz)
                        AND w.state NOT IN {sql_states(ARCHIVE_RUN_ENDS)}
) o
WHERE CAST(:course AS int) IS NULL OR p.course_id = CAST(:course AS int)
""")

# Raw: the course total against base budgets of active students and grants, in one row.
ALLOCATION_SQL = text(f"""
SELECT p.total_budget AS total, p.budget_per_student AS per_student, s.students,
       p.budget_per_student * s.students AS base,
       COALESCE((SELECT SUM(g.amount) FROM budget_grants g WHERE g.course_id = p.course_id), 0) AS grants
FROM course_policies p
CROSS JOIN LATERAL (SELECT COUNT(*) AS students FROM enrollments e
                    WHERE e.course_id = p.course_id AND e.level = {sql_value(StaffLevel.STUDENT)}
                      AND e.status = {sql_value(EnrollmentStatus.ACTIVE)}) s
WHERE p.course_id = :course
""")

# Raw: one statement for any number of charges, each booked once ((course, kind, ref, period start) is unique); a
# line attributed to a student also goes to their spend_daily, so spend_totals counts it in the course position once.
BOOK_SQL = text("""
WITH ins AS (
    INSERT INTO course_charges (course_id, person_id, kind, ref, period_start, period_end, quantity, amount,
                                created_at)
    SELECT u.* FROM unnest(CAST(:courses AS int[]), CAST(:people AS int[]), CAST(:kinds AS text[]),
                           CAST(:refs AS text[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
                           CAST(:qty AS numeric[]), CAST(:amounts AS numeric[]), CAST(:ats AS timestamptz[]))
         AS u(course_id)
    WHERE EXISTS (SELECT 1 FROM courses c WHERE c.id = u.course_id)  -- a tag naming no course books nothing
    ON CONFLICT ON CONSTRAINT uq_course_charges_once DO NOTHING
    RETURNING id, course_id, person_id, period_end, amount
),
daily AS (  -- a line attributed to a student counts in their spend, on the course-local day it ends
    INSERT INTO spend_daily (course_id, person_id, day, compute, storage, running_seconds, transfer)
    SELECT i.course_id, i.person_id, (i.period_end AT TIME ZONE
               CASE WHEN c.time_zone IN (SELECT unnest(CAST(:zones AS text[]))) THEN c.time_zone ELSE 'UTC' END)::date,
           0, 0, 0, SUM(i.amount)
    FROM ins i JOIN courses c ON c.id = i.course_id
    WHERE i.person_id IS NOT NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (course_id, person_id, day) DO UPDATE SET transfer = spend_daily.transfer + EXCLUDED.transfer
    RETURNING 1
)
SELECT id FROM ins
""")
