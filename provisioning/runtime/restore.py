"""The local runtime's part of a restore: a restored student's fresh workspace gets the archived home unpacked
into its home the first time its sandbox is prepared (classroom.services.restores; provisioning.aws_restore).

Once per restore (`restored_at`, under the row lock; a failed fetch is logged and tried again on the runtime's
next start). Audited with the archive's key and SHA-256.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import StudentRestore, WorkspaceArchive
from provisioning.aws_restore import unpack_home
from provisioning.backend import CloudBackend, CloudError

log = logging.getLogger(__name__)


def restore_home(sessions: Callable[[], Session], backend: CloudBackend, workspace_id: int, home: Path,
                 owner: int | None = None) -> int:  # fmt: skip
    """Unpack the archive a restore names into this workspace's home, once; returns the entries (0: nothing)."""
    with sessions() as session:
        restore = session.scalar(
            select(StudentRestore)
            .where(StudentRestore.workspace_id == workspace_id, StudentRestore.restored_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        archive = session.get(WorkspaceArchive, restore.archive_id) if restore else None
        if restore is None or archive is None:
            return 0
        with tempfile.TemporaryDirectory(prefix="cwc-restore-") as tmp:
            path = Path(tmp) / "home.tar.gz"
            try:  # the row stays locked by this runtime only (a second runtime skips it); S3 is read, not AWS state
                backend.fetch_archive(archive.s3_key, path, archive.sha256)
            except CloudError as exc:
                log.warning("workspace %s: home not restored: %s", workspace_id, exc)
                return 0
            entries = unpack_home(path, home)
        if owner is not None:
            for root, dirs, files in os.walk(home):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(root, name), owner, owner)
        restore.restored_at = utcnow()
        append_event(
            session,
            "workspace.home_restored",
            course_id=restore.course_id,
            subject=str(workspace_id),
            details={"restore": restore.id, "archive": archive.s3_key, "sha256": archive.sha256, "entries": entries},
        )
        session.commit()
    log.info("workspace %s: restored %d entries from %s", workspace_id, entries, archive.s3_key)
    return entries
