"""Budget services: a student's money position, the launch decision, the course policy.

Grants are in classroom/services/grants.py; template requests (ask, decide) in classroom/services/template_requests.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.disk_end import disk_end_of, disk_reserve
from classroom.budget.policy import Decision, PolicyView, StudentMoney, check_launch, hours_until_term_end
from classroom.budget.setup_form import SetupValues
from classroom.db import utcnow
from classroom.models import (
    BudgetGrant,
    Course,
    CoursePolicy,
    RequestStatus,
    SpendDaily,
    TemplateRequest,
    Workspace,
)
from classroom.services.course_money import course_money, lock_course_money
from classroom.services.reopen import reopen_workspaces
from classroom.workspaces.lifecycle import COMMITTED_DISK, CONCURRENT
from config.catalog import Catalog
from config.prices import RegionPrices

# Decide + insert under this lock (pg_advisory_xact_lock(course, person), held to the request's commit), so two
# launches or Starts by one student on different links cannot both pass max_concurrent or the budget.
ENROLLMENT_LOCK = text("SELECT pg_advisory_xact_lock(:course, :person)")


def lock_for_start(session: Session, course_id: int, person_id: int) -> None:
    """Before a Start that will commit a workspace: the course's money (its policy row, so two students' Starts
    cannot both fit the course's last remainder), then the student's enrollment lock; both before any workspace
    row (course_money's lock order). Held to the caller's commit."""
    lock_course_money(session, course_id)
    session.execute(ENROLLMENT_LOCK, {"course": course_id, "person": person_id})


class BudgetError(ValueError):
    """Bad input for a budget action; the message says what to fix."""


def policy_view(session: Session, course: Course, *, policy: CoursePolicy | None = None) -> PolicyView | None:
    """The course's policy as the launch check reads it, or None when the course is not set up (`policy`: the
    course's policy row, when the caller has it)."""
    p = policy or session.get(CoursePolicy, course.id)
    if p is None:
        return None
    return PolicyView(
        course.display_name,
        dict(p.templates),
        p.default_template,
        p.max_concurrent,
        p.max_daily_cost,
        course.term_start,
        course.term_end,
        course.time_zone,
        disk_end_of(course.term_end, p.disk_grace_days, p.archive_retention_days),
    )


def student_money(
    session: Session,
    course: Course,
    person_id: int,
    now: datetime,
    prices: RegionPrices | None = None,
    *,
    policy: CoursePolicy | None = None,
) -> StudentMoney | None:
    """Cap (budget plus grants), spend in total and today, workspaces running, and the storage their disks will
    cost until term end (reserved out of the budget); None without a policy (`policy`: the course's policy row,
    when the caller has it). One statement besides the policy."""
    policy = policy or session.get(CoursePolicy, course.id)
    if policy is None:
        return None
    today = now.astimezone(ZoneInfo(course.time_zone)).date()
    mine = (Workspace.course_id == course.id, Workspace.person_id == person_id)
    spend = SpendDaily.spent
    spent_by = (SpendDaily.course_id == course.id, SpendDaily.person_id == person_id)
    row = session.execute(
        select(
            select(func.coalesce(func.sum(BudgetGrant.amount), 0))
            .where(BudgetGrant.course_id == course.id, BudgetGrant.person_id == person_id)
            .scalar_subquery()
            .label("grants"),
            select(func.coalesce(func.sum(spend), 0)).where(*spent_by).scalar_subquery().label("spent"),
            select(func.coalesce(func.sum(spend).filter(SpendDaily.day == today), 0))
            .where(*spent_by)
            .scalar_subquery()
            .label("spent_today"),
            select(func.count(Workspace.id))
            .where(*mine, Workspace.state.in_(CONCURRENT))
            .scalar_subquery()
            .label("running"),
            select(func.array_agg(Workspace.volume_gb))
            .where(*mine, Workspace.state.in_(COMMITTED_DISK))
            .scalar_subquery()
            .label("volumes"),
        )
    ).one()
    reserved = storage_reserve(course, policy, row.volumes or [], now, prices) if prices else Decimal(0)
    return StudentMoney(
        policy.budget_per_student + Decimal(row.grants or 0),
        Decimal(row.spent),
        Decimal(row.spent_today),
        int(row.running or 0),
        reserved,
    )


def storage_reserve(
    course: Course, policy: CoursePolicy, volumes: list[int], now: datetime, prices: RegionPrices
) -> Decimal:
    """What the student's existing disks (their sizes) will still cost the student: to the end of the term, then
    through the grace period (disk_end.disk_reserve; their archives are the course's)."""
    hours = hours_until_term_end(course.term_end, course.time_zone, now)
    if hours == 0:
        return Decimal(0)
    end = disk_end_of(course.term_end, policy.disk_grace_days, policy.archive_retention_days)
    return sum((disk_reserve(prices, gb, hours, end) for gb in volumes), Decimal(0))


def request_state(session: Session, course_id: int, person_id: int, template_id: str) -> tuple[bool, bool]:
    """(approved, pending) for the student's requests for this template."""
    statuses = set(
        session.scalars(
            select(TemplateRequest.status).where(
                TemplateRequest.course_id == course_id,
                TemplateRequest.person_id == person_id,
                TemplateRequest.template_id == template_id,
            )
        )
    )
    return RequestStatus.APPROVED in statuses, RequestStatus.PENDING in statuses


def decide_launch(
    session: Session,
    course: Course,
    person_id: int,
    template_id: str,
    *,
    catalog: Catalog,
    prices: RegionPrices,
    now: datetime | None = None,
    starting: bool = False,
) -> Decision:
    """The launch decision for a student, taken under the student's enrollment lock (held until the caller
    commits the workspace it inserts or starts). A restart commits no new disk and is not counted twice."""
    session.execute(ENROLLMENT_LOCK, {"course": course.id, "person": person_id})
    now = now or utcnow()
    policy = session.get(CoursePolicy, course.id)  # read once, handed to student_money and policy_view
    position = student_money(session, course, person_id, now, prices, policy=policy)
    # `starting` a stopped workspace: it is not among the running ones, so the concurrency count is already right.
    approved, pending = request_state(session, course.id, person_id, template_id)
    from classroom.services.restores import student_view  # a restored student's term ends later

    return check_launch(
        student_view(session, policy_view(session, course, policy=policy), course, person_id, now),
        template_id,
        position,
        catalog=catalog,
        prices=prices,
        now=now,
        request_approved=approved,
        request_pending=pending,
        hours_left=hours_until_term_end(course.term_end, course.time_zone, now),
        new_disk=not starting,
        course=course_money(session, course, now, prices) if policy is not None else None,
    )


def _reopen_if_extended(session: Session, course: Course, policy: CoursePolicy, by: int) -> None:
    """A term moved past now after closure reopens the course: the term-end actions will run at the new end.
    `reopen_workspaces` undoes what the closure did to the workspaces."""
    from datetime import time

    if policy.closed_at is None or course.term_end is None:
        return
    end = datetime.combine(course.term_end, time.max, ZoneInfo(course.time_zone))
    if end > utcnow():
        policy.closed_at = None
        append_event(
            session,
            "course.reopened",
            actor_person_id=by,
            course_id=course.id,
            details={"term_end": str(course.term_end), **reopen_workspaces(session, course.id, by)},
        )


def save_policy(session: Session, course: Course, values: SetupValues, by: int) -> CoursePolicy:
    """Create or update the course's policy and term from the wizard; audits what changed."""
    policy = session.get(CoursePolicy, course.id)
    before = _snapshot(policy, course) if policy else {}
    if policy is None:
        policy = CoursePolicy(course_id=course.id)
        session.add(policy)
    course.term_start, course.term_end, course.time_zone = values.term_start, values.term_end, values.time_zone
    for name in (
        "auto_close",
        "expected_students",
        "budget_per_student",
        "total_budget",
        "budget_source",
        "templates",
        "default_template",
        "max_concurrent",
        "max_daily_cost",
        "idle_stop_minutes",
        "shared_materials",
        "integrity",
        "term_end_actions",
        "workspace_scope",
        "close_after_due",
        "archive_retention_days",
        "disk_grace_days",
    ):
        setattr(policy, name, getattr(values, name))
    policy.updated_at, policy.updated_by = utcnow(), by
    _reopen_if_extended(session, course, policy, by)
    session.flush()
    after = _snapshot(policy, course)
    changed = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    append_event(
        session,
        "policy.created" if not before else "policy.updated",
        actor_person_id=by,
        course_id=course.id,
        details={"changed": changed},
    )
    return policy


def _snapshot(policy: CoursePolicy, course: Course) -> dict[str, object]:
    return {
        "term_start": str(course.term_start),
        "term_end": str(course.term_end),
        "time_zone": course.time_zone,
        "auto_close": policy.auto_close,
        "expected_students": policy.expected_students,
        "budget_per_student": str(policy.budget_per_student),
        "total_budget": str(policy.total_budget),
        "budget_source": policy.budget_source,
        "templates": dict(policy.templates),
        "default_template": policy.default_template,
        "max_concurrent": policy.max_concurrent,
        "max_daily_cost": str(policy.max_daily_cost),
        "idle_stop_minutes": policy.idle_stop_minutes,
        "shared_materials": policy.shared_materials,
        "integrity": dict(policy.integrity),
        "term_end_actions": dict(policy.term_end_actions),
        "workspace_scope": policy.workspace_scope,
        "close_after_due": policy.close_after_due,
        "archive_retention_days": policy.archive_retention_days,
        "disk_grace_days": policy.disk_grace_days,
    }
