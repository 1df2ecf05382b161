"""Disks that end: stop, archive the home to S3 once the stop is observed, then delete the disk when due.

A workspace is marked for retirement (`retire_after`: when its disk may go) by a student's or staff member's
Remove, by the course's close after the due date, or by term end (plus the course's grace period). The job
moves it one observed step at a time, claim-commit-call-record, never holding a row lock across an AWS call;
the periodic pass queues it again until the workspace has ended, so a lost job or a slow stop only delays.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.jobs.context import current
from classroom.jobs.names import RETIRE_WORKSPACE
from classroom.models import CoursePolicy, Workspace, WorkspaceArchive, WorkspaceFolder
from classroom.services.opening import folders_of
from classroom.services.workspaces import Job, request_stop, set_state
from classroom.workspaces.lifecycle import ENDED, WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.agent_archive import (
    ArchiveStep,
    Intent,
    archive_step,
    give_up,
    record_archive,
    request_archive,
    try_again,
    verify_reported,
)
from provisioning.archive_start import ask_before_term_end, start_for_archive
from provisioning.aws_archive import HomeArchive
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key
from provisioning.home_access import local_homes

log = logging.getLogger(__name__)
S = WorkspaceState
MAX_STEPS = 5


class Step(enum.StrEnum):
    """What a retiring workspace needs next."""

    NOTHING = "nothing"
    FORGET = "forget"  # never launched: nothing in AWS to archive or delete
    STOP = "stop"
    OBSERVE_STOP = "observe-stop"
    ARCHIVE = "archive"
    WAIT_GRACE = "wait-grace"
    TERMINATE = "terminate"
    OBSERVE_END = "observe-end"
    REQUEST_ARCHIVE = "request-archive"  # the agent's path (real EC2): see provisioning.agent_archive
    AWAIT_ARCHIVE = "await-archive"
    VERIFY_ARCHIVE = "verify-archive"
    KEEP_DISK = "keep-disk"
    START_FOR_ARCHIVE = "start-for-archive"  # stopped without a fresh archive: see provisioning.archive_start
    RETRY_ARCHIVE = "retry-archive"  # a failed try's backoff has passed: try again from the start


def next_step(  # noqa: PLR0911
    state: WorkspaceState, has_instance: bool, retire_after: datetime | None, archived: bool, now: datetime
) -> Step:
    """Pure: the next step of a retirement (the archive always comes before the disk is deleted)."""
    if retire_after is None or state in ENDED:
        return Step.NOTHING
    if not has_instance:
        return Step.FORGET if state is S.REQUESTED else Step.NOTHING  # provisioning: wait for its instance
    if state in (S.PROVISIONING, S.STARTING, S.RUNNING):
        return Step.STOP
    if state is S.STOPPING:
        return Step.OBSERVE_STOP
    if state is S.TERMINATING:
        return Step.OBSERVE_END
    if not archived:
        return Step.ARCHIVE
    return Step.TERMINATE if now >= retire_after else Step.WAIT_GRACE


def request_retire(
    session: Session, ws: Workspace, *, actor_person_id: int | None, actor: str, reason: str, after: datetime
) -> list[Job]:
    """Mark a workspace to be archived and removed (its disk deleted at `after` at the earliest); audited."""
    if ws.state in ENDED:
        return []
    if ws.retire_after is None or after < ws.retire_after:  # the earliest date wins, and names who set it
        ws.retire_after, ws.retire_by = after, actor
    append_event(
        session,
        "workspace.retire_requested",
        actor_person_id=actor_person_id,
        course_id=ws.course_id,
        subject=str(ws.id),
        details={"by": actor, "reason": reason, "delete_after": ws.retire_after.isoformat()},
    )
    session.flush()
    return [Job(RETIRE_WORKSPACE, ws.id)]


def _archived(session: Session, workspace_id: int) -> bool:
    return session.scalar(select(WorkspaceArchive.id).where(WorkspaceArchive.workspace_id == workspace_id)) is not None


def _step_of(session: Session, ws: Workspace, now: datetime, agent_archives: bool) -> Step:
    archived = ws.archive_waived_at is not None or _archived(session, ws.id)  # staff chose no archive: as if made
    if agent_archives:
        by_agent = archive_step(ws.state, bool(ws.instance_id), ws.retire_after, archived, Intent.of(ws), now)
        if by_agent is not ArchiveStep.USUAL:
            return Step(by_agent.value)
    return next_step(ws.state, bool(ws.instance_id), ws.retire_after, archived, now)


def retire_workspace(workspace_id: int) -> str:
    """Run a retirement's steps as far as AWS allows now; returns the last step taken (for logs and tests)."""
    ctx = current()
    taken = Step.NOTHING
    with ctx.session() as session:
        for _ in range(MAX_STEPS):
            ws = session.get(Workspace, workspace_id, populate_existing=True)
            step = _step_of(session, ws, utcnow(), ctx.backend.agent_archives) if ws else Step.NOTHING
            session.commit()  # nothing held while AWS is asked
            if ws is None or step in (Step.NOTHING, Step.WAIT_GRACE, Step.AWAIT_ARCHIVE):
                return str(step if taken is Step.NOTHING else taken)
            taken = step
            try:
                if step is Step.START_FOR_ARCHIVE:
                    prices = load_prices().region(ctx.settings.aws_region)
                    ctx.release(start_for_archive(session, ws.id, utcnow(), prices))
                    return str(step)
                if not _do(session, ctx.backend, ws, step):
                    return str(step)
            except CloudError as exc:
                session.rollback()
                log.warning("retiring workspace %s: %s", workspace_id, exc)
                if not ctx.redis.set(f"cwc:retire-failed:{workspace_id}:{step}", 1, nx=True, ex=86400):
                    return f"{step}: failed"  # audited once a day, not at every retry
                append_event(
                    session, "workspace.retire_failed", course_id=ws.course_id, subject=str(ws.id),
                    details={"step": str(step), "error": str(exc)[:500]},
                )  # fmt: skip
                session.commit()
                return f"{step}: failed"
    return str(taken)


