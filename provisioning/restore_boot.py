"""A restored student's fresh EC2 workspace gets its archived home at first boot: the agent's config (in the launch's
user data) carries a presigned S3 GET of the archive and its SHA-256 (provisioning.userdata). The agent fetches,
checks and unpacks it, then reports how it went in its heartbeats until the tool records it here: the restore
becomes "restored" (bytes downloaded, SHA-256 matched, unpacked) or "failed" with the reason, audited, shown on
the instructor's restore page, and on a failure the instructors are told. The local runtime unpacks the archive
itself instead (provisioning.runtime.restore) and records the same outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Person, StudentRestore, Workspace, WorkspaceArchive
from classroom.notify import notify_instructors
from provisioning.backend import CloudBackend

RESTORE_URL_S = 12 * 3600  # provisioning waits in a queue at most this long, and the boot fetches it at once
RESTORED, FAILED = "restored", "failed"


@dataclass(frozen=True)
class RestoreDownload:
    url: str
    sha256: str


@dataclass(frozen=True)
class RestoreOutcome:
    """What the agent reports of its first boot's restore."""

    bytes: int
    sha256_ok: bool
    extracted: bool
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.sha256_ok and self.extracted and not self.error


def outcome_reason(outcome: RestoreOutcome) -> str:
    """Pure: why a restore failed, in words for the instructor ("" when it worked)."""
    if outcome.ok:
        return ""
    if outcome.error:
        return outcome.error
    if not outcome.sha256_ok:
        return "the download does not match the archive's SHA-256"
    return "the archive could not be unpacked"


def restore_download(session: Session, backend: CloudBackend, workspace_id: int) -> RestoreDownload | None:
    """The archive to fetch at this workspace's first boot, or None (not a restore, or already restored)."""
    row = session.execute(
        select(StudentRestore.id, StudentRestore.course_id, WorkspaceArchive.s3_key, WorkspaceArchive.sha256)
        .join(WorkspaceArchive, WorkspaceArchive.id == StudentRestore.archive_id)
        .where(StudentRestore.workspace_id == workspace_id, StudentRestore.restored_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    url = backend.archive_download_url(row.s3_key, RESTORE_URL_S)
    append_event(session, "workspace.restore_link_issued", course_id=row.course_id, subject=str(workspace_id),
                 details={"restore": row.id, "archive": row.s3_key, "expires_s": RESTORE_URL_S})  # fmt: skip
    return RestoreDownload(url, row.sha256)


def record_outcome(session: Session, ws: Workspace, outcome: RestoreOutcome, now: datetime) -> bool:
    """Record the reported outcome on the workspace's restore, once (a repeated report changes nothing); audited,
    and the instructors told of a failure. True if recorded now. Flushes; the caller commits."""
    restore = session.scalar(
        select(StudentRestore)
        .where(StudentRestore.workspace_id == ws.id)
        .order_by(StudentRestore.id.desc())
        .limit(1)
        .with_for_update()
    )
    if restore is None or restore.outcome:
        return False
    restore.outcome, restore.outcome_reason = (RESTORED if outcome.ok else FAILED), outcome_reason(outcome)
    restore.restored_bytes, restore.outcome_at = outcome.bytes, now
    if outcome.ok:
        restore.restored_at = now
    details = {"restore": restore.id, "bytes": outcome.bytes, "sha256_ok": outcome.sha256_ok,
               "extracted": outcome.extracted, "by": "agent"}  # fmt: skip
    if outcome.ok:
        append_event(session, "workspace.home_restored", course_id=ws.course_id, subject=str(ws.id), details=details)
    else:
        append_event(session, "workspace.restore_failed", course_id=ws.course_id, subject=str(ws.id),
                     details={**details, "reason": restore.outcome_reason})  # fmt: skip
        tell_instructors_restore_failed(session, ws.course_id, restore.person_id, restore.outcome_reason)
    session.flush()
    return True


def tell_instructors_restore_failed(session: Session, course_id: int, person_id: int, reason: str) -> None:
    """Tell the course's instructors that this student's archived home could not be brought back (the agent's
    report on EC2, or the local runtime's fetch), and why."""
    person = session.get(Person, person_id)
    name = person.name if person and person.name else f"person {person_id}"
    notify_instructors(
        session, course_id, subject=f"{name}'s home could not be restored",
        body=f"The restored workspace of {name} could not bring back the archived home: "
             f"{reason}. The workspace runs with an empty home; see the Restore page.",
    )  # fmt: skip
