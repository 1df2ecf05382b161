"""Grade entry, shared by the grades page and the usage job: validated, audited, versioned. Flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import (
    Enrollment,
    EnrollmentStatus,
    GradeStatus,
    LineItemKind,
    LmsGrade,
    LmsLineItem,
    Person,
    StaffLevel,
)
from classroom.roles import is_staff

MAX_COMMENT = 2000


class GradeError(ValueError):
    """Bad grade input; the message says what to fix."""


def can_grade(level: StaffLevel) -> bool:
    """Instructors, the head TA and TAs enter grades (the seed's TAs "submit grades")."""
    return is_staff(level)


def _plain(value: Decimal) -> str:
    """10.0000 -> '10', 7.50 -> '7.5'."""
    return format(value.normalize(), "f")


def parse_score(raw: str, maximum: Decimal) -> Decimal | None:
    """A score typed into the form: empty means "no grade"; otherwise a number from 0 to the maximum (pure)."""
    value = (raw or "").strip().replace(",", ".")
    if not value:
        return None
    try:
        score = Decimal(value)
    except InvalidOperation as exc:
        raise GradeError(f"“{raw.strip()[:20]}” is not a number.") from exc
    if not score.is_finite() or score < 0:
        raise GradeError("A score cannot be negative.")
    if score > maximum:
        raise GradeError(f"{_plain(score)} is above the maximum of {_plain(maximum)} points.")
    if score.as_tuple().exponent < -4:  # type: ignore[operator]
        raise GradeError("Use at most 4 decimal places.")
    return score


def parse_comment(raw: str) -> str:
    """A comment (trimmed; at most 2,000 characters)."""
    comment = (raw or "").strip()
    if len(comment) > MAX_COMMENT:
        raise GradeError(f"A comment can have at most {MAX_COMMENT} characters.")
    return comment


@dataclass(frozen=True)
class GradeRow:
    """One student's line on the grades page."""

    person: Person
    enrollment: Enrollment
    grade: LmsGrade | None


def line_items(session: Session, course_id: int) -> list[LmsLineItem]:
    """The course's gradebook columns, assignments first."""
    return list(
        session.scalars(
            select(LmsLineItem).where(LmsLineItem.course_id == course_id).order_by(LmsLineItem.kind, LmsLineItem.id)
        )
    )


def grade_rows(session: Session, course_id: int, line_item_id: int) -> list[GradeRow]:
    """Every active student with their grade on one line item, by name."""
    rows = session.execute(
        select(Person, Enrollment, LmsGrade)
        .join(Enrollment, Enrollment.person_id == Person.id)
        .outerjoin(LmsGrade, (LmsGrade.person_id == Person.id) & (LmsGrade.line_item_id == line_item_id))
        .where(
            Enrollment.course_id == course_id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(Person.family_name, Person.name, Person.id)
    ).all()
    return [GradeRow(p, e, g) for p, e, g in rows]


def enter_grade(
    session: Session,
    *,
    item: LmsLineItem,
    person_id: int,
    score: Decimal,
    comment: str,
    actor_person_id: int | None,
    audit: bool = True,
) -> bool:
    """Store a score (a new version only if it changed); True when the passback has something to post."""
    now = utcnow()
    created = session.scalar(  # two graders saving at once: one inserts, the other updates below
        insert(LmsGrade)
        .values(
            course_id=item.course_id,
            line_item_id=item.id,
            person_id=person_id,
            score_given=score,
            score_maximum=item.score_maximum,
            comment=comment,
            version=1,
            changed_at=now,
            entered_by=actor_person_id,
            status=GradeStatus.PENDING,
            attempts=0,
            last_error="",
            posted_version=0,
        )
        .on_conflict_do_nothing(constraint="uq_lms_grades_item_person")
        .returning(LmsGrade.id)
    )
    before = None
    if created is None:
        grade = session.scalar(
            select(LmsGrade).where(LmsGrade.line_item_id == item.id, LmsGrade.person_id == person_id).with_for_update()
        )
        assert grade is not None
        if grade.score_given == score and grade.comment == comment and grade.score_maximum == item.score_maximum:
            return False  # the same score is not posted twice
        before = None if grade.score_given is None else str(grade.score_given)  # a usage comment had no grade
        grade.score_given, grade.comment, grade.score_maximum = score, comment, item.score_maximum
        grade.version += 1
        grade.changed_at, grade.entered_by = now, actor_person_id
        grade.status, grade.attempts, grade.last_error = GradeStatus.PENDING, 0, ""
    session.flush()
    if audit:
        append_event(
            session,
            "grade.entered",
            actor_person_id=actor_person_id,
            course_id=item.course_id,
            subject=str(person_id),
            details={
                "line_item": item.id,
                "label": item.label,
                "score": str(score),
                "before": before,
                "comment": bool(comment),
            },
        )
    return True


def retry_grades(session: Session, course_id: int, grade_ids: Sequence[int], *, actor_person_id: int) -> int:
    """Put failed or rejected grades back in the queue (audited); returns how many."""
    result = session.execute(
        update(LmsGrade)
        .where(
            LmsGrade.course_id == course_id,
            LmsGrade.id.in_(grade_ids),
            LmsGrade.status.in_((GradeStatus.FAILED, GradeStatus.REJECTED)),
        )
        .values(status=GradeStatus.PENDING, attempts=0, last_error="")
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        append_event(
            session,
            "grade.retry",
            actor_person_id=actor_person_id,
            course_id=course_id,
            details={"grades": list(grade_ids)[:100], "count": count},
        )
    return count


def add_line_item(session: Session, course_id: int, *, label: str, points: str, actor_person_id: int) -> LmsLineItem:
    """A gradebook column made by the tool; the passback job creates it in the LMS before its first score."""
    label = (label or "").strip()
    if not label or len(label) > 255:
        raise GradeError("Give the column a name (at most 255 characters).")
    try:
        maximum = Decimal((points or "").strip())
    except InvalidOperation as exc:
        raise GradeError("Points must be a number, for example 100.") from exc
    if not maximum.is_finite() or maximum <= 0 or maximum > 100000:
        raise GradeError("Points must be above 0 (and at most 100,000).")
    item = LmsLineItem(
        course_id=course_id,
        url="",
        label=label,
        score_maximum=maximum,
        tag="cloud-workstation",
        kind=LineItemKind.ASSIGNMENT,
        resource_link_id="",
    )
    session.add(item)
    session.flush()
    append_event(
        session,
        "line_item.created",
        actor_person_id=actor_person_id,
        course_id=course_id,
        subject=label,
        details={"points": str(maximum), "line_item": item.id},
    )
    return item


def status_counts(session: Session, course_id: int) -> dict[str, int]:
    """How many grades are in each passback state."""
    from sqlalchemy import func

    rows = session.execute(
        select(LmsGrade.status, func.count()).where(LmsGrade.course_id == course_id).group_by(LmsGrade.status)
    ).all()
    return {status.value: int(n) for status, n in rows}
