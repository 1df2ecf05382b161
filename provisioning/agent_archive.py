"""The home archive made by the workspace's own agent (real EC2, where the tool cannot read an EBS volume).

The retire flow records the request on the row (`archive_requested_at`) while the instance runs; each heartbeat
answer then carries `archive: {put_url, key, max_bytes}` (a presigned S3 PUT); the agent tars and gzips the
student's home, uploads it and reports `archived: {key, sha256, bytes}` in its next heartbeat, which is stored
as reported. The retire job verifies the object in S3 (size and SHA-256 of a re-read) without holding a row
lock, and only then records the archive and lets the instance be stopped and, after the grace, terminated.
An instance that stopped first is started for its archive only (provisioning.archive_start). No archive within
`ARCHIVE_BOUND` or that window, or an object that does not match: the try failed; it is stopped and tried again
from the start after a backoff (archive_rules.next_try_at: up to MAX_ARCHIVE_TRIES over a few hours). The last
try failed, or the start refused for money: the disk is kept, audited and the course's instructors told; staff
can retry it or choose to delete the disk without an archive (provisioning.archive_staff). Nothing here deletes
anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.disk_end import ARCHIVE_MAX_GB
from classroom.db import utcnow
from classroom.models import CoursePolicy, Workspace, WorkspaceArchive
from classroom.notify import notify_instructors
from classroom.workspaces.archive_rules import next_try_at, retry_due, stale
from classroom.workspaces.lifecycle import ENDED, WorkspaceState
from provisioning.aws_archive import ArchiveResult, archive_object_key
from provisioning.course_cloud import course_key

S = WorkspaceState
ARCHIVE_BOUND = timedelta(minutes=30)
MAX_ARCHIVE_BYTES = ARCHIVE_MAX_GB * 1024**3  # one S3 PUT: a bigger home is refused by the agent, the disk kept
UPLOAD_URL_S = 3600


class ArchiveStep(enum.StrEnum):
    """What a retiring workspace needs next on the agent's path ("" : the usual retire steps apply)."""

    USUAL = ""
    REQUEST = "request-archive"
    AWAIT = "await-archive"
    VERIFY = "verify-archive"
    GIVE_UP = "keep-disk"
    KEPT = "nothing"
    START = "start-for-archive"  # stopped without a fresh archive: start it for the archive only (once a try)
    RETRY = "retry-archive"  # a failed try's backoff has passed: try again from the start


@dataclass(frozen=True)
class Intent:
    """The row's archive columns."""

    requested_at: datetime | None
    reported: bool
    failed: bool
    stale: bool = False  # the home changed after the report (only while not started for the archive only)
    archiving_until: datetime | None = None  # started for the archive only, until then
    retry_at: datetime | None = None  # the failed try is tried again from then (None: given up)

    @classmethod
    def of(cls, ws: Workspace) -> Intent:
        late = ws.archiving_until is None and stale(ws.archive_reported_at, ws.home_changed_at)
        reported = ws.archive_reported_sha256 is not None
        failed = ws.archive_failed_at is not None
        return cls(ws.archive_requested_at, reported, failed, late, ws.archiving_until, ws.archive_retry_at)


def archive_step(  # noqa: PLR0911
    state: WorkspaceState, has_instance: bool, retire_after: datetime | None, archived: bool, intent: Intent,
    now: datetime,
) -> ArchiveStep:  # fmt: skip
    """Pure: the agent's archive comes first, while the instance runs; without it the disk is never deleted.

    A stopped workspace without a fresh archive is started for its archive only, once; a start past its window
    (`intent.archiving_until`) gives up, so it is stopped and its disk kept."""
    if retire_after is None or state in ENDED or not has_instance or archived:
        return ArchiveStep.USUAL
    live = state in (S.PROVISIONING, S.STARTING, S.RUNNING)
    if intent.failed:  # failed: stop it as usual, then keep the disk (until the next try, if any)
        if live or state in (S.STOPPING, S.TERMINATING):
            return ArchiveStep.USUAL
        return ArchiveStep.RETRY if retry_due(intent.retry_at, now) else ArchiveStep.KEPT
    if intent.reported and (live or not intent.stale):  # stale matters once down: it missed the last changes
        return ArchiveStep.VERIFY
    if intent.archiving_until is not None and now >= intent.archiving_until:
        return ArchiveStep.GIVE_UP  # the hard limit of a start for the archive only
    if state is S.RUNNING:
        if intent.requested_at is None:
            return ArchiveStep.REQUEST
        return ArchiveStep.GIVE_UP if now - intent.requested_at >= ARCHIVE_BOUND else ArchiveStep.AWAIT
    if live:
        return ArchiveStep.AWAIT  # its agent reports in once it runs
    if state in (S.STOPPING, S.TERMINATING):
        return ArchiveStep.USUAL
    # stopped or hibernated without a fresh archive: start it for that once (if the course's money allows)
    return ArchiveStep.START if intent.archiving_until is None else ArchiveStep.GIVE_UP


def archive_key(ws: Workspace) -> str:
    return archive_object_key(course_key(ws.course_id), ws.id)


def wanted_archive_key(ws: Workspace) -> str | None:
    """The key the agent should upload to now, or None (not asked, already reported, or given up)."""
    if ws.archive_requested_at is None or ws.archive_reported_sha256 is not None or ws.archive_failed_at:
        return None
    return None if ws.state in ENDED else archive_key(ws)  # asked by the retire flow or before term end


