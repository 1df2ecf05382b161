"""Notify a person: an in-tool notification and, when they have an address, an email in the outbox.

Both rows are written in the caller's transaction; the outbox job sends emails after the commit, with the files
attached to them (outbox_attachments, for the final report's PDF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.mail import Attachment, Mailer, MailError
from classroom.models import Enrollment, Notification, OutboxAttachment, OutboxEmail
from classroom.roles import CONFIGURING_LEVELS


@dataclass(frozen=True)
class Message:
    """One notification to one person in one course."""

    person_id: int
    course_id: int
    subject: str
    body: str


NOTIFY_MANY_SQL = text("""
WITH m AS (
    SELECT * FROM unnest(CAST(:people AS int[]), CAST(:courses AS int[]), CAST(:subjects AS text[]),
                         CAST(:bodies AS text[])) AS m(person_id, course_id, subject, body)
), n AS (
    INSERT INTO notifications (course_id, person_id, subject, body, created_at)
    SELECT course_id, person_id, left(subject, 255), body, :now FROM m
)
INSERT INTO outbox_emails (to_address, subject, body, created_at, attempts, last_error)
SELECT p.email, left(m.subject, 255), m.body, :now, 0, ''
FROM m JOIN people p ON p.id = m.person_id
WHERE CAST(:email AS boolean) AND COALESCE(p.email, '') <> ''
RETURNING id
""")


def notify_many(
    session: Session, messages: list[Message], *, email: bool = True, attachments: Sequence[Attachment] = ()
) -> int:
    """Write the notifications (and, for people with an address, the emails, each with `attachments`) in one
    statement (and one more for the files); returns how many."""
    if not messages:
        return 0
    session.flush()  # pending ORM rows (people, courses) first
    emails = session.scalars(
        NOTIFY_MANY_SQL,
        {
            "people": [m.person_id for m in messages],
            "courses": [m.course_id for m in messages],
            "subjects": [m.subject for m in messages],
            "bodies": [m.body for m in messages],
            "now": utcnow(),
            "email": email,
        },
    ).all()
    if attachments and emails:
        session.execute(
            insert(OutboxAttachment),
            [
                {"email_id": e, "filename": a.filename, "content_type": a.content_type, "data": a.data}
                for e in emails
                for a in attachments
            ],
        )
    return len(messages)


def notify(session: Session, *, person_id: int, course_id: int, subject: str, body: str, email: bool = True) -> None:
    """Write the notification (and the email) for one person."""
    notify_many(session, [Message(person_id, course_id, subject, body)], email=email)


def instructors_of(session: Session, course_ids: set[int]) -> dict[int, list[int]]:
    """The owners and instructors of each course (one query)."""
    rows = session.execute(
        select(Enrollment.course_id, Enrollment.person_id).where(
            Enrollment.course_id.in_(course_ids), Enrollment.level.in_(CONFIGURING_LEVELS)
        )
    )
    staff: dict[int, list[int]] = {c: [] for c in course_ids}
    for course_id, person_id in rows:
        staff[course_id].append(person_id)
    return staff


def notify_instructors(
    session: Session, course_id: int, *, subject: str, body: str, attachments: Sequence[Attachment] = ()
) -> int:
    """Notify the course's owner and instructors (their emails carry `attachments`); returns how many."""
    staff = instructors_of(session, {course_id})[course_id]
    return notify_many(session, [Message(p, course_id, subject, body) for p in staff], attachments=attachments)


def attachments_of(session: Session, email_ids: list[int]) -> dict[int, list[Attachment]]:
    """The files of these outbox emails, in the order they were attached (one query)."""
    files: dict[int, list[Attachment]] = {}
    if not email_ids:
        return files
    rows = session.execute(
        select(OutboxAttachment.email_id, OutboxAttachment.filename, OutboxAttachment.content_type,
               OutboxAttachment.data)
        .where(OutboxAttachment.email_id.in_(email_ids))
        .order_by(OutboxAttachment.id)
    )  # fmt: skip
    for email_id, name, kind, data in rows:
        files.setdefault(email_id, []).append(Attachment(name, kind, bytes(data)))
    return files


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
    files = attachments_of(session, [row.id for row in rows])
    sent = 0
    for row in rows:
        row.attempts += 1
        try:
            mailer.send(row.to_address, row.subject, row.body, files.get(row.id, []))
        except MailError as exc:
            row.last_error = str(exc)
            continue
        row.sent_at, row.last_error = utcnow(), ""
        sent += 1
    session.flush()
    return sent
