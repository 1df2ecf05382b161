"""Workshop services: create a workshop (its own course and policy), the extension, and the organiser's figures.

Flush, never commit. Joining (which starts a workspace) is provisioning/workshop_join.py; the end and cleanup
pass is provisioning/workshop_end.py; the rules are classroom/workshops.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import (
    BudgetGrant,
    Course,
    CoursePolicy,
    Enrollment,
    EnrollmentStatus,
    Person,
    SpendDaily,
    StaffLevel,
    TemplateAccess,
    Workshop,
    WorkshopParticipant,
)
from classroom.workshops import (
    JOIN_OPENS_BEFORE,
    code_hash,
    extension_cost,
    extensions_left,
    new_code,
    per_participant,
)

IDLE_STOP_MINUTES = 30  # a walk-in who leaves the room stops paying within half an hour
MAX_HOURS = 12
MAX_AHEAD_DAYS = 366  # a workshop is planned at most a year ahead (and dates stay far from datetime's limits)
MAX_BUDGET = Decimal(10_000)
MAX_DAILY_PRICE = Decimal(100)


class WorkshopError(ValueError):
    """A workshop action refused; `status` is the HTTP status the page answers with, the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WorkshopValues:
    """What the organiser's form gives (already typed; checked by `check_values`)."""

    title: str
    starts_at: datetime
    hours: Decimal
    max_participants: int
    budget: Decimal
    template_id: str
    extension_days: int = 0
    extension_daily_price: Decimal = Decimal(0)
    extension_allowance: Decimal = Decimal(0)


def approved_templates(session: Session, origin: Course) -> list[str]:
    """The templates the organiser's course approves: a workshop may use one of them."""
    policy = session.get(CoursePolicy, origin.id)
    if policy is None:
        return []
    return sorted(t for t, access in policy.templates.items() if access == TemplateAccess.APPROVED.value)


def check_values(v: WorkshopValues, approved: list[str], now: datetime) -> None:
    """Refuse values that make no workshop (the message names the field)."""
    if not 3 <= len(v.title.strip()) <= 200:
        raise WorkshopError("Give the workshop a title of 3 to 200 characters.")
    if not Decimal("0.5") <= v.hours <= MAX_HOURS:
        raise WorkshopError(f"The duration must be between half an hour and {MAX_HOURS} hours.")
    if not now - timedelta(days=1) <= v.starts_at <= now + timedelta(days=MAX_AHEAD_DAYS):
        raise WorkshopError(f"The start must be within the next {MAX_AHEAD_DAYS} days.")
    if v.starts_at + timedelta(hours=float(v.hours)) <= now:
        raise WorkshopError("That workshop would already be over: pick a start in the future.")
    if not 1 <= v.max_participants <= 500:
        raise WorkshopError("Maximum participants must be between 1 and 500.")
    if not Decimal(1) <= v.budget <= MAX_BUDGET:
        raise WorkshopError(f"The total budget must be between $1 and ${MAX_BUDGET:,}.")
    if per_participant(v.budget, v.max_participants) < Decimal("0.10"):
        raise WorkshopError("That budget leaves under 10 cents per participant: raise it or lower the maximum.")
    if v.template_id not in approved:
        raise WorkshopError("Pick one of the templates your course approves.")
    if not 0 <= v.extension_days <= 7:
        raise WorkshopError("The extension is at most 7 days (0 for none).")
    if not (
        Decimal(0) <= v.extension_daily_price <= MAX_DAILY_PRICE and Decimal(0) <= v.extension_allowance <= MAX_BUDGET
    ):
        raise WorkshopError(
            "The extension's daily price (up to $100) and allowance (up to $10,000) cannot be negative."
        )
    if v.extension_days and (
        v.extension_daily_price <= 0
        or v.extension_allowance < extension_cost(v.extension_daily_price, v.extension_days)
    ):
        raise WorkshopError("An extension needs a daily price and an allowance that pays for at least one participant.")


