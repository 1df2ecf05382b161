"""Workshops: a walk-in event run as a course of its own (see classroom/workshops.py for why), and its participants.

Only the SHA-256 of a workshop's access code is stored; the organiser sees the code once, when it is made.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow
from classroom.models.budget import MONEY


class Workshop(Base):
    """One workshop: its own course (`course_id`), made from the organiser's LMS course (`origin_course_id`)."""

    __tablename__ = "workshops"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="times"),
        CheckConstraint("max_participants BETWEEN 1 AND 500", name="max_participants"),
        CheckConstraint("budget > 0", name="budget"),
        CheckConstraint("extension_days BETWEEN 0 AND 7", name="extension_days"),
        CheckConstraint("extension_daily_price >= 0 AND extension_allowance >= 0", name="extension_money"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), unique=True)
    origin_course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    organiser_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    max_participants: Mapped[int] = mapped_column(Integer)
    budget: Mapped[Decimal] = mapped_column(MONEY)
    template_id: Mapped[str] = mapped_column(String(64))
    extension_days: Mapped[int] = mapped_column(Integer, default=0)  # 0: no "keep learning" extension offered
    extension_daily_price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    extension_allowance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # set aside for extensions
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the end actions ran (stop, report)
    purged_at: Mapped[datetime | None] = mapped_column(nullable=True)  # every workspace archived and removed


class WorkshopParticipant(Base):
    """A walk-in: a person of the workshop's course (no LMS account), with the name they gave."""

    __tablename__ = "workshop_participants"
    __table_args__ = (UniqueConstraint("person_id", name="uq_workshop_participants_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), default="")
    extension: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
