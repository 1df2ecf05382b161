"""Workspace reset (head TA, instructors): the request, the course's keep paths, and the steps' records.

The reset itself runs as a job (provisioning.reset_jobs): back up the whole home (tar.gz, SHA-256 verified after
upload), start a fresh instance from the template, restore the keep paths from the backup, check it is healthy,
then switch the workspace to it and terminate the old one. Until the switch the student keeps the old instance;
any failure ends the reset as `failed` with the reason, and the old one stays. One active reset per workspace
(a partial unique index): a second click is told so. Services flush, never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import CourseResetSettings, Person, Workspace, WorkspaceReset
from classroom.models.debug import DEFAULT_KEEP_PATHS
from classroom.services.staff_actions import ReasonError, parse_reason
from classroom.workspaces.lifecycle import WorkspaceState

RESET_JOB = "provisioning.reset_jobs.reset_workspace"
ACTIVE = ("queued", "backing_up", "launching", "restoring", "switching")
ALWAYS_KEPT = [".ssh/"]  # the student's own keys (authorized_keys, a GitHub key): a reset never loses them
MAX_PATTERNS = 20
STEPS = {
    "queued": "Waiting for a worker",
    "backing_up": "Backing up the whole home to the archive bucket",
    "launching": "Starting a fresh workspace from the template",
    "restoring": "Restoring the kept files and checking the new workspace",
    "switching": "Switching the student to the new workspace",
    "done": "Done",
    "failed": "Failed: the student keeps the old workspace",
}


class ResetRefused(ValueError):
    """The reset cannot start (the message says why); `status` is the HTTP code the page answers with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def parse_keep_paths(raw: str) -> list[str]:
    """One pattern a line: "folder/" or a glob ("*.ipynb", "data/*.csv"); no absolute paths, no "..". Pure."""
    if "\x00" in raw:
        raise ResetRefused("The patterns hold a character text cannot carry (NUL).", 400)
    patterns = [" ".join(line.split()) for line in raw.splitlines() if line.strip()]
    if len(patterns) > MAX_PATTERNS:
        raise ResetRefused(f"Keep at most {MAX_PATTERNS} patterns.", 400)
    for p in patterns:
        if p.startswith("/") or ".." in p.split("/") or "\\" in p or len(p) > 200:
            raise ResetRefused(f"{p!r} is not a path inside the home (no leading /, no ..).", 400)
    return list(dict.fromkeys(patterns))


def keep_paths(session: Session, course_id: int) -> list[str]:
    """What a reset keeps in this course (the course setting, else homework/ and every notebook)."""
    row = session.get(CourseResetSettings, course_id)
    return list(row.keep_paths) if row is not None else list(DEFAULT_KEEP_PATHS)


def set_keep_paths(session: Session, course_id: int, actor_person_id: int, patterns: list[str]) -> None:
    """Save the course's keep paths (audited)."""
    row = session.get(CourseResetSettings, course_id)
    if row is None:
        session.add(CourseResetSettings(course_id=course_id, keep_paths=patterns, updated_at=utcnow()))
    else:
        row.keep_paths, row.updated_at = patterns, utcnow()
    append_event(session, "course.reset_keep_paths", actor_person_id=actor_person_id, course_id=course_id,
                 details={"keep_paths": patterns})  # fmt: skip


def active_reset(session: Session, workspace_id: int) -> WorkspaceReset | None:
    """The workspace's reset in progress, if any."""
    return session.scalar(
        select(WorkspaceReset).where(WorkspaceReset.workspace_id == workspace_id, WorkspaceReset.state.in_(ACTIVE))
    )


def request_reset(session: Session, ws: Workspace, staff: Person, raw_reason: str | None) -> WorkspaceReset:
    """Record the reset (audited as `workspace.reset`); the caller commits, then enqueues the job."""
    if "\x00" in (raw_reason or ""):
        raise ResetRefused("The reason holds a character text cannot carry (NUL): retype it.", 400)
    try:
        reason = parse_reason(raw_reason)
    except ReasonError as exc:
        raise ResetRefused(str(exc), 400) from None
    if (running := active_reset(session, ws.id)) is not None:
        raise ResetRefused(f"A reset of this workspace is already running (R{running.id}, {STEPS[running.state]}).")
    if ws.state is not WorkspaceState.RUNNING or not ws.instance_id or ws.retire_after is not None:
        raise ResetRefused(f"The workspace is {ws.state.value}: start it first; a reset needs it running.")
    row = WorkspaceReset(course_id=ws.course_id, workspace_id=ws.id, staff_person_id=staff.id, reason=reason,
                         state="queued", progress=STEPS["queued"], old_instance_id=ws.instance_id, kept={})  # fmt: skip
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # another click won the race on the one-active index
        raise ResetRefused("A reset of this workspace is already running.") from None
    append_event(session, "workspace.reset", actor_person_id=staff.id, course_id=ws.course_id,
                 subject=str(ws.person_id), details={"reset": row.id, "workspace": ws.id, "reason": reason,
                                                     "keep": keep_paths(session, ws.course_id)})  # fmt: skip
    return row


def reset_job_id(reset_id: int) -> str:
    """One job per reset: a retried enqueue collapses onto it."""
    return f"reset-{reset_id}"


def request_old_instance_end(session: Session, row: WorkspaceReset) -> None:
    """After the switch, record that the reset's old instance should end (audited once); the caller commits, then
    asks EC2 (provisioning.reset_jobs). Idempotent."""
    if row.old_end_requested_at is not None:
        return
    row.old_end_requested_at = utcnow()
    append_event(session, "workspace.reset.old_instance_end", actor_person_id=row.staff_person_id,
                 course_id=row.course_id, subject=str(row.workspace_id),
                 details={"reset": row.id, "instance": row.old_instance_id})  # fmt: skip
