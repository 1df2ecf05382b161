"""People added by CSV import before the LMS told us who they are ("csv:<email>" placeholders)."""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Enrollment, Notification
from lms_sync.roster import PLACEHOLDER_PREFIX


def placeholder_sub(email: str) -> str:
    """The sub a CSV-imported person carries until their LMS account is known."""
    return PLACEHOLDER_PREFIX + email.strip().lower()


def fold_placeholder(session: Session, course_id: int, placeholder_id: int, person_id: int) -> None:
    """Merge a placeholder into the real person: section and notifications move over, the placeholder goes."""
    old = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == placeholder_id)
    )
    real = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == person_id)
    )
    if old is not None and real is None:
        old.person_id = person_id  # the real person had no enrollment here yet: take the imported one
    elif old is not None and real is not None and not real.section:
        real.section = old.section
    session.flush()
    session.execute(update(Notification).where(Notification.person_id == placeholder_id).values(person_id=person_id))
    session.execute(text("DELETE FROM people WHERE id = :id"), {"id": placeholder_id})
    append_event(
        session,
        "enrollment.matched",
        course_id=course_id,
        subject=str(person_id),
        details={"placeholder": placeholder_id},
    )
