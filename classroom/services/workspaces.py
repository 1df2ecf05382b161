"""Workspace services shared by views and jobs: request, start, stop, state changes. Flush, never commit.

Each function that needs a cloud call returns the jobs to enqueue; the caller enqueues them after its commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.jobs.names import PROVISION_WORKSPACE, START_WORKSPACE, STOP_WORKSPACE
from classroom.models import Workspace, WorkspaceEvent
from classroom.sql.workspaces import ONE_LIVE_WHERE
from classroom.workspaces.archive_rules import LOCKOUT_ENDS
from classroom.workspaces.lifecycle import (
    DOWN,
    LIVE,
    WANTS_DOWN,
    DesiredState,
    WorkspaceState,
    next_state,
)
from config.catalog import WorkspaceTemplate
from provisioning.host_key_pins import clear_host_keys

S = WorkspaceState
D = DesiredState
STOPPABLE = (S.REQUESTED, S.PROVISIONING, S.STARTING, S.RUNNING, S.STOPPING)


@dataclass(frozen=True)
class Job:
    """A job to enqueue after commit: dotted function path, workspace id, deterministic job id."""

    func: str
    workspace_id: int

    @property
    def job_id(self) -> str:
        return f"{self.func.rsplit('.', 1)[-1]}-{self.workspace_id}"


class WorkspaceActionError(ValueError):
    """The action does not fit the workspace's state; the message says why."""


def event_time(aws_at: datetime | None, previous: datetime, now: datetime) -> datetime:
    """When a state change is recorded: AWS's own time when it gives one (e.g. LaunchTime for `running`), never
    after now; now when it gives none or one before the previous change (a LaunchTime that did not move on a
    restart describes an earlier run, not this one)."""
    return now if aws_at is None or aws_at < previous else min(aws_at, now)


def set_state(
    session: Session,
    ws: Workspace,
    target: WorkspaceState,
    *,
    actor: str = "system",
    reason: str = "",
    aws_at: datetime | None = None,
) -> bool:
    """Move a workspace to `target` (validated), recording the event (at AWS's time when given, see
    event_time); False if it was already there."""
    if ws.state == target:
        return False
    previous = ws.state
    ws.state = next_state(previous, target)
    ws.state_changed_at = event_time(aws_at, ws.state_changed_at, utcnow())
    session.add(
        WorkspaceEvent(
            workspace_id=ws.id,
            at=ws.state_changed_at,
            from_state=previous,
            to_state=target,
            actor=actor,
            reason=reason[:500],
        )
    )
    if ws.state is WorkspaceState.TERMINATED:  # the instance is gone, and its pinned host keys with it
        clear_host_keys(ws)
    if ws.state in LOCKOUT_ENDS:  # a final-archive lockout ends with its run (a new start for one locks anew)
        ws.locked_out_at = ws.lockout_answered_at = None
    session.flush()
    return True


def request_workspace(
    session: Session,
    *,
    course_id: int,
    person_id: int,
    link_key: str,
    link_title: str,
    template: WorkspaceTemplate,
    region: str,
) -> tuple[Workspace, list[Job]]:
    """The first click: one live workspace per (course, person, link), however many clicks race."""
    row_id = session.scalar(
        insert(Workspace)
        .values(
            course_id=course_id,
            person_id=person_id,
            link_key=link_key[:255],
            link_title=link_title[:255],
            template_id=template.id,
            instance_type=template.instance_type,
            volume_gb=template.root_volume_gb,
            region=region,
            state=S.REQUESTED,
            availability_zone="",
            public_ip="",
            failure_reason="",
            stop_mode="",
            created_at=utcnow(),
            state_changed_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["course_id", "person_id", "link_key"],
            index_where=text(ONE_LIVE_WHERE),
        )
        .returning(Workspace.id)
    )
    if row_id is None:
        ws = live_workspace(session, course_id, person_id, link_key)
        assert ws is not None, "a live workspace must exist when the insert conflicted"
        return ws, []
    ws = session.get(Workspace, row_id)
    assert ws is not None
    session.add(
        WorkspaceEvent(
            workspace_id=ws.id,
            at=ws.created_at,
            from_state=None,
            to_state=S.REQUESTED,
            actor="student",
            reason=f"first click on {link_title or link_key}",
        )
    )
    append_event(
        session,
        "workspace.requested",
        actor_person_id=person_id,
        course_id=course_id,
        subject=str(ws.id),
        details={"template": template.id, "link": link_key},
    )
    return ws, [Job(PROVISION_WORKSPACE, ws.id)]


def live_workspace(session: Session, course_id: int, person_id: int, link_key: str) -> Workspace | None:
    """The person's live workspace for this link, if any."""
    return session.scalar(
        select(Workspace).where(
            Workspace.course_id == course_id,
            Workspace.person_id == person_id,
            Workspace.link_key == link_key,
            Workspace.state.in_(LIVE),
        )
    )


