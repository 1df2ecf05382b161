"""Roster growth against the course's IT allocation: when enrolments take the allocation (students x per-student
budget + grants) past the course total, the instructors are told, once per crossing.

The enrolment itself is never refused (a student must always reach the course); what protects the total is the
course position (classroom.services.course_money): a launch the course cannot cover is refused with its figures,
and at the total the sweep stops the course's workspaces. The alert uses the sweep's dedupe (alerts_sent, kind
`allocation-over`, the once-a-term day): recorded when the allocation goes over, removed when a later check finds
it fits again, so the next crossing alerts again. Each crossing is audited with its figures. Flushes, never commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.enforcement import COURSE_PERSON, ONCE
from classroom.budget.messages import Message
from classroom.budget.policy import money
from classroom.models import AlertSent, Course
from classroom.notify import notify_instructors
from classroom.services.course_money import Allocation, allocation

KIND = "allocation-over"


def over_allocation_message(course: str, a: Allocation) -> Message:
    """The notice instructors get when the roster and grants promise more than the course total."""
    return Message(
        f"[{course}] Enrolment is over the course's IT allocation",
        f"{course} now has {a.students} students at {money(a.per_student)} each, plus {money(a.grants)} of grants: "
        f"{money(a.allocated)} promised against the {money(a.total)} course total, {money(-a.unallocated)} over. "
        "Every student can still open the course, but at the course total launches are refused and running "
        "workspaces stop. Ask your IT department to raise the allocation, or lower the budget per student.",
    )


def check_allocation(session: Session, course_id: int, now: datetime) -> bool:
    """After enrolments changed: alert the instructors if the allocation just went over the course total (once
    per crossing), re-arm when it fits; True when an alert was sent."""
    a = allocation(session, course_id)
    mine = (AlertSent.course_id == course_id, AlertSent.person_id == COURSE_PERSON, AlertSent.kind == KIND)
    if a is None or a.unallocated >= 0:
        session.execute(delete(AlertSent).where(*mine))  # fits (again): the next crossing alerts again
        return False
    fresh = session.scalar(
        insert(AlertSent)
        .values(course_id=course_id, person_id=COURSE_PERSON, kind=KIND, day=ONCE, created_at=now)
        .on_conflict_do_nothing(constraint="uq_alerts_sent_once")
        .returning(AlertSent.id)
    )
    if fresh is None:
        return False
    details = {"students": a.students, "per_student": str(a.per_student), "grants": str(a.grants),
               "allocated": str(a.allocated), "total": str(a.total), "over": str(-a.unallocated)}  # fmt: skip
    append_event(session, "course.over_allocation", course_id=course_id, details=details)
    course = session.get(Course, course_id)
    msg = over_allocation_message(course.display_name if course else f"Course {course_id}", a)
    notify_instructors(session, course_id, subject=msg.subject, body=msg.body)
    return True
