"""The course's money statements: its position (total, spent, lines, disks until term end) and allocation."""

from __future__ import annotations

from sqlalchemy import text

from classroom.models import EnrollmentStatus
from classroom.roles import StaffLevel
from classroom.sql import sql_states, sql_value
from classroom.workspaces.lifecycle import RESERVED_DISK

# Raw: one pass per course over four aggregates, shared by the launch check and the sweep (courses = NULL: all).
POSITION_SQL = text(f"""
SELECT p.course_id, p.total_budget AS total, c.term_end, c.time_zone,
       COALESCE((SELECT SUM(t.spent) FROM spend_totals t WHERE t.course_id = p.course_id), 0) AS spent,
       COALESCE((SELECT SUM(x.amount) FROM course_charges x  -- a student's line is in spend_totals
                 WHERE x.course_id = p.course_id AND x.person_id IS NULL), 0) AS charges,
       COALESCE((SELECT SUM(w.volume_gb) FROM workspaces w
                 WHERE w.course_id = p.course_id AND w.state IN {sql_states(RESERVED_DISK)}), 0) AS disk_gb
FROM course_policies p JOIN courses c ON c.id = p.course_id
WHERE CAST(:course AS int) IS NULL OR p.course_id = CAST(:course AS int)
""")

# Raw: the course total against base budgets of active students and grants, in one row.
ALLOCATION_SQL = text(f"""
SELECT p.total_budget AS total,
       p.budget_per_student * (SELECT COUNT(*) FROM enrollments e
                               WHERE e.course_id = p.course_id AND e.level = {sql_value(StaffLevel.STUDENT)}
                                 AND e.status = {sql_value(EnrollmentStatus.ACTIVE)})
           AS base,
       COALESCE((SELECT SUM(g.amount) FROM budget_grants g WHERE g.course_id = p.course_id), 0) AS grants
FROM course_policies p WHERE p.course_id = :course
""")
