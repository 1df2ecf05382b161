"""Next term: duplicate a course's set-up into the course the same LMS link opens next term.

Canvas's course copy sends the old context ids through the `$Context.id.history` substitution (custom parameter
`context_history`, most recent first); the instructor launch stores it (`note_history`). A course without a
set-up is offered the newest course of that history the tool knows; otherwise the instructor picks one of the
courses they teach. The duplicate copies the policy (budgets, templates, limits, term-end actions, retention),
the assignment columns (labels, maximum scores, tags: their links and due dates come from the new course's LMS),
the materials (S3 copy through the port, after the commit) and, optionally, the staff levels of people the tool
already knows; it records the lineage (`courses.previous_course_id`) and is audited. A course that already has
a set-up is refused unless the instructor asks to overwrite it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Course, CoursePolicy, Enrollment, LmsLineItem
from classroom.models.lms_sync import LineItemKind
from classroom.roles import StaffLevel
from classroom.services.reopen import reopen_workspaces

HISTORY_PARAM = "context_history"
HISTORY_VARIABLE = "$Context.id.history"
TEACHING = (StaffLevel.OWNER, StaffLevel.INSTRUCTOR)
COPIED_STAFF = (StaffLevel.INSTRUCTOR, StaffLevel.HEAD_TA, StaffLevel.TA)
POLICY_FIELDS = (
    "auto_close", "expected_students", "budget_per_student", "total_budget", "budget_source", "templates",
    "default_template", "max_concurrent", "max_daily_cost", "idle_stop_minutes", "shared_materials",
    "materials_allowance_bytes", "integrity", "term_end_actions", "workspace_scope", "close_after_due",
    "archive_retention_days", "disk_grace_days", "welcome_emails",
)  # fmt: skip


class DuplicateError(ValueError):
    """A duplicate that cannot be made; the message says why (nothing was written)."""


@dataclass(frozen=True)
class Duplicated:
    """What the duplicate copied (the materials are copied after the commit, through the port)."""

    source_id: int
    assignments: int
    staff: int


def history_ids(raw: str) -> list[str]:
    """Pure: the context ids of a `$Context.id.history` value (comma-separated, most recent first); an LMS that
    does not know the variable sends it back as written, which names nothing."""
    if not raw or raw.strip() == HISTORY_VARIABLE:
        return []
    return [part.strip() for part in raw.split(",") if part.strip() and not part.strip().startswith("$")][:50]


def note_history(session: Session, course_id: int, custom: Mapping[str, str]) -> None:
    """Store the launch's history claim on the course when it is new (one UPDATE, none when unchanged)."""
    raw = ",".join(history_ids(str(custom.get(HISTORY_PARAM, ""))))[:4000]
    if raw:
        session.execute(
            update(Course).where(Course.id == course_id, Course.context_history != raw).values(context_history=raw)
        )


def _with_policy(session: Session, course: Course):  # type: ignore[no-untyped-def]
    return (
        select(Course)
        .join(CoursePolicy, CoursePolicy.course_id == Course.id)
        .where(Course.platform_id == course.platform_id, Course.id != course.id)
    )


def suggested_source(session: Session, course: Course, person_id: int) -> Course | None:
    """The newest course of this course's history that the tool knows, has a set-up, and the person teaches."""
    ids = history_ids(course.context_history)
    if not ids:
        return None
    found = {c.context_id: c for c in pick_sources(session, course, person_id) if c.context_id in ids}
    return next((found[i] for i in ids if i in found), None)


def pick_sources(session: Session, course: Course, person_id: int) -> list[Course]:
    """The courses with a set-up this person owns or teaches (the manual pick), newest first."""
    return list(
        session.scalars(
            _with_policy(session, course)
            .join(Enrollment, Enrollment.course_id == Course.id)
            .where(Enrollment.person_id == person_id, Enrollment.level.in_(TEACHING))
            .order_by(Course.created_at.desc(), Course.id.desc())
        )
    )


