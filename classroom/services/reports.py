"""Budget figures for the student budget page and the instructor cost report, read from the spend ledger.

Every amount is a sum over spend_daily, which metering updates from exactly the ledger rows it inserts, so
these figures equal the ledger to the cent. Each function runs a fixed number of SQL statements whatever
the class size, and returns plain dataclasses (classroom.budget.figures) with Decimal money.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, DateTime, case, cast, func, select, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from classroom.budget.enforcement import ENFORCEMENT_ACTOR, idle_limit
from classroom.budget.figures import (
    ZERO,
    CourseLine,
    CourseReport,
    DaySpend,
    RunningNow,
    StudentBudget,
    StudentRow,
    TemplateRate,
    WeekSpend,
    flag_anomalies,
    week_of_term,
)
from classroom.budget.runway import term_days_left
from classroom.db import utcnow
from classroom.models import (
    BudgetGrant,
    Course,
    CourseCharge,
    CoursePolicy,
    Enrollment,
    EnrollmentStatus,
    Person,
    SpendDaily,
    Workspace,
    WorkspaceEvent,
)
from classroom.roles import StaffLevel
from classroom.services.budgets import storage_reserve, student_money
from classroom.services.course_money import course_money
from classroom.workspaces.lifecycle import BILLING_COMPUTE, COMMITTED_DISK, CONCURRENT, LIVE, WorkspaceState
from config.catalog import Catalog
from config.prices import PriceError, RegionPrices

BURN_DAYS = 7  # "current burn": average daily spend over the last week, today included
CHART_DAYS = 30
Reserve = Callable[[list[int]], Decimal]  # the disks' reserve of a student's disk sizes (GB)


def course_today(course: Course, now: datetime) -> date:
    """Today in the course's time zone (spend_daily days are course-local)."""
    return now.astimezone(ZoneInfo(course.time_zone)).date()


def _running_seconds(session: Session, course_id: int, person_id: int) -> Decimal:
    """All the time the student's workspaces ran in this course, in one statement."""
    total = session.scalar(
        select(func.coalesce(func.sum(SpendDaily.running_seconds), 0)).where(
            SpendDaily.course_id == course_id, SpendDaily.person_id == person_id
        )
    )
    return Decimal(total or 0)


def _last_days(session: Session, course_id: int, person_id: int, today: date) -> tuple[DaySpend, ...]:
    """Spend on each of the last CHART_DAYS course-local days, today last, zero where nothing was recorded."""
    first = today - timedelta(days=CHART_DAYS - 1)
    recent = dict(
        session.execute(
            select(SpendDaily.day, SpendDaily.spent).where(
                SpendDaily.course_id == course_id, SpendDaily.person_id == person_id, SpendDaily.day >= first
            )
        ).all()
    )
    return tuple(DaySpend(d, Decimal(recent.get(d, 0))) for d in (first + timedelta(n) for n in range(CHART_DAYS)))


def student_budget(
    session: Session, course: Course, person_id: int, now: datetime, *, prices: RegionPrices, catalog: Catalog
) -> StudentBudget | None:
    """The student's budget page figures (a fixed number of statements); None when the course is not set up."""
    policy = session.get(CoursePolicy, course.id)
    money = student_money(session, course, person_id, now, prices)  # the launch check's own reserve figure
    if policy is None or money is None:
        return None
    days = _last_days(session, course.id, person_id, course_today(course, now))
    live = session.scalars(
        select(Workspace)
        .where(Workspace.course_id == course.id, Workspace.person_id == person_id, Workspace.state.in_(LIVE))
        .order_by(Workspace.id.desc())
    ).all()
    costing = BILLING_COMPUTE | CONCURRENT
    shown = live[0].template_id if live else policy.default_template  # the workspace the page describes
    own_idle = template.idle_stop_minutes if (template := catalog.get(shown)) else policy.idle_stop_minutes
    return StudentBudget(
        base=policy.budget_per_student,
        grants=money.cap - policy.budget_per_student,
        spent=money.spent,
        running_seconds=_running_seconds(session, course.id, person_id),
        burn_per_day=sum((d.amount for d in days[-BURN_DAYS:]), ZERO) / BURN_DAYS,
        days=days,
        running=tuple(_running_now(w, prices) for w in live if w.state in costing),
        parked=sum(1 for w in live if w.state in (WorkspaceState.STOPPED, WorkspaceState.HIBERNATED)),
        template=template_rate(catalog, prices, shown),
        daily_cap=policy.max_daily_cost,
        idle_minutes=idle_limit(policy.idle_stop_minutes, own_idle),
        reserved=money.reserved,
        grace_days=policy.disk_grace_days,
        term_days=term_days_left(now, course.term_end, course.time_zone),
    )


