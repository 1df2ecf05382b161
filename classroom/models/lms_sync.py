"""LMS sync and passback: per-course LMS endpoints, line items, grades to post, due dates, Canvas tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow

SCORE = Numeric(12, 4)


def _values(e: type[enum.Enum]) -> list[str]:
    return [str(m.value) for m in e]


class GradeStatus(enum.StrEnum):
    """Where a grade is on its way to the LMS gradebook."""

    PENDING = "pending"  # entered or changed; the passback job will post it
    POSTING = "posting"  # claimed by a passback job
    POSTED = "posted"  # the LMS accepted this version
    FAILED = "failed"  # retries ran out (rate limits, LMS errors): a person can retry
    REJECTED = "rejected"  # the LMS refused it for good (e.g. the student is not enrolled)


class DueSource(enum.StrEnum):
    """Where a due date came from; each is shown with its source."""

    CANVAS_REST = "canvas_rest"
    AGS_LINE_ITEM = "ags_line_item"
    LAUNCH_CUSTOM = "launch_custom"


class LineItemKind(enum.StrEnum):
    ASSIGNMENT = "assignment"
    USAGE = "usage"


class UsageMode(enum.StrEnum):
    """Where usage passback puts each student's usage."""

    COMMENT = "comment"  # a comment on the score of each assignment whose workspace they opened (the grade kept)
    COLUMN = "column"  # a separate "Workspace usage" gradebook column


class CourseLms(Base):
    """The LMS services of one course, as its latest launch announced them, and the instructor's choices."""

    __tablename__ = "course_lms"
    __table_args__ = (CheckConstraint("usage_mode IN ('comment', 'column')", name="usage_mode"),)

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    nrps_url: Mapped[str] = mapped_column(Text, default="")
    ags_lineitems_url: Mapped[str] = mapped_column(Text, default="")
    ags_scopes: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)
    canvas_course_id: Mapped[str] = mapped_column(String(64), default="")
    usage_passback: Mapped[bool] = mapped_column(Boolean, default=False)
    usage_mode: Mapped[str] = mapped_column(String(16), default=UsageMode.COMMENT, server_default="comment")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LmsLineItem(Base):
    """A gradebook column: made by deep linking (seen at launch or listed by AGS) or by the tool."""

    __tablename__ = "lms_line_items"
    __table_args__ = (
        Index("uq_lms_line_items_course_url", "course_id", "url", unique=True, postgresql_where=text("url <> ''")),
        Index("uq_lms_line_items_one_usage", "course_id", unique=True, postgresql_where=text("kind = 'usage'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    # The LMS's line item id (a URL, query string kept); empty until the tool has created it on the LMS.
    url: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str] = mapped_column(String(255))
    score_maximum: Mapped[Decimal] = mapped_column(SCORE)
    resource_link_id: Mapped[str] = mapped_column(String(255), default="")
    tag: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[LineItemKind] = mapped_column(
        Enum(LineItemKind, name="line_item_kind", values_callable=_values), default=LineItemKind.ASSIGNMENT
    )
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LmsGrade(Base):
    """A score and comment for one student on one line item, and how far it got to the LMS.

    `version` grows on every real change; `posted_version` is the last version the LMS accepted, so an
    unchanged score is never posted twice and a change made while a post is in flight is posted next.
    """

    __tablename__ = "lms_grades"
    __table_args__ = (
        UniqueConstraint("line_item_id", "person_id", name="uq_lms_grades_item_person"),
        Index("ix_lms_grades_course_status", "course_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    line_item_id: Mapped[int] = mapped_column(ForeignKey("lms_line_items.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    score_given: Mapped[Decimal | None] = mapped_column(SCORE, nullable=True)  # None: a comment without a grade
    score_maximum: Mapped[Decimal] = mapped_column(SCORE)
    comment: Mapped[str] = mapped_column(Text, default="")
    usage_comment: Mapped[str] = mapped_column(Text, default="", server_default="")  # posted after `comment`
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)  # the score's AGS timestamp
    entered_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[GradeStatus] = mapped_column(
        Enum(GradeStatus, name="grade_status", values_callable=_values), default=GradeStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    posted_version: Mapped[int] = mapped_column(Integer, default=0)
    posted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class DueDate(Base):
    """One assignment's due date as one source reports it."""

    __tablename__ = "due_dates"
    __table_args__ = (UniqueConstraint("course_id", "source", "key", name="uq_due_dates_course_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    source: Mapped[DueSource] = mapped_column(Enum(DueSource, name="due_source", values_callable=_values))
    key: Mapped[str] = mapped_column(String(512))  # resource link id, line item URL or Canvas assignment id
    title: Mapped[str] = mapped_column(String(512), default="")
    due_at: Mapped[datetime] = mapped_column()
    url: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CanvasToken(Base):
    """An instructor's Canvas REST API authorisation (OAuth2), encrypted at rest."""

    __tablename__ = "canvas_tokens"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    base_url: Mapped[str] = mapped_column(Text)
    access_token: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet ciphertext
    refresh_token: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet ciphertext (may encrypt "")
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    canvas_user_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
