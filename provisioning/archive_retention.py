"""Archive retention: each home archive's recorded expiry (the course's retention, as the bucket's lifecycle rule
counts it), the per-student list staff see, and the purge job that deletes expired archives and records it.

S3's lifecycle rule for the course's prefix (provisioning.aws_archive.ensure_archive_retention) expires the
objects by itself; the purge job makes the tool's record agree and leaves a trace: it deletes each archive whose
recorded expiry has passed (an object the rule already removed is fine), then records an `archive_purges` row and
an `archive.purged` audit event, once. No row lock is held while S3 is called; a retried job finds what is done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.materials import human_size
from classroom.models import ArchivePurge, Person, Workspace, WorkspaceArchive
from provisioning.backend import CloudError

log = logging.getLogger(__name__)
DOWNLOAD_URL_S = 300


def due_for_purge(expires_at: datetime | None, purged_at: datetime | None, now: datetime) -> bool:
    """Pure: an archive is purged once its recorded expiry has passed (never one without an expiry)."""
    return purged_at is None and expires_at is not None and expires_at <= now


@dataclass(frozen=True)
class ArchiveRow:
    """One archive as staff see it."""

    id: int
    person_id: int
    student: str
    email: str
    workspace_id: int
    title: str
    key: str
    size_bytes: int
    sha256: str
    created_at: datetime
    expires_at: datetime | None
    purged_at: datetime | None

    @property
    def size_text(self) -> str:
        """The size as people read it (15.2 KB, 60.0 MB)."""
        return human_size(self.size_bytes)


def archives_by_student(session: Session, course_id: int) -> list[tuple[str, list[ArchiveRow]]]:
    """The course's archives grouped by student (by name), newest first within each."""
    rows = session.execute(
        select(WorkspaceArchive, Workspace, Person)
        .join(Workspace, Workspace.id == WorkspaceArchive.workspace_id)
        .join(Person, Person.id == Workspace.person_id)
        .where(WorkspaceArchive.course_id == course_id, Workspace.course_id == course_id)
        .order_by(Person.family_name, Person.name, Person.id, WorkspaceArchive.created_at.desc())
    ).all()
    groups: dict[int, tuple[str, list[ArchiveRow]]] = {}
    for a, w, p in rows:
        row = ArchiveRow(a.id, p.id, p.display_name, p.email or "", w.id, w.link_title or w.template_id, a.s3_key,
                         a.size_bytes, a.sha256, a.created_at, a.expires_at, a.purged_at)  # fmt: skip
        groups.setdefault(p.id, (p.display_name, []))[1].append(row)
    return list(groups.values())


def archive_of(session: Session, course_id: int, archive_id: int) -> WorkspaceArchive | None:
    """One archive of this course (None for another course's: the course comes from the launch)."""
    found = session.get(WorkspaceArchive, archive_id)
    return found if found is not None and found.course_id == course_id else None


def record_download(session: Session, archive: WorkspaceArchive, person_id: int) -> None:
    """Audit a staff member's download of a student's archive (flushes)."""
    append_event(
        session, "archive.downloaded", actor_person_id=person_id, course_id=archive.course_id,
        subject=str(archive.workspace_id), details={"key": archive.s3_key, "sha256": archive.sha256},
    )  # fmt: skip


def _record_purge(session: Session, archive_id: int, now: datetime) -> bool:
    """Record one purge on the locked row, once (row + audit); False when already recorded. Flushes."""
    a = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.id == archive_id).with_for_update())
    if a is None or a.purged_at is not None:
        return False
    a.purged_at = now
    session.execute(
        insert(ArchivePurge)
        .values(
            archive_id=a.id,
            course_id=a.course_id,
            workspace_id=a.workspace_id,
            s3_key=a.s3_key,
            sha256=a.sha256,
            size_bytes=a.size_bytes,
            expired_at=a.expires_at,
            purged_at=now,
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["archive_id"])
    )
    append_event(
        session, "archive.purged", course_id=a.course_id, subject=str(a.workspace_id),
        details={"key": a.s3_key, "sha256": a.sha256, "bytes": a.size_bytes, "expired_at": a.expires_at.isoformat()
                 if a.expires_at else None},
    )  # fmt: skip
    session.flush()
    return True


def purge_expired(session: Session, backend, now: datetime) -> list[int]:  # type: ignore[no-untyped-def]
    """Delete every archive past its recorded expiry from S3, then record it; commits. Returns the ids purged."""
    due = session.execute(
        select(WorkspaceArchive.id, WorkspaceArchive.s3_key, WorkspaceArchive.expires_at, WorkspaceArchive.purged_at)
        .where(WorkspaceArchive.purged_at.is_(None), WorkspaceArchive.expires_at <= now)
        .order_by(WorkspaceArchive.id)
    ).all()
    session.commit()  # nothing held while S3 is asked
    purged = []
    for archive_id, key, expires_at, purged_at in due:
        if not due_for_purge(expires_at, purged_at, now):
            continue
        try:
            backend.delete_archive(key)
        except CloudError as exc:  # the next run tries again; the rule expires the object meanwhile anyway
            log.warning("archive %s not purged: %s", archive_id, exc)
            continue
        if _record_purge(session, archive_id, now):
            purged.append(archive_id)
        session.commit()
    return purged


def purge_expired_archives() -> int:
    """Periodic (daily): the purge job."""
    from classroom.jobs.context import current

    ctx = current()  # the jobs' shared context (settings, sessions, backend)
    with current().session() as session:
        return len(purge_expired(session, ctx.backend, utcnow()))