def create_workshop(
    session: Session, origin: Course, organiser: Person, v: WorkshopValues, now: datetime
) -> tuple[Workshop, str]:
    """Make the workshop's course, policy and owner enrollment, and the workshop; returns it with its access code
    (shown once: only its hash is kept). Audited on the organiser's course."""
    check_values(v, approved_templates(session, origin), now)
    zone = ZoneInfo(origin.time_zone)
    ends_at = v.starts_at + timedelta(hours=float(v.hours))
    last = ends_at + timedelta(days=v.extension_days)
    course = Course(
        platform_id=origin.platform_id,
        deployment_id=origin.deployment_id,
        context_id=f"workshop:{secrets.token_hex(8)}",
        label="Workshop",
        title=v.title.strip(),
        time_zone=origin.time_zone,
        term_start=(v.starts_at - JOIN_OPENS_BEFORE).astimezone(zone).date(),  # joining opens before the start
        term_end=last.astimezone(zone).date(),
    )
    session.add(course)
    session.flush()
    share = per_participant(v.budget, v.max_participants)
    session.add(
        CoursePolicy(
            course_id=course.id,
            auto_close=True,
            expected_students=v.max_participants,
            budget_per_student=share,
            total_budget=v.budget + v.extension_allowance,
            budget_source=f"Workshop budget set by {organiser.display_name}",
            templates={v.template_id: TemplateAccess.APPROVED.value},
            default_template=v.template_id,
            max_concurrent=1,
            max_daily_cost=max(share, v.extension_daily_price),
            idle_stop_minutes=IDLE_STOP_MINUTES,
            shared_materials=False,
            integrity={},
            term_end_actions={"stop_all": True, "archive": True, "revoke_access": True, "final_report": False},
            updated_by=organiser.id,
            workspace_scope="student",
            archive_retention_days=1,
            disk_grace_days=0,
            welcome_emails=False,
        )
    )
    session.add(Enrollment(course_id=course.id, person_id=organiser.id, level=StaffLevel.OWNER, lti_roles=[],
                           level_pinned=True))  # fmt: skip
    code = new_code()
    workshop = Workshop(
        course_id=course.id,
        origin_course_id=origin.id,
        organiser_id=organiser.id,
        title=v.title.strip(),
        starts_at=v.starts_at,
        ends_at=ends_at,
        max_participants=v.max_participants,
        budget=v.budget,
        template_id=v.template_id,
        extension_days=v.extension_days,
        extension_daily_price=v.extension_daily_price,
        extension_allowance=v.extension_allowance,
        code_hash=code_hash(code),
    )
    session.add(workshop)
    session.flush()
    append_event(
        session,
        "workshop.created",
        actor_person_id=organiser.id,
        course_id=origin.id,
        subject=str(workshop.id),
        details={"course_id": course.id, "title": workshop.title, "starts_at": v.starts_at.isoformat(),
                 "ends_at": ends_at.isoformat(), "max_participants": v.max_participants, "budget": str(v.budget),
                 "template": v.template_id, "extension_days": v.extension_days,
                 "extension_allowance": str(v.extension_allowance)},
    )  # fmt: skip
    return workshop, code


def extensions_taken(session: Session, workshop_id: int) -> int:
    """How many participants chose the extension."""
    return int(
        session.scalar(
            select(func.count(WorkshopParticipant.id)).where(
                WorkshopParticipant.workshop_id == workshop_id, WorkshopParticipant.extension.is_(True)
            )
        )
        or 0
    )


def choose_extension(session: Session, workshop: Workshop, participant: WorkshopParticipant) -> BudgetGrant:
    """Give a participant the "keep learning" extension out of the allowance (call with the workshop row locked,
    so two at once cannot both take the last place); audited."""
    if workshop.extension_days == 0:
        raise WorkshopError("This workshop offers no extension.", 409)
    if participant.extension:
        raise WorkshopError("You already have the extension.", 409)
    taken = extensions_taken(session, workshop.id)
    if (
        extensions_left(workshop.extension_allowance, workshop.extension_daily_price, workshop.extension_days, taken)
        < 1
    ):
        raise WorkshopError(
            "Every extension the organiser set aside money for is taken. You can still join without it.", 409
        )
    amount = extension_cost(workshop.extension_daily_price, workshop.extension_days)
    grant = BudgetGrant(
        course_id=workshop.course_id,
        person_id=participant.person_id,
        amount=amount,
        kind="extension",
        reason=f"workshop extension: {workshop.extension_days} days",
        granted_by=workshop.organiser_id,
    )
    session.add(grant)
    participant.extension = True
    session.flush()
    append_event(
        session,
        "workshop.extension",
        actor_person_id=participant.person_id,
        course_id=workshop.course_id,
        subject=str(participant.person_id),
        details={"amount": str(amount), "days": workshop.extension_days},
    )
    return grant


@dataclass(frozen=True)
class WorkshopFigures:
    """The organiser's report: from the ledger (spend_daily) and the participant rows."""

    joined: int
    max_participants: int
    extensions: int
    spent: Decimal
    budget: Decimal
    allowance: Decimal
    average: Decimal
    highest: Decimal
    compute_hours: Decimal
    active: int  # participants whose access is still open


def workshop_figures(session: Session, workshop: Workshop) -> WorkshopFigures:
    """Sum the workshop's spend per participant (ledger-derived daily rows) and count joins and extensions."""
    rows = session.execute(
        select(
            func.sum(SpendDaily.spent),
            func.sum(SpendDaily.running_seconds),
        )
        .join(WorkshopParticipant, WorkshopParticipant.person_id == SpendDaily.person_id)
        .where(SpendDaily.course_id == workshop.course_id, WorkshopParticipant.workshop_id == workshop.id)
        .group_by(SpendDaily.person_id)
    ).all()
    spends = [Decimal(s or 0) for s, _ in rows]
    joined = int(
        session.scalar(select(func.count(WorkshopParticipant.id)).where(WorkshopParticipant.workshop_id == workshop.id))
        or 0
    )
    active = int(
        session.scalar(
            select(func.count(Enrollment.id))
            .join(WorkshopParticipant, WorkshopParticipant.person_id == Enrollment.person_id)
            .where(
                WorkshopParticipant.workshop_id == workshop.id,
                Enrollment.course_id == workshop.course_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
        or 0
    )
    total = sum(spends, Decimal(0))
    return WorkshopFigures(
        joined=joined,
        max_participants=workshop.max_participants,
        extensions=extensions_taken(session, workshop.id),
        spent=total,
        budget=workshop.budget,
        allowance=workshop.extension_allowance,
        average=total / joined if joined else Decimal(0),
        highest=max(spends, default=Decimal(0)),
        compute_hours=sum((Decimal(h or 0) for _, h in rows), Decimal(0)) / 3600,
        active=active,
    )
