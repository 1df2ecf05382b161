"""Staff's actions on a disk kept without an archive (the Archives page; instructors and the head TA): try its
archive again, or delete the disk without one (a typed confirmation). Both are audited with the staff member's
reason and only record intent on the row; the retire flow does the work (a new try, or the usual stop and
terminate once the disk is due), so no AWS call is made here. Flushes; the view commits, then releases the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.jobs.names import RETIRE_WORKSPACE
from classroom.models import Person, Workspace
from classroom.services.workspaces import Job
from classroom.workspaces.lifecycle import ENDED
from provisioning.agent_archive import forget_try

REASON_MIN = 3
REASON_MAX = 500


class KeptDiskError(ValueError):
    """A staff action's input is refused (shown with a 422; nothing written)."""


@dataclass(frozen=True)
class KeptDisk:
    """A workspace whose home could not be archived: its disk is kept until staff act or a retry succeeds."""

    workspace_id: int
    student: str
    title: str
    failed_at: datetime
    tries: int
    retry_at: datetime | None  # the next automatic try (None: given up, waiting for staff)
    waived: bool  # staff chose to delete the disk without an archive: the retire flow is ending it

    @property
    def confirm_phrase(self) -> str:
        return confirm_phrase(self.workspace_id)


def confirm_phrase(workspace_id: int) -> str:
    """What staff type to delete a disk without its archive."""
    return f"delete {workspace_id}"


def kept_disks(session: Session, course_id: int) -> list[KeptDisk]:
    """The course's workspaces whose archive failed (or was waived) and that have not ended yet."""
    rows = session.execute(
        select(Workspace, Person)
        .join(Person, Person.id == Workspace.person_id)
        .where(Workspace.course_id == course_id, Workspace.state.not_in(ENDED))
        .where(Workspace.archive_failed_at.is_not(None) | Workspace.archive_waived_at.is_not(None))
        .order_by(Person.family_name, Person.name, Workspace.id)
    ).all()
    return [
        KeptDisk(
            w.id,
            p.display_name,
            w.link_title or w.template_id,
            w.archive_failed_at or w.archive_waived_at,
            w.archive_tries,
            w.archive_retry_at,
            w.archive_waived_at is not None,
        )  # fmt: skip
        for w, p in rows
    ]


def lock_kept(session: Session, course_id: int, workspace_id: int) -> Workspace | None:
    """One of this course's kept disks, locked (None for another course's, an ended one or one not failed)."""
    ws = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    if ws is None or ws.course_id != course_id or ws.state in ENDED or ws.retire_after is None:
        return None
    return ws if ws.archive_failed_at is not None and ws.archive_waived_at is None else None


def already_done(session: Session, course_id: int, workspace_id: int, action: str) -> bool:
    """Whether this course's workspace already shows the action's effect (a second click of "retry" while its
    archive is tried again, or of "delete" once the disk is to be deleted): answered as done, nothing written."""
    ws = session.get(Workspace, workspace_id)
    if ws is None or ws.course_id != course_id or ws.retire_after is None:
        return False
    if action == "retry":
        return ws.archive_failed_at is None and ws.archive_waived_at is None and ws.state not in ENDED
    return ws.archive_waived_at is not None


def checked_reason(reason: str) -> str:
    """The staff member's reason, trimmed; refused when missing or too long."""
    reason = reason.strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise KeptDiskError(f"Give a reason ({REASON_MIN} to {REASON_MAX} characters); it is kept in the audit log.")
    return reason


def retry_archive(session: Session, ws: Workspace, *, actor_person_id: int, reason: str) -> list[Job]:
    """Forget the failure and its tries on the locked row; the retire flow tries again from the start."""
    why = checked_reason(reason)
    append_event(
        session, "workspace.archive_retry", actor_person_id=actor_person_id, course_id=ws.course_id,
        subject=str(ws.id), details={"by": "staff", "reason": why, "failed_tries": ws.archive_tries},
    )  # fmt: skip
    forget_try(ws)
    ws.archive_tries = 0
    session.flush()
    return [Job(RETIRE_WORKSPACE, ws.id)]


def delete_without_archive(
    session: Session, ws: Workspace, *, actor_person_id: int, reason: str, typed: str, now: datetime
) -> list[Job]:
    """Record staff's choice on the locked row (typed confirmation): the retire flow stops it if needed, then
    terminates the instance and deletes its disk now, as after an archive."""
    why = checked_reason(reason)
    if typed.strip().lower() != confirm_phrase(ws.id):
        raise KeptDiskError(f'Type "{confirm_phrase(ws.id)}" to confirm that the home is lost with its disk.')
    ws.archive_waived_at, ws.archive_retry_at = now, None
    ws.retire_after = min(ws.retire_after, now) if ws.retire_after else now
    append_event(
        session, "workspace.disk_deleted_without_archive", actor_person_id=actor_person_id,
        course_id=ws.course_id, subject=str(ws.id), details={"reason": why, "failed_tries": ws.archive_tries},
    )  # fmt: skip
    session.flush()
    return [Job(RETIRE_WORKSPACE, ws.id)]