def workspaces_of(session: Session, course_id: int, person_id: int) -> list[Workspace]:
    """All of a person's workspaces in a course, newest first (ended ones included)."""
    return list(
        session.scalars(
            select(Workspace)
            .where(Workspace.course_id == course_id, Workspace.person_id == person_id)
            .order_by(Workspace.created_at.desc())
        )
    )


def set_desired(ws: Workspace, desired: DesiredState) -> bool:
    """Record intent (and restart the stop drive's bookkeeping); False if it was already wanted."""
    if ws.desired_state == desired:
        return False
    ws.desired_state, ws.desired_changed_at = desired, utcnow()
    ws.stop_attempts, ws.stop_last_error, ws.stop_next_try_at, ws.stop_alerted_at = 0, "", None, None
    return True


def request_stop(
    session: Session, ws: Workspace, *, actor_person_id: int | None, actor: str, reason: str, hibernate: bool = False
) -> list[Job]:
    """Record the wish to stop (or hibernate); the job, then reconcile until AWS agrees, does the cloud call.

    Call with the row locked. A stop already wanted is no change (no event, no job). Before launch the
    request is cancelled outright; while launching, the provision job stops the instance as soon as it exists.
    """
    if ws.desired_state in WANTS_DOWN or ws.state in DOWN:
        return []
    if ws.state not in STOPPABLE:
        raise WorkspaceActionError(f"This workspace is {ws.state.value}; only a running workspace can be stopped.")
    set_desired(ws, D.HIBERNATED if hibernate else D.STOPPED)
    ws.stop_mode = "hibernate" if hibernate else "stop"
    append_event(
        session,
        "workspace.stop_requested",
        actor_person_id=actor_person_id,
        course_id=ws.course_id,
        subject=str(ws.id),
        details={"reason": reason, "hibernate": hibernate, "by": actor},
    )
    if ws.state is S.REQUESTED:  # not launched: nothing to stop, nothing charged
        set_state(session, ws, S.TERMINATED, actor=actor, reason=f"{reason} (before launch)")
        return []
    if not ws.instance_id:  # launching: provision_workspace sees the intent when AWS answers
        session.flush()
        return []
    set_state(session, ws, S.STOPPING, actor=actor, reason=reason)
    return [Job(STOP_WORKSPACE, ws.id)]


def request_start(session: Session, ws: Workspace, *, actor_person_id: int | None, actor: str) -> list[Job]:
    """Ask for a start of a stopped or hibernated workspace (call with the row locked).

    A workspace whose stop is wanted but that AWS still runs simply wants to run again (no cloud call).
    """
    if ws.desired_state is D.RUNNING and ws.state in (S.STARTING, S.RUNNING):
        return []
    if ws.state is S.RUNNING:
        set_desired(ws, D.RUNNING)
        ws.stop_mode = ""
        _audit_start(session, ws, actor_person_id, actor)
        return []
    if ws.state not in (S.STOPPED, S.HIBERNATED):
        raise WorkspaceActionError(f"This workspace is {ws.state.value}; only a stopped workspace can be started.")
    set_desired(ws, D.RUNNING)
    ws.stop_mode = ""  # before set_state's flush: one UPDATE of the row
    set_state(session, ws, S.STARTING, actor=actor, reason="start requested")
    _audit_start(session, ws, actor_person_id, actor)
    return [Job(START_WORKSPACE, ws.id)]


def _audit_start(session: Session, ws: Workspace, actor_person_id: int | None, actor: str) -> None:
    append_event(
        session,
        "workspace.start_requested",
        actor_person_id=actor_person_id,
        course_id=ws.course_id,
        subject=str(ws.id),
        details={"by": actor},
    )


def stop_workspaces_for_person(
    session: Session, course_id: int, person_id: int, *, reason: str, actor: str = "system"
) -> list[Job]:
    """Stop every running (or launching) workspace of a person in a course (dropped student, term end)."""
    jobs: list[Job] = []
    rows = session.scalars(
        select(Workspace)
        .where(
            Workspace.course_id == course_id,
            Workspace.person_id == person_id,
            Workspace.state.in_(STOPPABLE),
            Workspace.desired_state.not_in(WANTS_DOWN),
        )
        .order_by(Workspace.id)
        .with_for_update()
    )
    for ws in rows:
        jobs += request_stop(session, ws, actor_person_id=None, actor=actor, reason=reason)
    return jobs


def mark_failed(session: Session, ws: Workspace, reason: str) -> None:
    """Record a failure with a reason a person can act on."""
    ws.failure_reason = reason
    set_state(session, ws, S.FAILED, reason=reason)
    append_event(session, "workspace.failed", course_id=ws.course_id, subject=str(ws.id), details={"reason": reason})
