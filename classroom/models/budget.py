"""Course policy, template requests, the spend ledger, budget grants and sent alerts."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from classroom.budget.disk_end import GRACE_DAYS, RETENTION_DAYS
from classroom.db import Base, utcnow

MONEY = Numeric(20, 12)  # dollars to 1e-12: per-minute accruals lose under a millionth of a cent a year


class TemplateAccess(enum.StrEnum):
    """What students may do with a template in a course."""

    APPROVED = "approved"
    ON_REQUEST = "on_request"
    BLOCKED = "blocked"


WORKSPACE_SCOPES = ("student", "assignment")  # one workspace per student (and template), or per assignment link


class CoursePolicy(Base):
    """Everything the set-up wizard decides for a course; absent means "not set up": launches refused."""

    __tablename__ = "course_policies"
    __table_args__ = (
        CheckConstraint("workspace_scope IN ('student', 'assignment')", name="workspace_scope"),
        CheckConstraint("archive_retention_days BETWEEN 1 AND 3650", name="archive_retention_days"),
        CheckConstraint("disk_grace_days BETWEEN 0 AND 365", name="disk_grace_days"),
        CheckConstraint("materials_allowance_bytes > 0", name="materials_allowance_bytes"),
    )

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    auto_close: Mapped[bool] = mapped_column(Boolean, default=True)
    expected_students: Mapped[int] = mapped_column(Integer, default=0)
    budget_per_student: Mapped[Decimal] = mapped_column(MONEY)
    total_budget: Mapped[Decimal] = mapped_column(MONEY)
    budget_source: Mapped[str] = mapped_column(String(255), default="")
    templates: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)  # template id -> TemplateAccess
    default_template: Mapped[str] = mapped_column(String(64))
    max_concurrent: Mapped[int] = mapped_column(Integer, default=1)
    max_daily_cost: Mapped[Decimal] = mapped_column(MONEY)
    idle_stop_minutes: Mapped[int] = mapped_column(Integer, default=240)
    shared_materials: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bytes the course may keep under its materials prefix (classroom.materials.DEFAULT_ALLOWANCE_BYTES).
    materials_allowance_bytes: Mapped[int] = mapped_column(
        BigInteger, default=200 * 1024**3, server_default=text(str(200 * 1024**3))
    )
    integrity: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    term_end_actions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the term-end actions ran
    workspace_scope: Mapped[str] = mapped_column(String(16), default="student")  # WORKSPACE_SCOPES
    close_after_due: Mapped[bool] = mapped_column(Boolean, default=False)  # per-assignment ones, after their due date
    archive_retention_days: Mapped[int] = mapped_column(Integer, default=RETENTION_DAYS)  # the archives' lifecycle rule
    disk_grace_days: Mapped[int] = mapped_column(Integer, default=GRACE_DAYS)  # term end to deleting the disks
    welcome_emails: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # new students


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class TemplateRequest(Base):
    """A student's request to use an approved-on-request template, with the instructor's decision."""

    __tablename__ = "template_requests"
    __table_args__ = (
        Index(
            "uq_template_requests_one_pending",
            "course_id",
            "person_id",
            "template_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    template_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(
        Enum(RequestStatus, name="request_status", values_callable=lambda e: [m.value for m in e]),
        default=RequestStatus.PENDING,
    )
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """Cost of one workspace over one metering period; (workspace, period start) is unique: no double counting."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("workspace_id", "period_start", name="uq_ledger_entries_workspace_period"),
        Index("ix_ledger_entries_course_person", "course_id", "person_id"),
        Index("ix_ledger_entries_course_end", "course_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"))
    course_id: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    running_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), default=Decimal(0))
    compute: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    storage: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BudgetGrant(Base):
    """Extra budget (or rollover) for one student, or for the course when person_id is null; always with a reason."""

    __tablename__ = "budget_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    kind: Mapped[str] = mapped_column(String(16), default="grant")  # grant | rollover
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertSent(Base):
    """An alert that went out, so each threshold or anomaly is sent once (per day for daily ones)."""

    __tablename__ = "alerts_sent"
    __table_args__ = (UniqueConstraint("course_id", "person_id", "kind", "day", name="uq_alerts_sent_once"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    course_id: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # budget-50, budget-75, budget-90, budget-100, daily-cap, anomaly
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpendDaily(Base):
    """Per student and course-local day: compute, storage and running time, kept up to date by each sweep."""

    __tablename__ = "spend_daily"

    course_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    compute: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    storage: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    running_seconds: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    transfer: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default="0")  # data sent out

    @hybrid_property
    def spent(self) -> Decimal:
        """The day's spend against the student's cap, as spend_totals (migration 0017) and the sweep count it:
        compute, storage and data sent out. Also a SQL expression: `func.sum(SpendDaily.spent)`."""
        return self.compute + self.storage + self.transfer


class SpendTotal(Base):
    """Per student and course: the term's spend so far (the sum of their spend_daily rows, transfer included).

    Kept by statement-level triggers on spend_daily (migration 0006), whoever writes it, so the minute's sweep
    reads one row per student instead of summing every day of the term.
    """

    __tablename__ = "spend_totals"

    course_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spent: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))


class CourseCharge(Base):
    """A cost booked to the course rather than a student (append-only): shared EFS storage, snapshots and S3
    archives by GB-month, data transfer out, orphan instances carrying our tags, and the running of a workspace
    started for its archive only (migration 0029). (course, kind, ref, period
    start) is unique, so a retried booking counts once."""

    __tablename__ = "course_charges"
    __table_args__ = (
        UniqueConstraint("course_id", "kind", "ref", "period_start", name="uq_course_charges_once"),
        CheckConstraint("kind IN ('efs', 'snapshot', 'archive', 'transfer', 'orphan', 'archive_run')", name="kind"),
        CheckConstraint("amount >= 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    # the student a line is attributed to (their workspace's transfer out; also in their spend_daily), else None
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(255))  # the AWS resource (file system, snapshot, key, instance)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 6))  # GB-hours, GB, or instance-seconds
    amount: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
