"""Periodic: close restored students' access once their days have run out (classroom.services.restores).

Idempotent: a restore is closed once (row lock, `closed_at`); the retirement jobs it queues are deduplicated by
job id, and the retire pass queues them again if one is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.jobs.context import current
from classroom.models import CoursePolicy, SshKey, StudentRestore, Workspace
from classroom.notify import notify
from classroom.services.workspaces import Job
from classroom.workspaces.lifecycle import ENDED


def close_expired(session: Session, now: datetime) -> list[Job]:
    """Close every restore whose days have run out (once: the row lock and `closed_at`): keys revoked again, the
    workspace retired (stopped, archived, disk deleted after the course's grace); audited (flushes)."""
    from provisioning.retire import request_retire

    due = session.scalars(
        select(StudentRestore)
        .where(StudentRestore.closed_at.is_(None), StudentRestore.access_until <= now)
        .with_for_update(skip_locked=True)
    ).all()
    jobs: list[Job] = []
    for restore in due:
        restore.closed_at = now
        revoked = session.execute(
            update(SshKey)
            .where(
                SshKey.course_id == restore.course_id,
                SshKey.person_id == restore.person_id,
                SshKey.revoked_at.is_(None),
            )  # fmt: skip
            .values(revoked_at=now)
        ).rowcount  # type: ignore[attr-defined]
        ws = session.get(Workspace, restore.workspace_id, with_for_update=True) if restore.workspace_id else None
        if ws is not None and ws.state not in ENDED:
            policy = session.get(CoursePolicy, restore.course_id)
            grace = timedelta(days=policy.disk_grace_days if policy else 14)
            jobs += request_retire(session, ws, actor_person_id=None, actor="restore-end",
                                   reason="restore period over", after=now + grace)  # fmt: skip
        notify(session, person_id=restore.person_id, course_id=restore.course_id,
               subject="Your restored workspace has closed",
               body="The days your instructor gave you have run out: your workspace stops and your home is "
               "archived again. Ask your instructor if you need more time.")  # fmt: skip
        append_event(
            session,
            "student.restore_closed",
            course_id=restore.course_id,
            subject=str(restore.person_id),
            details={"restore": restore.id, "workspace": restore.workspace_id, "keys_revoked": int(revoked or 0)},
        )
    session.flush()
    return jobs


def close_restores() -> int:
    """Close every restore that has run out; returns how many workspaces were sent to retirement."""
    with current().session() as session:
        todo = close_expired(session, utcnow())
        session.commit()
    current().release(todo)
    return len(todo)
