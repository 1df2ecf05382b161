"""Staff debug sessions on a student's workspace, their recordings, workspace resets and home backups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow

DEFAULT_KEEP_PATHS = ["homework/", "*.ipynb"]
ACTIVE_RESET = "state NOT IN ('done', 'failed')"


class DebugSession(Base):
    """One time-boxed SSH session of a staff member on a student's workspace (view-only unless full control)."""

    __tablename__ = "debug_sessions"
    __table_args__ = (
        CheckConstraint("mode IN ('view', 'full')", name="ck_debug_sessions_mode"),
        CheckConstraint("mode = 'view' OR full_reason <> ''", name="ck_debug_sessions_full_reason"),
        Index("ix_debug_sessions_ws", "workspace_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    student_person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    staff_person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    cert_id: Mapped[int] = mapped_column(ForeignKey("staff_ssh_certs.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[str] = mapped_column(String(8))  # view | full
    reason: Mapped[str] = mapped_column(Text)
    full_reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_by_person_id: Mapped[int | None] = mapped_column(nullable=True)


class DebugRecording(Base):
    """One SSH channel of a debug session recorded in asciinema v2 format, stored in the archive bucket."""

    __tablename__ = "debug_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    debug_session_id: Mapped[int] = mapped_column(ForeignKey("debug_sessions.id", ondelete="CASCADE"), index=True)
    s3_key: Mapped[str] = mapped_column(Text, unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceBackup(Base):
    """A whole home saved to the archive bucket as tar.gz, its SHA-256 verified after upload."""

    __tablename__ = "workspace_backups"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    s3_key: Mapped[str] = mapped_column(Text, unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(default=0)
    created_by_person_id: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceReset(Base):
    """A reset of one workspace: backup, fresh instance, restore of the keep paths, switch. One at a time."""

    __tablename__ = "workspace_resets"
    __table_args__ = (
        Index("uq_workspace_resets_one_active", "workspace_id", unique=True, postgresql_where=text(ACTIVE_RESET)),
        CheckConstraint(
            "state IN ('queued', 'backing_up', 'launching', 'restoring', 'switching', 'done', 'failed')",
            name="ck_workspace_resets_state",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    staff_person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    old_instance_id: Mapped[str] = mapped_column(String(32))
    new_instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    new_agent_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("workspace_backups.id"), nullable=True)
    kept: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # restored paths and their SHA-256
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # EC2: the new instance's host keys as its own agent reported them first (a later, different report is kept
    # apart and fails the reset), when that agent was last seen, when the instance was launched, and when the
    # old instance's end was asked for (after the switch)
    new_host_keys: Mapped[str] = mapped_column(Text, default="", server_default="")
    new_host_keys_refused: Mapped[str] = mapped_column(Text, default="", server_default="")
    new_agent_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    old_end_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CourseResetSettings(Base):
    """What a reset keeps, per course (glob patterns relative to the home; a trailing / keeps a folder)."""

    __tablename__ = "course_reset_settings"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    keep_paths: Mapped[list[str]] = mapped_column(JSONB, default=lambda: list(DEFAULT_KEEP_PATHS))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
