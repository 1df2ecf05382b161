"""What reopening a closed course (its term moved past now) undoes on its workspaces: the closure's lockouts, its
marks to end the disks, and a run for the archive only still going. Shared by the set-up wizard's save and the
next-term copy that overwrites a closed course's set-up."""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from classroom.budget.disk_end import TERM_END_ACTOR
from classroom.models import Workspace, WorkspaceEvent
from classroom.services.workspaces import request_stop
from classroom.workspaces.archive_rules import ARCHIVE_RUN_ENDS
from classroom.workspaces.lifecycle import ENDED

# A stop or end recorded after the start for the archive: that run is over (a later run is the student's own).
ARCHIVE_RUN_ENDED = exists().where(
    WorkspaceEvent.workspace_id == Workspace.id,
    WorkspaceEvent.at > Workspace.archive_started_at,
    WorkspaceEvent.to_state.in_(ARCHIVE_RUN_ENDS),
)


def reopen_workspaces(session: Session, course_id: int, by: int | None) -> dict[str, int]:
    """On a reopened course (flushes; the caller commits and audits the counts): the lockouts end; the disks the
    closure marked to end are kept again (`retire_by` 'term-end'; a date a student or staff member set earlier
    stays), their archive tries forgotten so the next term end asks anew; and a run for the archive only still
    going is stopped (its student was locked out and the course pays for it: reconcile issues the stop)."""
    runs = session.scalars(
        select(Workspace)
        .where(
            Workspace.course_id == course_id,
            Workspace.archive_started_at.is_not(None),
            Workspace.state.not_in(ARCHIVE_RUN_ENDS),
            ~ARCHIVE_RUN_ENDED,
        )  # fmt: skip
        .order_by(Workspace.id)
        .with_for_update()
    ).all()
    for ws in runs:
        request_stop(session, ws, actor_person_id=by, actor="reopen", reason="course reopened: its archive run ends")
    unlocked = session.execute(  # a term-end lockout would end every session and send no keys for ever
        update(Workspace)
        .where(Workspace.course_id == course_id, Workspace.locked_out_at.is_not(None))
        .values(locked_out_at=None, lockout_answered_at=None)
    ).rowcount  # type: ignore[attr-defined]
    kept = session.execute(
        update(Workspace)
        .where(Workspace.course_id == course_id, Workspace.retire_by == TERM_END_ACTOR, Workspace.state.not_in(ENDED))
        .values(
            retire_after=None,
            retire_by=None,
            archive_failed_at=None,
            archive_retry_at=None,
            archiving_until=None,
            archive_requested_at=None,
            archive_tries=0,
        )  # fmt: skip
    ).rowcount  # type: ignore[attr-defined]
    return {"lockouts_cleared": int(unlocked or 0), "disks_kept": int(kept or 0), "archive_runs_stopped": len(runs)}
