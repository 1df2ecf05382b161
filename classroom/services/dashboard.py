"""Load the staff dashboard: every student of a course with state, activity, money, help and flags.

Three statements whatever the class size (the policy's budget, the due dates near, and one query joining
per-student aggregates); the decisions are `classroom.dashboard_rules`. See bench/dashboard.py for figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Integer, String, and_, case, cast, func, select, true
from sqlalchemy.orm import Session

from classroom.dashboard_rules import FLAG_WINDOW, INACTIVE_DAYS, STATE_ORDER, StudentFacts
from classroom.models import (
    ActivityEvent,
    AuditEvent,
    BudgetGrant,
    CoursePolicy,
    DueDate,
    Enrollment,
    EnrollmentStatus,
    HelpRequest,
    Person,
    SpendTotal,
    StaffMessage,
    Workspace,
)
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import LIVE

FAILED_ACTIONS = ("workspace.start_failed", "workspace.failed")
RESET_ACTION = "workspace.reset"  # written by the reset flow (issue 17 item 5); subject is the workspace id


def due_soon(session: Session, course_id: int, now: datetime) -> list[datetime]:
    """The course's due dates from now to INACTIVE_DAYS ahead."""
    return list(
        session.scalars(
            select(DueDate.due_at).where(
                DueDate.course_id == course_id,
                DueDate.due_at >= now,
                DueDate.due_at <= now + timedelta(days=INACTIVE_DAYS),
            )
        )
    )


def _best_workspace(course_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202 - a Core subquery
    rank = case({s: i for i, s in enumerate(STATE_ORDER)}, value=cast(Workspace.state, String), else_=99)
    return (
        select(Workspace.person_id, cast(Workspace.state, String).label("state"), Workspace.state_changed_at)
        .where(Workspace.course_id == course_id, Workspace.state.in_(LIVE))
        .order_by(Workspace.person_id, rank, Workspace.id)
        .distinct(Workspace.person_id)
        .subquery()
    )


def _last_activity(course_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202
    newest = (
        select(ActivityEvent.at)
        .where(ActivityEvent.workspace_id == Workspace.id)
        .order_by(ActivityEvent.at.desc())
        .limit(1)
        .correlate(Workspace)
        .lateral()
    )  # one index probe per workspace (ix_activity_events_ws_at), never a scan of the course's events
    return (
        select(Workspace.person_id, func.max(func.greatest(Workspace.last_activity_at, newest.c.at)).label("at"))
        .select_from(Workspace)
        .outerjoin(newest, true())
        .where(Workspace.course_id == course_id)
        .group_by(Workspace.person_id)
        .subquery()
    )


def _audit_flags(course_id: int, since: datetime):  # type: ignore[no-untyped-def]  # noqa: ANN202
    from_details = case(
        (AuditEvent.details["person_id"].astext.regexp_match("^[0-9]{1,9}$"),
         cast(AuditEvent.details["person_id"].astext, Integer)),
    )  # fmt: skip
    person = func.coalesce(Workspace.person_id, from_details).label("person_id")
    return (
        select(
            person,
            func.count().filter(AuditEvent.action.in_(FAILED_ACTIONS)).label("failed"),
            func.max(AuditEvent.at).filter(AuditEvent.action == RESET_ACTION).label("reset_at"),
        )
        .select_from(AuditEvent)
        .outerjoin(Workspace, and_(cast(Workspace.id, String) == AuditEvent.subject, Workspace.course_id == course_id))
        .where(AuditEvent.course_id == course_id, AuditEvent.at >= since)
        .where(AuditEvent.action.in_((*FAILED_ACTIONS, RESET_ACTION)))
        .group_by(person)
        .subquery()
    )


def _help(course_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202
    return (
        select(HelpRequest.person_id, func.count().label("n"), func.min(HelpRequest.id).label("id"))
        .where(HelpRequest.course_id == course_id, HelpRequest.status != "resolved")
        .group_by(HelpRequest.person_id)
        .subquery()
    )


def _messages(course_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202
    unread = StaffMessage.read_at.is_(None)
    return (
        select(
            StaffMessage.student_id,
            func.count().filter(unread, StaffMessage.from_student.is_(False)).label("to_student"),
            func.count().filter(unread, StaffMessage.from_student.is_(True)).label("replies"),
        )
        .where(StaffMessage.course_id == course_id, unread)
        .group_by(StaffMessage.student_id)
        .subquery()
    )


def _grants(course_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202
    return (
        select(BudgetGrant.person_id, func.sum(BudgetGrant.amount).label("amount"))
        .where(BudgetGrant.course_id == course_id, BudgetGrant.person_id.is_not(None))
        .group_by(BudgetGrant.person_id)
        .subquery()
    )


def facts_query(course_id: int, now: datetime):  # type: ignore[no-untyped-def]  # noqa: ANN201 - a Core select
    """The one statement joining every per-student aggregate (bench/dashboard.py explains it)."""
    ws, act, audit = _best_workspace(course_id), _last_activity(course_id), _audit_flags(course_id, now - FLAG_WINDOW)
    help_, msgs, grants = _help(course_id), _messages(course_id), _grants(course_id)
    return (
        select(
            Person.id,
            Person.name,
            Person.given_name,
            Person.family_name,
            Person.email,
            Person.sub,
            Enrollment.section,
            ws.c.state,
            ws.c.state_changed_at,
            act.c.at,
            SpendTotal.spent,
            grants.c.amount,
            help_.c.n,
            help_.c.id,
            audit.c.failed,
            audit.c.reset_at,
            msgs.c.to_student,
            msgs.c.replies,
        )  # fmt: skip
        .join(Enrollment, and_(Enrollment.person_id == Person.id, Enrollment.course_id == course_id))
        .outerjoin(ws, ws.c.person_id == Person.id)
        .outerjoin(act, act.c.person_id == Person.id)
        .outerjoin(SpendTotal, and_(SpendTotal.person_id == Person.id, SpendTotal.course_id == course_id))
        .outerjoin(grants, grants.c.person_id == Person.id)
        .outerjoin(help_, help_.c.person_id == Person.id)
        .outerjoin(audit, audit.c.person_id == Person.id)
        .outerjoin(msgs, msgs.c.student_id == Person.id)
        .where(Enrollment.level == StaffLevel.STUDENT, Enrollment.status == EnrollmentStatus.ACTIVE)
    )


def load_facts(session: Session, course_id: int, now: datetime) -> list[StudentFacts]:
    """Every active student of the course with what the dashboard shows (two statements)."""
    base = session.scalar(select(CoursePolicy.budget_per_student).where(CoursePolicy.course_id == course_id))
    base = Decimal(base or 0)
    rows = session.execute(facts_query(course_id, now)).all()
    return [
        StudentFacts(
            person_id=r[0],
            name=r[1] or " ".join(p for p in (r[2], r[3]) if p) or r[4] or r[5],
            email=r[4] or "",
            section=r[6] or "",
            state=r[7],
            state_since=r[8],
            last_activity=r[9],
            spent=Decimal(r[10] or 0),
            cap=base + Decimal(r[11] or 0),
            open_help=int(r[12] or 0),
            help_id=r[13],
            failed_starts=int(r[14] or 0),
            last_reset=r[15],
            unread_by_student=int(r[16] or 0),
            unread_replies=int(r[17] or 0),
        )
        for r in rows
    ]
