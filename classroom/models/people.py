"""People, courses and enrollments."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from classroom.db import Base, utcnow
from classroom.models.platform import Platform
from classroom.roles import StaffLevel


def _values(e: type[enum.Enum]) -> list[str]:
    return [str(m.value) for m in e]


class EnrollmentStatus(enum.StrEnum):
    """Dropped members keep their data but lose access."""

    ACTIVE = "active"
    DROPPED = "dropped"


class Person(Base):
    """A user of one platform, identified by the platform's `sub`."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("platform_id", "sub", name="uq_people_platform_sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    is_test_user: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    platform: Mapped[Platform] = relationship()

    @property
    def display_name(self) -> str:
        """Best human-readable name we have."""
        return self.name or " ".join(p for p in (self.given_name, self.family_name) if p) or self.email or self.sub


def course_name(label: str, title: str, context_id: str) -> str:
    """A course's label and title as the LMS shows them (Course.display_name, for rows read without the model)."""
    if label and title and label != title:
        return f"{label} - {title}"
    return title or label or context_id


class Course(Base):
    """One LMS context (course) on one platform; term dates are in the course's time zone."""

    __tablename__ = "courses"
    __table_args__ = (
        UniqueConstraint("platform_id", "context_id", name="uq_courses_platform_context"),
        CheckConstraint("term_end IS NULL OR term_start IS NULL OR term_end >= term_start", name="term_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="RESTRICT"))
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(512), default="")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    term_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    term_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Next term (migration 0028): the course a duplicate came from, and the LMS's $Context.id.history claim.
    previous_course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"), nullable=True)
    context_history: Mapped[str] = mapped_column(Text, default="", server_default="")

    platform: Mapped[Platform] = relationship()

    @property
    def display_name(self) -> str:
        """Label and title as the LMS shows them."""
        return course_name(self.label, self.title, self.context_id)


class Enrollment(Base):
    """A person in a course: the LTI roles as sent, and the tool's own staff level."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("course_id", "person_id", name="uq_enrollments_course_person"),
        Index("uq_enrollments_one_owner", "course_id", unique=True, postgresql_where=text("level = 'owner'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    lti_roles: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)  # as sent at the latest launch
    nrps_roles: Mapped[list[str]] = mapped_column(
        ARRAY(String(255)), default=list, server_default=text("'{}'::varchar[]")
    )  # as listed by the latest roster sync
    level_pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # set by the owner
    level: Mapped[StaffLevel] = mapped_column(Enum(StaffLevel, name="staff_level", values_callable=_values))
    status: Mapped[EnrollmentStatus] = mapped_column(
        Enum(EnrollmentStatus, name="enrollment_status", values_callable=_values),
        default=EnrollmentStatus.ACTIVE,
    )
    section: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_launch_at: Mapped[datetime | None] = mapped_column(nullable=True)
    welcomed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the welcome message went out (once)

    course: Mapped[Course] = relationship()
    person: Mapped[Person] = relationship()