def duplicate_course(
    session: Session,
    source_id: int,
    target: Course,
    *,
    actor_id: int,
    term: tuple[date, date],
    staff: bool,
    overwrite: bool,
) -> Duplicated:
    """Copy the set-up of `source_id` (which the actor must teach) into `target`; audited (flushes)."""
    source = next((c for c in pick_sources(session, target, actor_id) if c.id == source_id), None)
    if source is None:
        raise DuplicateError("Pick one of the courses you teach that has a Cloud Workstation set-up.")
    start, end = term
    if end < start:
        raise DuplicateError("The term must end after it starts.")
    # The course row's lock serialises two copies at once: the second sees the first's policy and is refused. FOR
    # NO KEY UPDATE: a Start, which holds the policy row, still inserts its workspace (a key-share lock on this row).
    session.execute(select(Course.id).where(Course.id == target.id).with_for_update(key_share=True))
    old = session.scalar(select(CoursePolicy).where(CoursePolicy.course_id == target.id).with_for_update())
    if old is not None and not overwrite:
        raise DuplicateError(
            "This course already has a set-up; nothing was copied. Tick “Replace this course's set-up” to overwrite it."
        )
    policy = session.get(CoursePolicy, source.id)
    assert policy is not None
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    session.execute(
        insert(CoursePolicy)
        .values(course_id=target.id, updated_by=actor_id, closed_at=None, **values)
        .on_conflict_do_update(index_elements=["course_id"], set_={"updated_by": actor_id, "closed_at": None, **values})
    )
    reopened = reopen_workspaces(session, target.id, actor_id) if old is not None and old.closed_at else {}
    target.term_start, target.term_end, target.time_zone = start, end, source.time_zone
    target.previous_course_id = source.id
    assignments = _copy_assignments(session, source.id, target.id)
    copied_staff = _copy_staff(session, source.id, target.id) if staff else 0
    append_event(
        session,
        "course.duplicated",
        actor_person_id=actor_id,
        course_id=target.id,
        details={"from": source.id, "from_context": source.context_id, "overwrite": old is not None, **reopened,
                 "assignments": assignments, "staff": copied_staff, "term": [str(start), str(end)]},
    )  # fmt: skip
    session.flush()
    return Duplicated(source.id, assignments, copied_staff)


def _copy_assignments(session: Session, source_id: int, target_id: int) -> int:
    """The assignment columns (label, maximum, tag); the LMS gives the new links, due dates and column URLs."""
    have = set(session.scalars(select(LmsLineItem.label).where(LmsLineItem.course_id == target_id)))
    count = 0
    for item in session.scalars(
        select(LmsLineItem).where(LmsLineItem.course_id == source_id, LmsLineItem.kind == LineItemKind.ASSIGNMENT)
    ):
        if item.label in have:
            continue
        session.add(LmsLineItem(course_id=target_id, label=item.label, score_maximum=item.score_maximum,
                                tag=item.tag, kind=LineItemKind.ASSIGNMENT))  # fmt: skip
        have.add(item.label)
        count += 1
    return count


def _copy_staff(session: Session, source_id: int, target_id: int) -> int:
    """Staff levels (instructor, head TA, TA) for the same people, pinned; never the owner, never students, never a
    level already set in the new course."""
    rows = session.execute(
        select(Enrollment.person_id, Enrollment.level).where(
            Enrollment.course_id == source_id, Enrollment.level.in_(COPIED_STAFF)
        )
    ).all()
    count = 0
    for person_id, level in rows:
        made = session.scalar(
            insert(Enrollment)
            .values(course_id=target_id, person_id=person_id, level=level, level_pinned=True, lti_roles=[])
            .on_conflict_do_nothing(constraint="uq_enrollments_course_person")
            .returning(Enrollment.id)
        )
        count += made is not None
    return count


__all__ = [
    "DuplicateError",
    "Duplicated",
    "duplicate_course",
    "history_ids",
    "note_history",
    "pick_sources",
    "suggested_source",
]
