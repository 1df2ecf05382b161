"""Send the final report to the course's instructors through the notification outbox (term end calls it once)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.final_figures import cents
from classroom.budget.final_text import plain_text
from classroom.models import Course
from classroom.notify import notify_instructors
from classroom.services.final_report import final_report


def send_final_report(session: Session, course: Course) -> int:
    """Queue the report email to the owner and instructors; returns how many were told (flushes, caller commits)."""
    report = final_report(session, course)
    if report is None:
        return 0
    body = plain_text(report) + "\nThe report, its PDF and the grade correlation export are in Cloud Workstation.\n"
    sent = notify_instructors(session, course.id, subject=f"[{course.display_name}] Final course report", body=body)
    append_event(session, "report.final_sent", course_id=course.id,
                 details={"recipients": sent, "total_spent": str(cents(report.total_spent))})  # fmt: skip
    return sent
