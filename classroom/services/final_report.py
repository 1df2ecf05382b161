"""The term's final report: fetch the rows (a fixed number of statements) and compute the figures.

The pure part is classroom.budget.final_figures. Shared by the page, the PDF and the term-end email. Money comes
from the ledger (spend_daily and course charges, through the cost report), staff activity from the audit trail by
action name, efficiency from agent heartbeats.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from classroom.budget.final_figures import (
    ACTIVE_CPU,
    HELP_REQUESTED,
    STAFF_ACTIONS,
    ActionCount,
    Archives,
    FinalReport,
    IdleStop,
    PreviousTerm,
    ReportInput,
    StudentUse,
    Week,
    compute_final_report,
)
from classroom.models import AuditEvent, Course, CoursePolicy, Person, RequestStatus, TemplateRequest
from classroom.roles import StaffLevel
from classroom.services.final_report_sources import flagged_pairs
from classroom.services.reports import course_report
from classroom.sql import sql_states, sql_value
from classroom.workspaces.lifecycle import WorkspaceState

RESUMED = (WorkspaceState.STARTING, WorkspaceState.RUNNING)  # an idle-stopped workspace was started again

# Raw because each row needs correlated subqueries (the next start, the workspace's ledger rate).
IDLE_STOPS_SQL = text(f"""
SELECT e.at AS stopped_at,
       (SELECT min(n.at) FROM workspace_events n
         WHERE n.workspace_id = e.workspace_id AND n.at > e.at AND n.to_state IN {sql_states(RESUMED)}) AS resumed_at,
       COALESCE((SELECT sum(l.compute) * 3600 / NULLIF(sum(l.running_seconds), 0)
                   FROM ledger_entries l WHERE l.workspace_id = e.workspace_id), 0) AS hourly
FROM workspace_events e JOIN workspaces w ON w.id = e.workspace_id
WHERE w.course_id = :course AND e.actor = 'enforcement' AND e.reason LIKE 'idle%'
ORDER BY e.at
""")

# Raw for the FILTER clause; "active" is the agent's own rule (provisioning.agent_service.Report.active).
HEARTBEATS_SQL = text("""
SELECT w.person_id, count(*) AS beats,
       count(*) FILTER (WHERE h.ssh_sessions > 0 OR h.jupyter_active OR h.cpu_pct >= :cpu OR h.changed_files > 0)
FROM heartbeats h JOIN workspaces w ON w.id = h.workspace_id
WHERE w.course_id = :course
GROUP BY w.person_id
""")

ARCHIVES_SQL = text("""
SELECT count(*), COALESCE(sum(size_bytes), 0), min(s3_key), max(s3_key),
       max(created_at + make_interval(days => retain_days))
FROM workspace_archives WHERE course_id = :course
""")

# Raw for the JSON field join: a debug session's start and end events share details->>'session'.
DEBUG_LENGTHS_SQL = text("""
SELECT EXTRACT(EPOCH FROM min(e.at) - s.at)::bigint
FROM audit_events s JOIN audit_events e
  ON e.course_id = s.course_id AND e.action = 'debug.session.end' AND e.details ->> 'session' = s.details ->> 'session'
WHERE s.course_id = :course AND s.action = 'debug.session.start' AND s.details ? 'session'
GROUP BY s.id, s.at
""")

PREVIOUS_SQL = text(f"""
SELECT c.id, c.label, c.title,
       COALESCE((SELECT sum(compute + storage + transfer) FROM spend_daily d WHERE d.course_id = c.id), 0)
       + COALESCE((SELECT sum(amount) FROM course_charges k WHERE k.course_id = c.id AND k.person_id IS NULL), 0),
       (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.level = {sql_value(StaffLevel.STUDENT)})
FROM courses c
WHERE c.platform_id = :platform AND c.label = :label AND c.label <> '' AND c.id <> :course
  AND c.term_end IS NOT NULL AND c.term_end < :before
