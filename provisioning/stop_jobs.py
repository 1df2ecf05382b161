"""The stop drive's I/O: claim a wanted stop, call AWS outside any transaction, record the outcome; and the
reconcile pass that issues stops again until AWS reports the instance down (never rewriting the intent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.jobs.names import STOP_WORKSPACE
from classroom.models import Workspace
from classroom.notify import notify_instructors
from classroom.services.workspaces import Job, set_state
from classroom.sql.workspaces import UNCONVERGED_SQL
from classroom.workspaces.lifecycle import DOWN, WANTS_DOWN, DesiredState, WorkspaceState
from classroom.workspaces.stop_drive import StopProgress, alert_due, backoff, retry_due, should_force
from config.catalog import load_catalog
from provisioning.backend import CloudBackend, CloudError

log = logging.getLogger(__name__)
S = WorkspaceState


@dataclass(frozen=True)
class StopClaim:
    """One stop to carry out, as claimed in the database."""

    workspace_id: int
    course_id: int
    instance_id: str
    hibernate: bool
    force: bool
    attempt: int


@dataclass(frozen=True)
class StopOutcome:
    """What AWS answered."""

    result: str  # hibernating | stopping | failed
    error: str = ""


def claim_stop(session: Session, workspace_id: int, now: datetime) -> StopClaim | None:
    """Lock the row briefly, count the attempt and schedule the next one; None when no stop is due (flushes)."""
    ws = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    if ws is None or ws.desired_state not in WANTS_DOWN or not ws.instance_id or ws.state in DOWN:
        return None
    if ws.state is S.TERMINATING:
        return None
    set_state(session, ws, S.STOPPING, actor="stop", reason="stop issued to AWS")
    ws.stop_attempts += 1
    ws.stop_next_try_at = now + backoff(ws.stop_attempts)
    template = load_catalog().get(ws.template_id)
    force = should_force(ws.desired_changed_at, now)
    hibernate = ws.desired_state is DesiredState.HIBERNATED and bool(template and template.hibernation) and not force
    session.flush()
    return StopClaim(ws.id, ws.course_id, ws.instance_id, hibernate, force, ws.stop_attempts)


def call_stop(backend: CloudBackend, claim: StopClaim) -> StopOutcome:
    """The AWS call, outside any transaction; every failure is the port's CloudError."""
    try:
        used = backend.stop([claim.instance_id], hibernate=claim.hibernate, force=claim.force)
    except CloudError as exc:
        log.warning("stop of workspace %s failed (attempt %s): %s", claim.workspace_id, claim.attempt, exc)
        return StopOutcome("failed", str(exc)[:500])
    return StopOutcome("hibernating" if used else "stopping")


def record_stop(session: Session, claim: StopClaim, outcome: StopOutcome) -> None:
    """Record the answer (the last error is shown on the page); the intent itself is left as it is."""
    ws = session.scalar(select(Workspace).where(Workspace.id == claim.workspace_id).with_for_update())
    if ws is None:
        return
    ws.stop_last_error = outcome.error
    if not outcome.error:
        ws.stop_mode = "hibernate" if outcome.result == "hibernating" else "stop"
    append_event(
        session,
        "workspace.stop_failed" if outcome.error else "workspace.stop_issued",
        course_id=claim.course_id,
        subject=str(claim.workspace_id),
        details={"attempt": claim.attempt, "force": claim.force, "error": outcome.error},
    )


def drive_stops(session: Session, now: datetime) -> list[Job]:
    """Stops wanted but not yet effective: issue again when the backoff has passed, alert staff once when
    stuck (flushes; returns the stop jobs to enqueue after the commit). Locked rows are left for next time."""
    jobs: list[Job] = []
    ids = list(session.scalars(UNCONVERGED_SQL))
    if not ids:
        return jobs
    for ws in session.scalars(
        select(Workspace).where(Workspace.id.in_(ids)).order_by(Workspace.id).with_for_update(skip_locked=True)
    ):
        p = StopProgress(
            ws.desired_state,
            ws.state,
            bool(ws.instance_id),
            ws.desired_changed_at,
            ws.stop_attempts,
            ws.stop_next_try_at,
            ws.stop_alerted_at is not None,
        )
        if retry_due(p, now):
            jobs.append(Job(STOP_WORKSPACE, ws.id))
        if alert_due(p, now):
            _alert(session, ws, now)
    return jobs


def _alert(session: Session, ws: Workspace, now: datetime) -> None:
    ws.stop_alerted_at = now
    minutes = int((now - ws.desired_changed_at).total_seconds() // 60)
    details = {"attempts": ws.stop_attempts, "error": ws.stop_last_error, "observed": ws.state.value}
    append_event(session, "workspace.stop_not_effective", course_id=ws.course_id, subject=str(ws.id), details=details)
    notify_instructors(
        session,
        ws.course_id,
        subject=f"A workspace is still running {minutes} minutes after it was stopped",
        body=(
            f"Workspace {ws.id} ({ws.instance_type}, instance {ws.instance_id}) should be stopped, but AWS still "
            f"reports it {ws.state.value} after {ws.stop_attempts} attempt(s). Last error: "
            f"{ws.stop_last_error or 'none'}. Cloud Workstation keeps retrying (forced)."
        ),
    )