def _do(session: Session, backend, ws: Workspace, step: Step) -> bool:  # type: ignore[no-untyped-def]
    """Do one step; True when the next one can follow at once (False: wait for AWS)."""
    if step is Step.FORGET:
        _record(session, ws.id, S.REQUESTED, S.TERMINATED, "removed before it was launched")
        return False
    if step is Step.STOP:
        locked = _lock(session, ws.id)
        todo = request_stop(session, locked, actor_person_id=None, actor="retire", reason="archive and remove")
        session.commit()
        current().release(todo)
        return False
    if step is Step.OBSERVE_STOP:
        return _observed(session, backend, ws, "stopped", S.STOPPING, S.STOPPED)
    if step is Step.ARCHIVE:
        return _archive(session, backend, ws)
    if step is Step.REQUEST_ARCHIVE:
        request_archive(session, ws.id)
        return False
    if step is Step.VERIFY_ARCHIVE:
        return verify_reported(session, backend, ws)
    if step is Step.RETRY_ARCHIVE:
        return try_again(session, ws.id)
    if step is Step.KEEP_DISK:
        give_up(session, ws.id, "its agent did not archive the home before it stopped or within 30 minutes",
                of_request=ws.archive_requested_at)  # fmt: skip
        return False
    if step is Step.TERMINATE:
        why = "disk deleted without an archive (staff)" if ws.archive_waived_at else "disk deleted after its archive"
        if not _record(session, ws.id, ws.state, S.TERMINATING, why):
            return False
        backend.terminate([ws.instance_id])
        return True
    return _observed(session, backend, ws, "terminated", S.TERMINATING, S.TERMINATED)


def _lock(session: Session, workspace_id: int) -> Workspace:
    ws = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    assert ws is not None
    return ws


