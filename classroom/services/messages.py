"""Messages between staff and one student: sent (audited), shown in the tool, emailed, shown at the next SSH login,
read state kept, and replies from the student.

A double-clicked Send is one message: each form carries a one-time `client_key`, unique per author.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import HelpRequest, Person, StaffMessage, Workspace
from classroom.models.ta import ATTACHMENT_MAX_BYTES
from classroom.notify import notify
from classroom.services.help_requests import is_student_of
from classroom.ta_text import OfficeInputError, clean_line, clean_path, clean_subject, clean_text

SUBJECT_MAX = 200
BODY_MAX = 10_000
CLIENT_KEY_MAX = 64
BANNER_MAX = 5  # messages listed at an SSH login; the rest are counted


class MessageNotFound(OfficeInputError):
    status = 404


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (stored in the row; at most ATTACHMENT_MAX_BYTES)."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    """What the author typed."""

    subject: str
    body: str
    file_path: str = ""
    line: str | int | None = None
    client_key: str = ""


@dataclass(frozen=True)
class ThreadItem:
    """One message with its author's name (the thread page)."""

    message: StaffMessage
    author_name: str


def _check(draft: Draft, attachment: Attachment | None) -> tuple[str, str, str, int | None, str]:
    subject = clean_subject(draft.subject, SUBJECT_MAX)
    body = clean_text(draft.body, BODY_MAX, "The message")
    if not body:
        raise OfficeInputError("Please write the message.")
    path, line = clean_path(draft.file_path), clean_line(draft.line)
    if line is not None and not path:
        raise OfficeInputError("A line number needs a file path.")
    key = draft.client_key.strip()
    if not key or len(key) > CLIENT_KEY_MAX or not key.isascii():
        raise OfficeInputError("This form has expired. Reload the page and send again.")
    if attachment is not None and len(attachment.data) > ATTACHMENT_MAX_BYTES:
        kib = ATTACHMENT_MAX_BYTES // 1024
        raise OfficeInputError(f"The attachment is too large: at most {kib} KiB, {len(attachment.data):,} bytes given.")
    return subject, body, path, line, key


def _insert(session: Session, values: dict[str, object]) -> tuple[StaffMessage, bool]:
    new_id = session.scalar(
        pg_insert(StaffMessage)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_staff_messages_author_key")
        .returning(StaffMessage.id)
    )
    created = new_id is not None
    if new_id is None:  # the same form sent twice: the first one stands
        new_id = session.scalar(
            select(StaffMessage.id).where(
                StaffMessage.author_id == values["author_id"], StaffMessage.client_key == values["client_key"]
            )
        )
    msg = session.get(StaffMessage, new_id)
    assert msg is not None
    return msg, created


def send_message(
    session: Session,
    course_id: int,
    *,
    author_id: int,
    student_id: int,
    draft: Draft,
    attachment: Attachment | None = None,
    help_request_id: int | None = None,
) -> tuple[StaffMessage, bool]:
    """Staff to a student of this course; audited, notified in the tool and by email. False: already sent."""
    if not is_student_of(session, course_id, student_id):
        raise MessageNotFound("There is no such student in this course.")
    subject, body, path, line, key = _check(draft, attachment)
    if (
        help_request_id is not None
        and session.scalar(
            select(HelpRequest.id).where(
                HelpRequest.id == help_request_id,
                HelpRequest.course_id == course_id,
                HelpRequest.person_id == student_id,
            )
        )
        is None
    ):
        help_request_id = None  # a stale or foreign reference is dropped, never followed
    msg, created = _insert(session, {
        "course_id": course_id, "student_id": student_id, "author_id": author_id, "from_student": False,
        "help_request_id": help_request_id, "client_key": key, "subject": subject, "body": body,
        "file_path": path, "line": line, "created_at": utcnow(),
        "attachment_name": attachment.name if attachment else "",
        "attachment_type": attachment.content_type if attachment else "",
        "attachment_size": len(attachment.data) if attachment else 0,
        "attachment": attachment.data if attachment else None,
    })  # fmt: skip
    if not created:
        return msg, False
    append_event(session, "message.sent", actor_person_id=author_id, course_id=course_id, subject=str(student_id),
                 details={"message": msg.id, "help_request": help_request_id, "file": path, "line": line,
                          "attachment_bytes": msg.attachment_size})  # fmt: skip
    author = session.get(Person, author_id)
    where = f"\nFile: {path}" + (f", line {line}" if line else "") if path else ""
    notify(session, person_id=student_id, course_id=course_id,
           subject=f"Message from {author.display_name if author else 'your course staff'}: {subject}",
           body=f"{body}{where}\n\nOpen Cloud Workstation from your course to reply.")  # fmt: skip
    return msg, True


