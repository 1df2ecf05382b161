"""Deliver the sweep's alerts as notifications (in the tool and by email) to students and instructors.

A constant number of statements however many alerts: courses, people and instructors are read in one query
each, and every notification and email is written by one statement (`notify_many`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.budget.enforcement import Alert
from classroom.budget.messages import course_message, instructor_message, student_message
from classroom.models import Course, Person
from classroom.notify import Message, instructors_of, notify_many


def deliver_alerts(session: Session, alerts: list[Alert], positions: dict[tuple[int, int], tuple[str, str]]) -> int:
    """Write a notification per alert (students) or per instructor (anomalies, course totals); returns how many
    were written."""
    if not alerts:
        return 0
    course_ids = {a.course_id for a in alerts}
    courses = {c.id: c for c in session.scalars(select(Course).where(Course.id.in_(course_ids)))}
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_({a.person_id for a in alerts})))}
    staff = instructors_of(session, course_ids)
    messages: list[Message] = []
    for alert in alerts:
        course, person = courses.get(alert.course_id), people.get(alert.person_id)
        spent, cap = positions.get((alert.course_id, alert.person_id), ("?", "?"))
        if course is not None and alert.kind.startswith("course-"):
            msg = course_message(alert, course.display_name, spent, cap)
            messages += [Message(p, course.id, msg.subject, msg.body) for p in staff[course.id]]
            continue
        if course is None or person is None:
            continue
        if alert.kind.startswith("anomaly"):
            msg = instructor_message(alert, course.display_name, person.display_name, spent, cap)
            messages += [Message(p, course.id, msg.subject, msg.body) for p in staff[course.id]]
        else:
            msg = student_message(alert, course.display_name, cap, spent)
            messages.append(Message(person.id, course.id, msg.subject, msg.body))
    return notify_many(session, messages)
