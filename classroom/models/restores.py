"""A student's archived home brought back after term end, with access reopened for a number of days."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, text
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class StudentRestore(Base):
    """One restore (migration 0028): at most one open per student and course; `closed_at` once access ended."""

    __tablename__ = "student_restores"
    __table_args__ = (
        Index(
            "uq_student_restores_open",
            "course_id",
            "person_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    archive_id: Mapped[int] = mapped_column(ForeignKey("workspace_archives.id", ondelete="RESTRICT"))
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), nullable=True, index=True
    )
    days: Mapped[int] = mapped_column(Integer)
    top_up: Mapped[Decimal] = mapped_column(Numeric(20, 12), default=Decimal(0))
    access_until: Mapped[datetime] = mapped_column()
    restored_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
