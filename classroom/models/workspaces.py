"""Workspaces, their state history, per-student SSH keys, agent heartbeats and per-course cloud resources."""

from __future__ import annotations

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
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState

_STATE = Enum(WorkspaceState, name="workspace_state", values_callable=lambda e: [m.value for m in e])
_DESIRED = Enum(DesiredState, name="workspace_desired_state", values_callable=lambda e: [m.value for m in e])


UNCONVERGED = (
    "desired_state IN ('stopped', 'hibernated') AND state NOT IN ('stopped', 'hibernated', 'terminated', 'failed')"
)


class Workspace(Base):
    """A student's workspace; at most one live per (course, person, link_key).

    link_key is what the course shares a workspace by: "template:<id>" (one per student and template, the
    default) or an assignment's resource link id (per-assignment workspaces, a course option).
    """

    __tablename__ = "workspaces"
    __table_args__ = (
        Index(
            "uq_workspaces_one_live",
            "course_id",
            "person_id",
            "link_key",
            unique=True,
            postgresql_where=text("state NOT IN ('terminated', 'failed')"),
        ),
        Index("ix_workspaces_state", "state"),
        Index("ix_workspaces_unconverged_stops", "desired_state", postgresql_where=text(UNCONVERGED)),
        CheckConstraint("archive_tries >= 0", name="archive_tries"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    link_key: Mapped[str] = mapped_column(String(255))
    link_title: Mapped[str] = mapped_column(String(255), default="")
    template_id: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(32))
    volume_gb: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(32))
    state: Mapped[WorkspaceState] = mapped_column(_STATE, default=WorkspaceState.REQUESTED)
    instance_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(32), default="")
    public_ip: Mapped[str] = mapped_column(String(64), default="")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    stop_mode: Mapped[str] = mapped_column(String(16), default="")  # "", "stop" or "hibernate": what was asked
    # Intent, apart from the observed `state`: requests write it, reconcile drives AWS toward it and never
    # rewrites it. The stop_* columns say how the drive toward a wanted stop is going (shown on the page).
    desired_state: Mapped[DesiredState] = mapped_column(_DESIRED, default=DesiredState.RUNNING)
    desired_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    stop_attempts: Mapped[int] = mapped_column(Integer, default=0)
    stop_last_error: Mapped[str] = mapped_column(Text, default="")
    stop_next_try_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stop_alerted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    agent_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    agent_token_revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(nullable=True)
    metered_until: Mapped[datetime] = mapped_column(default=utcnow)  # the ledger covers up to here
    # Intent to end: archive the home once stopped, then delete the disk at or after this time.
    retire_after: Mapped[datetime | None] = mapped_column(nullable=True)
    retire_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # whose date it is ('term-end', ...)
    # Where the agent archives the home (real EC2): asked, reported (verified by the retire job), or given up.
    archive_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    archive_reported_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    archive_reported_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    archive_failed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Archives before term end (migration 0020): when the report arrived, the last heartbeat counting changed
    # files (a later change makes the report stale), and a start for the archive only (the sweep spares it until).
    archive_reported_at: Mapped[datetime | None] = mapped_column(nullable=True)
    home_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    archiving_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # When that start was asked for (migration 0029): its running, until the next stop, is the course's cost.
    archive_started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Retries and staff's choice (migration 0030): failed tries so far, when the next is due (None: given up),
    # and when staff chose to delete the disk without an archive (the retire flow then ends it as usual).
    archive_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archive_retry_at: Mapped[datetime | None] = mapped_column(nullable=True)
    archive_waived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The final archive after the lockout (migration 0031): when the student was locked out for it (sessions
    # ended, keys removed through the heartbeat answer), and the heartbeat whose answer first carried that.
    locked_out_at: Mapped[datetime | None] = mapped_column(nullable=True)
    lockout_answered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Pinned SSH host keys (migration 0028, observed): the agent's first report for `ssh_host_keys_instance_id`
    # (one "type base64" line per key); a later, different report is refused and kept apart, never pinned.
    ssh_host_keys: Mapped[str] = mapped_column(Text, default="", server_default="")
    ssh_host_keys_instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ssh_host_keys_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ssh_host_keys_refused: Mapped[str] = mapped_column(Text, default="", server_default="")
    ssh_host_keys_refused_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WorkspaceEvent(Base):
    """Every state change with its time: the intervals metering is computed from."""

    __tablename__ = "workspace_events"
    __table_args__ = (Index("ix_workspace_events_ws_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[WorkspaceState | None] = mapped_column(_STATE, nullable=True)
    to_state: Mapped[WorkspaceState] = mapped_column(_STATE)
    actor: Mapped[str] = mapped_column(String(32), default="system")
    reason: Mapped[str] = mapped_column(Text, default="")


class SshKey(Base):
    """A student's public key; its fingerprint is bound to one person for ever (SshKeyFingerprint)."""

    __tablename__ = "ssh_keys"
    __table_args__ = (
        Index(
            "uq_ssh_keys_active_fingerprint", "fingerprint", unique=True, postgresql_where=text("revoked_at IS NULL")
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))  # generated | uploaded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SshKeyFingerprint(Base):
    """A public key's fingerprint bound to the first person who registered it, for ever (revoking never frees it)."""

    __tablename__ = "ssh_key_fingerprints"

    fingerprint: Mapped[str] = mapped_column(String(128), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class Heartbeat(Base):
    """One report from a workspace agent."""

    __tablename__ = "heartbeats"
    __table_args__ = (Index("ix_heartbeats_ws_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ssh_sessions: Mapped[int] = mapped_column(Integer, default=0)
    jupyter_active: Mapped[bool] = mapped_column(Boolean, default=False)
    cpu_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    mem_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), nullable=True)  # None: an older agent
    disk_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), nullable=True)  # of the home's file system
    changed_files: Mapped[int] = mapped_column(Integer, default=0)


class CourseCloud(Base):
    """Cloud resources shared by one course: security group, materials file system and access points."""

    __tablename__ = "course_clouds"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    region: Mapped[str] = mapped_column(String(32))
    security_group_id: Mapped[str] = mapped_column(String(32), default="")
    file_system_id: Mapped[str] = mapped_column(String(32), default="")
    student_access_point_id: Mapped[str] = mapped_column(String(32), default="")
    staff_access_point_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceFolder(Base):
    """An assignment opened in a workspace: the folder its agent creates in the home (homework/<slug>)."""

    __tablename__ = "workspace_folders"
    __table_args__ = (UniqueConstraint("workspace_id", "link_key", name="uq_workspace_folders_ws_link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    link_key: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(255), default="")
    folder: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceArchive(Base):
    """A workspace's home archived to S3 (tar.gz) before its disk was deleted; S3's lifecycle rule expires it."""

    __tablename__ = "workspace_archives"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True)
    course_id: Mapped[int] = mapped_column(Integer, index=True)
    s3_key: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    retain_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Retention (migration 0020): when it expires (created + retain_days, as S3's rule counts), when it was purged.
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    purged_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArchivePurge(Base):
    """An expired archive the purge job deleted from S3: what it was, and when (kept after the object is gone)."""

    __tablename__ = "archive_purges"

    id: Mapped[int] = mapped_column(primary_key=True)
    archive_id: Mapped[int] = mapped_column(ForeignKey("workspace_archives.id", ondelete="CASCADE"), unique=True)
    course_id: Mapped[int] = mapped_column(Integer, index=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    s3_key: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    expired_at: Mapped[datetime] = mapped_column()
    purged_at: Mapped[datetime] = mapped_column(default=utcnow)
