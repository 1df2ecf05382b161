"""Notify a person: an in-tool notification and, when they have an address, an email in the outbox.

Both rows are written in the caller's transaction; the outbox job sends emails after the commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.mail import Mailer, MailError
from classroom.models import Notification, OutboxEmail, Person


def notify(session: Session, *, person_id: int, course_id: int, subject: str, body: str, email: bool = True) -> None:
    """Write the notification (and the email) for one person (flushes)."""
    session.add(Notification(course_id=course_id, person_id=person_id, subject=subject[:255], body=body))
    address = session.scalar(select(Person.email).where(Person.id == person_id)) if email else None
    if address:
        session.add(OutboxEmail(to_address=address, subject=subject[:255], body=body))
    session.flush()


def notify_instructors(session: Session, course_id: int, *, subject: str, body: str) -> int:
    """Notify the course's owner and instructors; returns how many were notified."""
    from classroom.models import Enrollment
    from classroom.roles import CONFIGURING_LEVELS

    staff = session.scalars(
        select(Enrollment.person_id).where(Enrollment.course_id == course_id, Enrollment.level.in_(CONFIGURING_LEVELS))
    ).all()
    for person_id in staff:
        notify(session, person_id=person_id, course_id=course_id, subject=subject, body=body)
    return len(staff)


def unread(session: Session, person_id: int, course_id: int, limit: int = 10) -> list[Notification]:
    """The person's newest unread notifications in a course."""
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.person_id == person_id, Notification.course_id == course_id, Notification.read_at.is_(None)
            )
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def send_outbox(session: Session, mailer: Mailer, *, batch: int = 100, max_attempts: int = 5) -> int:
    """Send unsent emails (locking them, so two workers never send one twice); returns how many went out."""
    rows = session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.sent_at.is_(None), OutboxEmail.attempts < max_attempts)
        .order_by(OutboxEmail.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for row in rows:
        row.attempts += 1
        try:
            mailer.send(row.to_address, row.subject, row.body)
        except MailError as exc:
            row.last_error = str(exc)
            continue
        row.sent_at, row.last_error = utcnow(), ""
        sent += 1
    session.flush()
    return sent
