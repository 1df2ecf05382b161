"""SSH access to workspaces: each course's certificate authority, staff certificates, and agent activity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class CourseSshCa(Base):
    """A course's SSH user certificate authority; its private key is stored encrypted (Fernet), never logged."""

    __tablename__ = "course_ssh_cas"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)  # OpenSSH line: what workspaces trust (TrustedUserCAKeys)
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSshCert(Base):
    """One short-lived certificate issued to a staff member for one workspace session (revocable)."""

    __tablename__ = "staff_ssh_certs"
    __table_args__ = (Index("ix_staff_ssh_certs_ws", "workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, unique=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    staff_person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(255))  # names the staff member and the session
    principal: Mapped[str] = mapped_column(String(64))  # the workspace's login
    public_key_fingerprint: Mapped[str] = mapped_column(String(128))
    valid_after: Mapped[datetime] = mapped_column()
    valid_before: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ActivityEvent(Base):
    """One thing an agent saw inside a workspace. Append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "event_id", name="uq_activity_events_ws_event"),
        Index("ix_activity_events_ws_at", "workspace_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column()  # a plain id, as in the audit log: the record outlives the row
    event_id: Mapped[str] = mapped_column(String(64))  # the agent's idempotent id
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column()
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
