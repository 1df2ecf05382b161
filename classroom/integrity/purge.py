"""Retention: a course's audit chain and activity are kept one year after its term ends, then purged.

The purge removes a whole course chain at once (its events and its head row), so the rest of the trail still
verifies; it records what it removed (counts, id range, the chain's last hash) in `audit_purges` and as an
event in the global chain. The append-only triggers let a DELETE through only inside this transaction.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import (
    ActivityEvent,
    AuditChainHead,
    AuditEvent,
    AuditPurge,
    Course,
    DeadlineSnapshot,
    Workspace,
)

RETENTION = timedelta(days=365)


def expired_courses(session: Session, today: date) -> list[int]:
    """Courses whose term ended more than the retention ago and that still have audit events."""
    has_events = select(AuditEvent.id).where(AuditEvent.course_id == Course.id).exists()
    return list(
        session.scalars(
            select(Course.id).where(Course.term_end.is_not(None), Course.term_end < today - RETENTION, has_events)
        )
    )


def purge_course(session: Session, course_id: int) -> tuple[AuditPurge, list[str]]:
    """Remove one course's chain, activity and snapshot rows; returns the record and the snapshot keys to delete
    from the bucket after the commit."""
    session.execute(text("SELECT set_config('cwc.retention_purge', 'on', true)"))
    first, last, count = session.execute(
        select(func.min(AuditEvent.id), func.max(AuditEvent.id), func.count()).where(AuditEvent.course_id == course_id)
    ).one()
    head = session.scalar(select(AuditChainHead.hash).where(AuditChainHead.chain == course_id)) or ""
    spaces = select(Workspace.id).where(Workspace.course_id == course_id)
    activity = session.execute(delete(ActivityEvent).where(ActivityEvent.workspace_id.in_(spaces))).rowcount or 0  # type: ignore[attr-defined]
    session.execute(delete(AuditEvent).where(AuditEvent.course_id == course_id))
    session.execute(delete(AuditChainHead).where(AuditChainHead.chain == course_id))
    keys = [
        k
        for k in session.scalars(
            delete(DeadlineSnapshot).where(DeadlineSnapshot.course_id == course_id).returning(DeadlineSnapshot.s3_key)
        )
        if k
    ]
    session.execute(text("SELECT set_config('cwc.retention_purge', 'off', true)"))
    record = AuditPurge(
        course_id=course_id,
        audit_events=int(count),
        activity_events=int(activity),
        first_event_id=first,
        last_event_id=last,
        last_hash=head,
    )
    session.add(record)
    append_event(
        session,
        "audit.purged",
        subject=f"course:{course_id}",
        details={
            "course": course_id,
            "audit_events": int(count),
            "activity_events": int(activity),
            "first_event_id": first,
            "last_event_id": last,
            "last_hash": head,
            "snapshots": len(keys),
            "retention_days": RETENTION.days,
        },
    )
    return record, keys