ORDER BY c.term_end DESC LIMIT 1
""")


def _end_at(course: Course) -> datetime | None:
    if course.term_end is None:
        return None
    return datetime.combine(course.term_end, time.max, ZoneInfo(course.time_zone)).astimezone(UTC)


def _common_prefix(a: str | None, b: str | None) -> str:
    """Keys sort, so the common prefix of the smallest and largest is everyone's; cut at the last '/'."""
    if not a or not b:
        return ""
    prefix = os.path.commonprefix([a, b])
    return prefix[: prefix.rfind("/") + 1]


def _actions(session: Session, course_id: int) -> tuple[ActionCount, ...]:
    name = func.coalesce(func.nullif(Person.name, ""), func.nullif(func.concat_ws(" ", Person.given_name,
                                                                                  Person.family_name), ""))  # fmt: skip
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.actor_person_id, name, func.count())
        .outerjoin(Person, Person.id == AuditEvent.actor_person_id)
        .where(AuditEvent.course_id == course_id, AuditEvent.action.in_([*STAFF_ACTIONS, HELP_REQUESTED]))
        .group_by(AuditEvent.action, AuditEvent.actor_person_id, name)
    ).all()
    return tuple(ActionCount(a, who, name or f"person {who}", int(n)) for a, who, name, n in rows)


def _previous(session: Session, course: Course) -> PreviousTerm | None:
    before = course.term_start or course.term_end
    if before is None:
        return None
    row = session.execute(
        PREVIOUS_SQL, {"platform": course.platform_id, "label": course.label, "course": course.id, "before": before}
    ).first()
    if row is None:
        return None
    _, label, title, spent, students = row
    return PreviousTerm(f"{label} - {title}" if title and title != label else label, Decimal(spent), int(students))


def final_report_input(session: Session, course: Course) -> ReportInput | None:
    """Fetch what the report needs (about a dozen statements whatever the class size); None when not set up."""
    policy = session.get(CoursePolicy, course.id)
    cost = course_report(session, course)
    if policy is None or cost is None:
        return None
    beats = {p: (int(n), int(a)) for p, n, a in session.execute(
        HEARTBEATS_SQL, {"course": course.id, "cpu": ACTIVE_CPU})}  # fmt: skip
    students = tuple(
        StudentUse(r.person_id, r.name, r.spent, r.cap, r.running_seconds, *beats.get(r.person_id, (0, 0)))
        for r in cost.rows
    )
    stops = tuple(IdleStop(a, b, Decimal(h)) for a, b, h in session.execute(IDLE_STOPS_SQL, {"course": course.id}))
    n, size, first, last, expires = session.execute(ARCHIVES_SQL, {"course": course.id}).one()
    refused = session.scalar(
        select(func.count(TemplateRequest.id)).where(
            TemplateRequest.course_id == course.id, TemplateRequest.status == RequestStatus.DENIED
        )
    )
    return ReportInput(
        course_name=course.display_name,
        term_start=course.term_start,
        term_end=course.term_end,
        term_end_at=_end_at(course),
        total_budget=policy.total_budget,
        budget_per_student=policy.budget_per_student,
        course_lines=sum((line.amount for line in cost.course_lines), Decimal(0)),
        idle_minutes=policy.idle_stop_minutes,
        students=students,
        weeks=tuple(Week(w.start, w.term_week, w.spent) for w in cost.weeks),
        idle_stops=stops,
        actions=_actions(session, course.id),
        templates_refused=int(refused or 0),
        flagged_pairs=flagged_pairs(session, course.id),
        archives=Archives(int(n), int(size), _common_prefix(first, last), expires),
        previous=_previous(session, course),
        debug_seconds=tuple(int(n) for (n,) in session.execute(DEBUG_LENGTHS_SQL, {"course": course.id})),
    )


def final_report(session: Session, course: Course) -> FinalReport | None:
    """The course's final report (None when the course is not set up)."""
    inp = final_report_input(session, course)
    return compute_final_report(inp) if inp else None


__all__ = ["final_report", "final_report_input"]
