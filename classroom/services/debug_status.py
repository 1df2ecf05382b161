"""What the debug page's status section shows for one workspace: state, uptime, the agent's last figures, recent
activity and the last errors. Read-only: a GET changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.models import ActivityEvent, Heartbeat, Workspace, WorkspaceEvent, WorkspaceReset
from classroom.workspaces.lifecycle import WorkspaceState

RECENT = 15


@dataclass(frozen=True)
class Status:
    """One workspace's status for staff."""

    ws: Workspace
    uptime: timedelta | None
    heartbeat: Heartbeat | None
    activity: list[ActivityEvent] = field(default_factory=list)
    errors: list[tuple[datetime | None, str]] = field(default_factory=list)


def uptime(ws: Workspace, now: datetime) -> timedelta | None:
    """How long it has been running (None when it is not running). Pure."""
    return now - ws.state_changed_at if ws.state is WorkspaceState.RUNNING else None


def workspace_status(session: Session, ws: Workspace, now: datetime) -> Status:
    """Load what the status section shows (four small queries, bounded)."""
    beat = session.scalar(
        select(Heartbeat).where(Heartbeat.workspace_id == ws.id).order_by(Heartbeat.at.desc()).limit(1)
    )
    activity = list(
        session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.workspace_id == ws.id)
            .order_by(ActivityEvent.at.desc())
            .limit(RECENT)
        )
    )
    errors: list[tuple[datetime | None, str]] = []
    if ws.failure_reason:
        errors.append((ws.state_changed_at, f"Failed: {ws.failure_reason}"))
    if ws.stop_last_error:
        errors.append((ws.stop_next_try_at, f"Stop not done yet: {ws.stop_last_error}"))
    failed = session.execute(
        select(WorkspaceEvent.at, WorkspaceEvent.reason)
        .where(WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.to_state == WorkspaceState.FAILED)
        .order_by(WorkspaceEvent.at.desc())
        .limit(5)
    )
    errors += [(at, f"Failed: {reason}") for at, reason in failed]
    resets = session.execute(
        select(WorkspaceReset.finished_at, WorkspaceReset.error)
        .where(WorkspaceReset.workspace_id == ws.id, WorkspaceReset.state == "failed")
        .order_by(WorkspaceReset.id.desc())
        .limit(5)
    )
    errors += [(at, f"Reset failed, the old workspace was kept: {error}") for at, error in resets]
    errors = sorted(set(errors), key=lambda e: e[0] or now, reverse=True)
    return Status(ws, uptime(ws, now), beat, activity, errors)
