"""A student's archived home brought back after term end, with access reopened for a number of days."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class StudentRestore(Base):
    """One restore (migration 0025): at most one open per student and course; `closed_at` once access ended.

    `outcome` (migration 0026): how bringing the home back went, as the workspace reported it ("" until it does;
    "restored" or "failed" with `outcome_reason`), the bytes downloaded and when it was recorded."""

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
    outcome: Mapped[str] = mapped_column(String(16), default="", server_default="")
    outcome_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    restored_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