def reply(
    session: Session, course_id: int, student_id: int, message_id: int, *, body: str, client_key: str
) -> tuple[StaffMessage, bool]:
    """The student answers a message sent to them; its author is told (tool and email)."""
    original = session.scalar(
        select(StaffMessage).where(
            StaffMessage.id == message_id, StaffMessage.course_id == course_id, StaffMessage.student_id == student_id
        )
    )
    if original is None:
        raise MessageNotFound("There is no such message.")
    subject = original.subject if original.subject.startswith("Re: ") else f"Re: {original.subject}"
    _, text_, _, _, key = _check(Draft(subject[:SUBJECT_MAX], body, client_key=client_key), None)
    staff_id = original.author_id if not original.from_student else None
    msg, created = _insert(session, {
        "course_id": course_id, "student_id": student_id, "author_id": student_id, "from_student": True,
        "reply_to": original.id, "help_request_id": original.help_request_id, "client_key": key,
        "subject": subject[:SUBJECT_MAX], "body": text_, "file_path": "", "line": None, "created_at": utcnow(),
        "attachment_name": "", "attachment_type": "", "attachment_size": 0,
    })  # fmt: skip
    if not created:
        return msg, False
    append_event(session, "message.replied", actor_person_id=student_id, course_id=course_id, subject=str(student_id),
                 details={"message": msg.id, "reply_to": original.id})  # fmt: skip
    if staff_id is not None:
        student = session.get(Person, student_id)
        notify(session, person_id=staff_id, course_id=course_id,
               subject=f"{student.display_name if student else 'A student'} replied: {msg.subject}"[:255],
               body=f"{text_}\n\nOpen the student's messages in Cloud Workstation to answer.")  # fmt: skip
    return msg, True


def thread(session: Session, course_id: int, student_id: int) -> list[ThreadItem]:
    """Every message between staff and this student, oldest first (one statement; attachments not loaded)."""
    author = aliased(Person)
    rows = session.execute(
        select(StaffMessage, author)
        .join(author, author.id == StaffMessage.author_id)
        .where(StaffMessage.course_id == course_id, StaffMessage.student_id == student_id)
        .order_by(StaffMessage.id)
    ).all()
    return [ThreadItem(m, a.display_name) for m, a in rows]


def mark_read(session: Session, course_id: int, student_id: int, *, by_student: bool) -> int:
    """Record that the recipient side opened the thread: the student reads staff's messages, staff the replies."""
    return session.execute(
        update(StaffMessage)
        .where(
            StaffMessage.course_id == course_id,
            StaffMessage.student_id == student_id,
            StaffMessage.from_student.is_(not by_student),
            StaffMessage.read_at.is_(None),
        )
        .values(read_at=utcnow())
    ).rowcount


def unread_count(session: Session, course_id: int, student_id: int) -> int:
    """Staff messages the student has not opened yet."""
    return int(
        session.scalar(
            select(func.count(StaffMessage.id)).where(
                StaffMessage.course_id == course_id,
                StaffMessage.student_id == student_id,
                StaffMessage.from_student.is_(False),
                StaffMessage.read_at.is_(None),
            )
        )
        or 0
    )


def load_attachment(session: Session, course_id: int, message_id: int, student_id: int | None) -> StaffMessage:
    """A message with its attachment, in this course (and to this student, when a student asks)."""
    query = select(StaffMessage).where(
        StaffMessage.id == message_id, StaffMessage.course_id == course_id, StaffMessage.attachment_size > 0
    )
    if student_id is not None:
        query = query.where(StaffMessage.student_id == student_id)
    msg = session.scalar(query)
    if msg is None or msg.attachment is None:
        raise MessageNotFound("There is no such attachment.")
    return msg


def login_messages(
    session: Session, workspace_id: int, *, record: bool, now: datetime | None = None
) -> list[dict[str, object]]:
    """The workspace owner's unread staff messages in its course, newest first, for an SSH login banner: the local
    runtime's (`record`: the first showing is kept, as the student saw it) or the EC2 agent's motd (not recorded:
    handing it to the agent is not showing it)."""
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        return []
    return unread_for_login(session, ws.course_id, ws.person_id, record=record, now=now)


def unread_for_login(
    session: Session, course_id: int, person_id: int, *, record: bool, now: datetime | None = None
) -> list[dict[str, object]]:
    """`login_messages` for a workspace whose course and owner are already known (the agent's heartbeat)."""
    author = aliased(Person)
    rows = session.execute(
        select(StaffMessage.id, StaffMessage.subject, StaffMessage.created_at, author.name)
        .join(author, author.id == StaffMessage.author_id)
        .where(
            StaffMessage.course_id == course_id,
            StaffMessage.student_id == person_id,
            StaffMessage.from_student.is_(False),
            StaffMessage.read_at.is_(None),
        )
        .order_by(StaffMessage.id.desc())
    ).all()
    if not rows:
        return []
    if record:
        session.execute(
            update(StaffMessage)
            .where(StaffMessage.id.in_([r.id for r in rows]), StaffMessage.shown_at_login_at.is_(None))
            .values(shown_at_login_at=now or utcnow())
        )
    return [{"id": r.id, "subject": r.subject, "from": r.name, "at": r.created_at.isoformat()} for r in rows]


def banner_text(messages: list[dict[str, object]]) -> str:
    """The login banner for unread messages (pure); empty when there are none."""
    if not messages:
        return ""
    lines = [f"You have {len(messages)} unread message{'s' if len(messages) != 1 else ''} from your course staff:"]
    lines += [f"  * {m['subject']} (from {m['from']})" for m in messages[:BANNER_MAX]]
    if len(messages) > BANNER_MAX:
        lines.append(f"  ... and {len(messages) - BANNER_MAX} more.")
    lines.append("Read and reply in Cloud Workstation: open it from your course, then Messages.")
    return "\n".join(lines) + "\n"
