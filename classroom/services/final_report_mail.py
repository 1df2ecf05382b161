"""Send the final report to the course's instructors through the notification outbox (term end calls it once):
the text in the body, the same report as a PDF attached."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.final_figures import cents
from classroom.budget.final_pdf import pdf_bytes
from classroom.budget.final_text import plain_text
from classroom.mail import Attachment
from classroom.models import Course
from classroom.notify import notify_instructors
from classroom.services.final_report import final_report


def pdf_filename(course: Course) -> str:
    """`final-report-cs-229.pdf`: the course's label (or id) in safe characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", (course.label or f"course {course.id}").lower()).strip("-")
    return f"final-report-{slug or course.id}.pdf"


def send_final_report(session: Session, course: Course) -> int:
    """Queue the report email (PDF attached) to the owner and instructors; returns how many were told (flushes,
    caller commits)."""
    report = final_report(session, course)
    if report is None:
        return 0
    body = (
        plain_text(report)
        + "\nThe report is attached as a PDF. The page and the grade correlation export are in Cloud Workstation.\n"
    )
    pdf = Attachment(pdf_filename(course), "application/pdf", pdf_bytes(report))
    sent = notify_instructors(
        session, course.id, subject=f"[{course.display_name}] Final course report", body=body, attachments=[pdf]
    )
    append_event(session, "report.final_sent", course_id=course.id,
                 details={"recipients": sent, "total_spent": str(cents(report.total_spent))})  # fmt: skip
    return sent
