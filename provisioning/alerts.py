"""Deliver the sweep's alerts as notifications (in the tool and by email) to students and instructors."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from classroom.budget.enforcement import Alert
from classroom.budget.messages import instructor_message, student_message
from classroom.models import Course, Person

log = logging.getLogger(__name__)


def deliver_alerts(session: Session, alerts: list[Alert], positions: dict[tuple[int, int], tuple[str, str]]) -> int:
    """Write a notification per alert (students) or per instructor (anomalies); returns how many were written."""
    if not alerts:
        return 0
    from classroom.notify import notify, notify_instructors  # in-tool notifications + email outbox

    written = 0
    for alert in alerts:
        course = session.get(Course, alert.course_id)
        person = session.get(Person, alert.person_id)
        if course is None or person is None:
            continue
        spent, cap = positions.get((alert.course_id, alert.person_id), ("?", "?"))
        if alert.kind.startswith("anomaly"):
            msg = instructor_message(alert, course.display_name, person.display_name, spent, cap)
            written += notify_instructors(session, course.id, subject=msg.subject, body=msg.body)
        else:
            msg = student_message(alert, course.display_name, cap, spent)
            notify(session, person_id=person.id, course_id=course.id, subject=msg.subject, body=msg.body)
            written += 1
    return written
