"""Academic integrity: per-course settings, deadline snapshots, similarity runs and audit purges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow

DEFAULT_SNAPSHOT_PATH = "homework/{assignment}"


class IntegritySettings(Base):
    """What a course's integrity evidence uses: campus address ranges, command recording, snapshot folder."""

    __tablename__ = "integrity_settings"
    __table_args__ = (CheckConstraint("similarity_threshold BETWEEN 1 AND 100", name="similarity_threshold"),)

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    campus_ranges: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)  # CIDRs
    record_commands: Mapped[bool] = mapped_column(Boolean, default=False)  # students are told on /app/recorded
    snapshot_path: Mapped[str] = mapped_column(String(128), default=DEFAULT_SNAPSHOT_PATH)
    similarity_threshold: Mapped[int] = mapped_column(Integer, default=60)  # percent
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadlineSnapshot(Base):
    """One student's assignment folder at the due time: a content-addressed tar.gz in the archive bucket."""

    __tablename__ = "deadline_snapshots"
    __table_args__ = (UniqueConstraint("workspace_id", "link_key", name="uq_deadline_snapshots_ws_link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(Integer)  # a plain id: the evidence outlives the workspace row
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    link_key: Mapped[str] = mapped_column(String(255))
    folder: Mapped[str] = mapped_column(String(255))
    due_at: Mapped[datetime] = mapped_column()
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    s3_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    files: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SimilarityRun(Base):
    """One copydetect run over an assignment's snapshots: progress while it runs, then the pairs found."""

    __tablename__ = "similarity_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    link_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[int] = mapped_column(Integer)
    starter: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # file name -> starter code text
    pairs: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditPurge(Base):
    """What a retention purge removed: a course's whole audit chain and activity, after its retention."""

    __tablename__ = "audit_purges"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(Integer)
    audit_events: Mapped[int] = mapped_column(Integer)
    activity_events: Mapped[int] = mapped_column(Integer)
    first_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_hash: Mapped[str] = mapped_column(String(64), default="")
    purged_at: Mapped[datetime] = mapped_column(default=utcnow)
