"""Send the welcome message, once per student: on roster sync, on CSV import, and at the start of the term.

Each enrollment records when its welcome went out (`welcomed_at`); the claim is one UPDATE ... RETURNING, so two
syncs at once never welcome anyone twice. The course's "welcome emails" setting turns it off. Flushes; the caller
commits, and the outbox job sends the emails after that commit.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classroom.course_paths import course_slug
from classroom.db import utcnow
from classroom.models import Course, CoursePolicy, DueDate, Enrollment, EnrollmentStatus, Person
from classroom.notify import Message, notify_many
from classroom.roles import CONFIGURING_LEVELS, StaffLevel
from config.catalog import load_catalog
from lms_sync.welcome import WelcomeFacts, welcome_message


def _names(session: Session, course_id: int, levels: Collection[StaffLevel]) -> list[str]:
    return list(
        session.scalars(
            select(Person.name)
            .join(Enrollment, Enrollment.person_id == Person.id)
            .where(
                Enrollment.course_id == course_id,
                Enrollment.level.in_(levels),
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Person.name != "",
            )
            .order_by(Enrollment.level, Person.name)
        )
    )


def _due_dates(session: Session, course: Course, now: datetime) -> tuple[tuple[str, date], ...]:
    zone = ZoneInfo(course.time_zone or "UTC")
    rows = session.execute(
        select(DueDate.title, DueDate.due_at)
        .where(DueDate.course_id == course.id, DueDate.due_at >= now, DueDate.title != "")
        .order_by(DueDate.due_at)
        .limit(20)
    ).all()
    seen: dict[str, date] = {}
    for title, due_at in rows:  # one line per assignment, whichever source reported it
        seen.setdefault(title, due_at.astimezone(zone).date())
    return tuple(seen.items())[:5]


def welcome_facts(session: Session, course: Course, now: datetime | None = None) -> WelcomeFacts:
    """Budget, workspace type, materials path, dates, instructor and TAs for the welcome message."""
    policy = session.get(CoursePolicy, course.id)
    workspace = ""
    if policy is not None:
        template = load_catalog().get(policy.default_template)
        if template is not None:
            workspace = f"{template.instance_type} ({template.description.split(':')[0]})"
    instructors = _names(session, course.id, CONFIGURING_LEVELS)
    product = (course.platform.product or "").capitalize() if course.platform else ""
    materials = policy is not None and policy.shared_materials
    return WelcomeFacts(
        course=course.display_name,
        instructor=instructors[0] if instructors else "",
        budget=policy.budget_per_student if policy else None,
        workspace=workspace,
        term_end=course.term_end,
        lms=product if product and product.lower() not in ("", "demo") else "your LMS",
        term_start=course.term_start,
        materials_path=f"/mnt/{course_slug(course.label or course.title, course.id)}-materials/" if materials else "",
        due_dates=_due_dates(session, course, now or utcnow()),
        helpers=tuple(_names(session, course.id, (StaffLevel.HEAD_TA, StaffLevel.TA))),
    )


def welcome_enabled(session: Session, course_id: int) -> bool:
    """The course's switch (on until the instructor turns it off, also before the set-up is saved)."""
    policy = session.get(CoursePolicy, course_id)
    return policy is None or policy.welcome_emails


def welcome_students(session: Session, course: Course, person_ids: Collection[int] | None = None) -> int:
    """Welcome the course's active students not welcomed yet (only `person_ids` when given); returns how many."""
    if not welcome_enabled(session, course.id) or (person_ids is not None and not person_ids):
        return 0
    session.flush()
    claim = (
        update(Enrollment)
        .where(
            Enrollment.course_id == course.id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.welcomed_at.is_(None),
        )
        .values(welcomed_at=utcnow())
        .returning(Enrollment.person_id)
    )
    if person_ids is not None:
        claim = claim.where(Enrollment.person_id.in_(list(person_ids)))
    claimed = list(session.scalars(claim, execution_options={"synchronize_session": False}))
    if not claimed:
        return 0
    facts = welcome_facts(session, course)
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(claimed))).tuples().all())
    messages = [Message(pid, course.id, *welcome_message(facts, names.get(pid, ""))) for pid in sorted(claimed)]
    return notify_many(session, messages)


def welcome_started_terms(session: Session, today: date) -> int:
    """At the start of the term (and after): welcome every student of a started course not welcomed yet."""
    courses = session.scalars(
        select(Course)
        .join(CoursePolicy, CoursePolicy.course_id == Course.id)
        .join(Enrollment, Enrollment.course_id == Course.id)
        .where(
            CoursePolicy.welcome_emails,
            CoursePolicy.closed_at.is_(None),
            Course.term_start <= today,
            (Course.term_end.is_(None)) | (Course.term_end >= today),
            Enrollment.welcomed_at.is_(None),
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .distinct()
    ).all()
    return sum(welcome_students(session, course) for course in courses)