def _record(session: Session, workspace_id: int, expected: WorkspaceState, target: WorkspaceState, why: str) -> bool:
    """Claim or record a state change if the row is still where the step found it; commits."""
    ws = _lock(session, workspace_id)
    changed = ws.state is expected and set_state(session, ws, target, actor="retire", reason=why)
    if changed and target is S.TERMINATED:
        append_event(session, "workspace.removed", course_id=ws.course_id, subject=str(ws.id), details={"why": why})
    session.commit()
    return changed


def _observed(session: Session, backend, ws: Workspace, aws_state: str, expected, target) -> bool:  # type: ignore[no-untyped-def]
    """Ask AWS; record `target` only when it reports `aws_state` (the row is not locked while asking)."""
    (info,) = backend.describe([ws.instance_id]) or (None,)
    gone = info is None and target is S.TERMINATED
    if not gone and (info is None or info.state != aws_state):
        return False
    if target is S.TERMINATED:
        backend.delete_leftover_storage(ws.id)
    return _record(session, ws.id, expected, target, f"AWS reports {aws_state}") or target is not S.TERMINATED


def _archive(session: Session, backend, ws: Workspace) -> bool:  # type: ignore[no-untyped-def]
    """Observe the stop, archive the home, record the archive (with its SHA-256) once; False: not stopped yet."""
    (info,) = backend.describe([ws.instance_id]) or (None,)
    if info is None or info.state != "stopped":
        return False
    policy = session.get(CoursePolicy, ws.course_id)
    days = policy.archive_retention_days if policy else 365
    template = load_catalog().get(ws.template_id)
    homes = local_homes(current().settings)  # the local runtime's real home, when this machine holds it
    home = HomeArchive(
        workspace_id=ws.id,
        instance_id=str(ws.instance_id),
        course_key=course_key(ws.course_id),
        os_user=template.os_user if template else "ubuntu",
        folders=tuple(f.folder for f in folders_of(session, ws.id)),
        local_home=homes.home(str(ws.instance_id)) if homes.available(ws.instance_id) else None,
    )
    session.commit()
    backend.ensure_archive_retention(home.course_key, days)
    result = backend.archive_home(home)
    record_archive(session, ws, result, days)
    return True


def close_after_due(session: Session, now: datetime) -> list[int]:
    """Mark per-assignment workspaces whose assignment is past due, in courses that chose so; audited (flushes)."""
    past_due = (
        select(Workspace)
        .join(CoursePolicy, CoursePolicy.course_id == Workspace.course_id)
        .join(
            WorkspaceFolder,
            (WorkspaceFolder.workspace_id == Workspace.id) & (WorkspaceFolder.link_key == Workspace.link_key),
        )
        .where(
            CoursePolicy.workspace_scope == "assignment",
            CoursePolicy.close_after_due.is_(True),
            WorkspaceFolder.due_at < now,
            Workspace.retire_after.is_(None),
            Workspace.state.not_in(ENDED),
        )
        .with_for_update(of=Workspace, skip_locked=True)
    )
    marked = []
    for ws in session.scalars(past_due):
        request_retire(session, ws, actor_person_id=None, actor="due-date", reason="assignment past due", after=now)
        marked.append(ws.id)
    return marked


def retire_due() -> int:
    """Periodic: ask for archives before term end (agent's path), close past-due assignment workspaces where
    chosen, then queue the retirement job of every live
    workspace marked for it (deduplicated by job id)."""
    ctx = current()
    with ctx.session() as session:
        if ctx.backend.agent_archives and ctx.settings.archive_lead_s > 0:  # the agent's path: archive before
            ask_before_term_end(session, utcnow(), timedelta(seconds=ctx.settings.archive_lead_s))
        close_after_due(session, utcnow())
        ids = session.scalars(
            select(Workspace.id).where(Workspace.retire_after.is_not(None), Workspace.state.not_in(ENDED))
        ).all()
        session.commit()
    ctx.release([Job(RETIRE_WORKSPACE, i) for i in ids])
    return len(ids)