def note_report(ws: Workspace, key: str, sha256: str, size: int) -> bool:
    """Store the agent's report on the locked row when it answers the current request; True when stored."""
    if wanted_archive_key(ws) != key or size > MAX_ARCHIVE_BYTES:
        return False
    ws.archive_reported_sha256, ws.archive_reported_bytes, ws.archive_reported_at = sha256, size, utcnow()
    return True


def ask_again(ws: Workspace, now: datetime) -> None:
    """Record a (new) request on the locked row: a stale report is forgotten, the agent uploads again."""
    ws.archive_requested_at = now
    ws.archive_reported_sha256 = ws.archive_reported_bytes = ws.archive_reported_at = None


def upload_request(key: str, put_url: str) -> dict[str, object]:
    """The heartbeat answer's `archive` member."""
    return {"put_url": put_url, "key": key, "max_bytes": MAX_ARCHIVE_BYTES}


def _lock(session: Session, workspace_id: int) -> Workspace:
    ws = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    assert ws is not None
    return ws


def request_archive(session: Session, workspace_id: int) -> None:
    """Record the intent (once): the agent is asked at its next heartbeat; commits."""
    ws = _lock(session, workspace_id)
    if ws.archive_requested_at is None:
        ask_again(ws, utcnow())
        append_event(session, "workspace.archive_requested", course_id=ws.course_id, subject=str(ws.id), details={})
    session.commit()


def give_up(
    session: Session, workspace_id: int, why: str, *, transient: bool = True, of_request: datetime | None = None
) -> None:
    """A try failed (once per try): keep the disk and, for a transient failure with tries left, schedule the next
    try (audited); else audit the failure and tell the course's instructors. `of_request`: the request the
    failure was found for; when the row has moved to another (staff retried meanwhile), nothing is written.
    Commits."""
    ws = _lock(session, workspace_id)
    stale = of_request is not None and ws.archive_requested_at != of_request
    if ws.archive_failed_at is None and not stale:
        now = utcnow()
        ws.archive_failed_at, ws.archive_tries = now, ws.archive_tries + 1
        ws.archive_retry_at = next_try_at(ws.archive_tries, now, transient)
        details: dict[str, object] = {"why": why, "disk": "kept", "try": ws.archive_tries}
        if ws.archive_retry_at is not None:
            details["retry_at"] = ws.archive_retry_at.isoformat()
            append_event(session, "workspace.archive_try_failed", course_id=ws.course_id, subject=str(ws.id),
                         details=details)  # fmt: skip
        else:
            append_event(session, "workspace.archive_failed", course_id=ws.course_id, subject=str(ws.id),
                         details=details)  # fmt: skip
            notify_instructors(
                session, ws.course_id, subject="A workspace's disk was kept: its home could not be archived",
                body=f"Workspace {ws.id}: {why}. Its disk is kept, not deleted; retry its archive or delete the disk "
                "without one on the Archives page.",
            )  # fmt: skip
    session.commit()


def forget_try(ws: Workspace) -> None:
    """On the locked row: forget a failed try, so the retire flow tries again from the start (a new request, and a
    new start for the archive only if it is stopped)."""
    ws.archive_failed_at = ws.archive_retry_at = ws.archiving_until = ws.archive_requested_at = None
    ws.archive_reported_sha256 = ws.archive_reported_bytes = ws.archive_reported_at = None


def try_again(session: Session, workspace_id: int) -> bool:
    """The backoff has passed: forget the failed try (audited); commits. False when the row moved meanwhile."""
    ws = _lock(session, workspace_id)
    due = ws.archive_failed_at is not None and retry_due(ws.archive_retry_at, utcnow())
    if due:
        append_event(session, "workspace.archive_retry", course_id=ws.course_id, subject=str(ws.id),
                     details={"try": ws.archive_tries + 1, "by": "backoff"})  # fmt: skip
        forget_try(ws)
    session.commit()
    return due


def verify_reported(session: Session, backend, ws: Workspace) -> bool:  # type: ignore[no-untyped-def]
    """Check the reported object in S3 (no row lock held), then record the archive or give up; commits."""
    key, sha256, size = archive_key(ws), str(ws.archive_reported_sha256), int(ws.archive_reported_bytes or 0)
    requested = ws.archive_requested_at
    policy = session.get(CoursePolicy, ws.course_id)
    days = policy.archive_retention_days if policy else 365
    session.commit()
    if not backend.verify_archive(key, sha256, size):
        give_up(session, ws.id, "the archive in S3 does not match the size and SHA-256 its agent reported",
                of_request=requested)  # fmt: skip
        return False
    backend.ensure_archive_retention(course_key(ws.course_id), days)
    record_archive(session, ws, ArchiveResult(key, sha256, size), days)
    return True


def record_archive(session: Session, ws: Workspace, result: ArchiveResult, days: int) -> None:
    """Record a workspace's archive once (audited), with its expiry; commits."""
    now = utcnow()
    row = session.scalar(
        insert(WorkspaceArchive)
        .values(
            workspace_id=ws.id,
            course_id=ws.course_id,
            s3_key=result.key,
            sha256=result.sha256,
            size_bytes=result.size,
            retain_days=days,
            created_at=now,
            expires_at=now + timedelta(days=days),  # as the bucket's lifecycle rule counts (from the object's write)
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["workspace_id"])
        .returning(WorkspaceArchive.id)
    )
    if row is not None:
        append_event(
            session, "workspace.archived", course_id=ws.course_id, subject=str(ws.id),
            details={"key": result.key, "sha256": result.sha256, "bytes": result.size, "retain_days": days},
        )  # fmt: skip
    session.commit()