def _running_now(ws: Workspace, prices: RegionPrices) -> RunningNow:
    try:
        hourly: Decimal | None = prices.running_hourly(ws.instance_type) + prices.storage_hourly(ws.volume_gb)
    except PriceError:
        hourly = None
    return RunningNow(ws.id, ws.link_title or ws.link_key, ws.instance_type, ws.state.value, hourly)


def template_rate(catalog: Catalog, prices: RegionPrices, template_id: str) -> TemplateRate | None:
    """The template's 24/7 figures from the price table (None for an unknown template or price)."""
    template = catalog.get(template_id)
    if template is None:
        return None
    try:
        daily = prices.daily(template.instance_type, template.root_volume_gb)
    except PriceError:
        return None
    return TemplateRate(template.name, template.instance_type, daily / 24, daily)


def _per_person(course_id: int) -> tuple[Subquery, Subquery, Subquery]:
    """Subqueries by person: spend and running time, grants, and idle stops by the enforcement sweep."""
    spend = (
        select(
            SpendDaily.person_id,
            func.sum(SpendDaily.spent).label("spent"),
            func.sum(SpendDaily.running_seconds).label("secs"),
        )
        .where(SpendDaily.course_id == course_id)
        .group_by(SpendDaily.person_id)
        .subquery()
    )
    grants = (
        select(BudgetGrant.person_id, func.sum(BudgetGrant.amount).label("amount"))
        .where(BudgetGrant.course_id == course_id, BudgetGrant.person_id.is_not(None))
        .group_by(BudgetGrant.person_id)
        .subquery()
    )
    idle = (
        select(Workspace.person_id, func.count(WorkspaceEvent.id).label("n"))
        .join(WorkspaceEvent, WorkspaceEvent.workspace_id == Workspace.id)
        .where(Workspace.course_id == course_id, WorkspaceEvent.actor == ENFORCEMENT_ACTOR)
        .where(WorkspaceEvent.reason.like("idle%"))
        .group_by(Workspace.person_id)
        .subquery()
    )
    return spend, grants, idle


def _student_rows(session: Session, course: Course, policy: CoursePolicy, reserve: Reserve | None) -> list[StudentRow]:
    """Every enrolled student and anyone else with spend, with totals, grants, idle stops and the sizes of the
    disks their reserve is for (one statement); `reserve` prices those sizes (None: not shown)."""
    course_id, base = course.id, policy.budget_per_student
    spend, grants, idle = _per_person(course_id)
    disks = (
        select(Workspace.person_id, func.array_agg(Workspace.volume_gb).label("gbs"))
        .where(Workspace.course_id == course_id, Workspace.state.in_(COMMITTED_DISK))
        .group_by(Workspace.person_id)
        .subquery()
    )
    who = union(
        select(Enrollment.person_id).where(Enrollment.course_id == course_id, Enrollment.level == StaffLevel.STUDENT),
        select(spend.c.person_id),
    ).subquery()
    rows = session.execute(
        select(Person, Enrollment.status, spend.c.spent, spend.c.secs, grants.c.amount, idle.c.n, disks.c.gbs)
        .join(who, who.c.person_id == Person.id)
        .outerjoin(Enrollment, (Enrollment.person_id == Person.id) & (Enrollment.course_id == course_id))
        .outerjoin(spend, spend.c.person_id == Person.id)
        .outerjoin(grants, grants.c.person_id == Person.id)
        .outerjoin(idle, idle.c.person_id == Person.id)
        .outerjoin(disks, disks.c.person_id == Person.id)
        .order_by(func.lower(func.coalesce(func.nullif(Person.family_name, ""), Person.name)), Person.name, Person.id)
    ).all()
    return [
        StudentRow(
            p.id,
            p.display_name,
            p.email,
            status is EnrollmentStatus.ACTIVE,
            base + Decimal(g or 0),
            Decimal(s or 0),
            Decimal(secs or 0),
            int(n or 0),
            s is not None,
            reserved=reserve(gbs) if reserve and gbs else Decimal(0),
        )
        for p, status, s, secs, g, n, gbs in rows
    ]


