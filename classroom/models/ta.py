"""Office hours: students' help requests and messages between staff and a student (migration 0021)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from classroom.db import Base, utcnow

HELP_STATUSES = ("open", "claimed", "resolved")
ATTACHMENT_MAX_BYTES = 256 * 1024  # a log excerpt, a small diff or a screenshot; the row stays small
FILE_PATH_MAX = 512


class HelpRequest(Base):
    """A student's call for help: open, then claimed by one staff member, then resolved with a note.

    One unresolved request per student and course (a partial unique index), so a burst of clicks on "Ask for help"
    makes one request; the status columns move together (check constraint), and claim is a conditional UPDATE.
    """

    __tablename__ = "help_requests"
    __table_args__ = (
        Index(
            "uq_help_requests_one_unresolved",
            "course_id",
            "person_id",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index("ix_help_requests_course_status", "course_id", "status"),
        CheckConstraint("status IN ('open', 'claimed', 'resolved')", name="status"),
        CheckConstraint("line IS NULL OR line >= 1", name="line"),
        CheckConstraint(
            "(status = 'open' AND claimed_by IS NULL AND resolved_at IS NULL)"
            " OR (status = 'claimed' AND claimed_by IS NOT NULL AND resolved_at IS NULL)"
            " OR (status = 'resolved' AND resolved_at IS NOT NULL)",
            name="status_columns",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    workspace_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the page it was asked from
    message: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(String(FILE_PATH_MAX), default="")
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolution_note: Mapped[str] = mapped_column(Text, default="")


class StaffMessage(Base):
    """One message in a staff-student thread: staff to the student, or the student's reply (`from_student`).

    `read_at` is when the recipient opened it in the tool; `shown_at_login_at` when it was first shown at an SSH
    login (the local runtime's banner, or the EC2 agent's motd). `client_key` (the form's one-time value) makes a
    double-clicked Send one message. The attachment lives in the row (bounded), loaded only when downloaded.
    """

    __tablename__ = "staff_messages"
    __table_args__ = (
        UniqueConstraint("author_id", "client_key", name="uq_staff_messages_author_key"),
        Index("ix_staff_messages_course_student", "course_id", "student_id"),
        CheckConstraint("line IS NULL OR line >= 1", name="line"),
        CheckConstraint(f"attachment_size BETWEEN 0 AND {ATTACHMENT_MAX_BYTES}", name="attachment_size"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    from_student: Mapped[bool] = mapped_column(default=False)
    reply_to: Mapped[int | None] = mapped_column(ForeignKey("staff_messages.id", ondelete="SET NULL"), nullable=True)
    help_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True
    )
    client_key: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(String(FILE_PATH_MAX), default="")
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attachment_name: Mapped[str] = mapped_column(String(255), default="")
    attachment_type: Mapped[str] = mapped_column(String(100), default="")
    attachment_size: Mapped[int] = mapped_column(Integer, default=0)
    attachment: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shown_at_login_at: Mapped[datetime | None] = mapped_column(nullable=True)
