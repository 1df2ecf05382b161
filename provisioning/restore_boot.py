"""A restored student's fresh EC2 workspace gets its archived home at first boot: the launch's user data carries a
presigned S3 GET of the archive and its SHA-256 (provisioning.userdata.restore_part). The local runtime unpacks
it itself instead (provisioning.runtime.restore). Nothing reports back from the instance: the tool records that
the link was issued (audited), not that the files arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import StudentRestore, WorkspaceArchive
from provisioning.backend import CloudBackend

RESTORE_URL_S = 12 * 3600  # provisioning waits in a queue at most this long, and the boot fetches it at once


@dataclass(frozen=True)
class RestoreDownload:
    url: str
    sha256: str


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