def _weeks(session: Session, course: Course) -> tuple[WeekSpend, ...]:
    """Spend per ISO week of the course-local day (one statement)."""
    week = cast(func.date_trunc("week", cast(SpendDaily.day, DateTime)), Date)
    rows = session.execute(
        select(
            week,
            func.sum(SpendDaily.spent),
            func.sum(SpendDaily.running_seconds),
            func.count(func.distinct(case((SpendDaily.running_seconds > 0, SpendDaily.person_id)))),
        )
        .where(SpendDaily.course_id == course.id)
        .group_by(week)
        .order_by(week)
    ).all()
    start_of_term = course.term_start
    return tuple(
        WeekSpend(
            start, Decimal(s), Decimal(secs), int(n), week_of_term(start_of_term, start) if start_of_term else None
        )
        for start, s, secs, n in rows
    )


def _course_lines(session: Session, course_id: int) -> tuple[CourseLine, ...]:
    """The course's own lines by kind (one statement); a student's transfer is in their spend, not here."""
    rows = session.execute(
        select(CourseCharge.kind, func.sum(CourseCharge.amount))
        .where(CourseCharge.course_id == course_id, CourseCharge.person_id.is_(None))
        .group_by(CourseCharge.kind)
        .order_by(CourseCharge.kind)
    ).all()
    return tuple(CourseLine(kind, Decimal(amount)) for kind, amount in rows)


def course_report(
    session: Session, course: Course, *, prices: RegionPrices | None = None, now: datetime | None = None
) -> CourseReport | None:
    """The cost report of a course (five statements whatever its size, six with `prices`); None when the course is
    not set up.
    With `prices`, each student's row has their disks' reserve, as their budget page has it, and the course's
    position is read too (one statement more): what is available is then what launches are judged against."""
    policy = session.get(CoursePolicy, course.id)
    if policy is None:
        return None
    at = now or utcnow()
    reserve = (lambda gbs: storage_reserve(course, policy, gbs, at, prices)) if prices else None
    # course_money.Allocation, folded into the grants statement (no statement of its own)
    active = (
        select(func.count(Enrollment.id))
        .where(
            Enrollment.course_id == course.id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .scalar_subquery()
    )
    course_grants, student_grants, students = session.execute(
        select(
            func.coalesce(func.sum(BudgetGrant.amount).filter(BudgetGrant.person_id.is_(None)), 0),
            func.coalesce(func.sum(BudgetGrant.amount).filter(BudgetGrant.person_id.is_not(None)), 0),
            active,
        ).where(BudgetGrant.course_id == course.id)
    ).one()
    rows, mid = flag_anomalies(_student_rows(session, course, policy, reserve))
    return CourseReport(
        policy.total_budget,
        policy.budget_per_student,
        policy.budget_source,
        Decimal(course_grants),
        Decimal(student_grants),
        rows,
        _weeks(session, course),
        mid,
        policy.default_template,
        policy.budget_per_student * int(students or 0) + Decimal(course_grants) + Decimal(student_grants),
        _course_lines(session, course.id),
        position.committed if prices and (position := course_money(session, course, at, prices)) else None,
    )
