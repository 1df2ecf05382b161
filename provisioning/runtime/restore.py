"""The local runtime's part of a restore: a restored student's fresh workspace gets the archived home unpacked
into its home the first time its sandbox is prepared (classroom.services.restores; provisioning.aws_restore).

Once per restore (`restored_at`, claimed and committed before the fetch, so no row lock is held across S3; a
failed fetch is logged, the claim given back, and tried again on the runtime's next start). Audited with the
archive's key and SHA-256; the restore's `outcome` says "restored" (with the bytes fetched) or "failed" and why
(shown on the instructor's restore page; a later success replaces a failure), as the EC2 agent's report does; the
instructors are told of the first failure (provisioning.restore_boot.tell_instructors_restore_failed), not of
every retry.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import StudentRestore, WorkspaceArchive
from provisioning.aws_restore import unpack_home
from provisioning.backend import CloudBackend, CloudError
from provisioning.restore_boot import FAILED, RESTORED, tell_instructors_restore_failed

log = logging.getLogger(__name__)


def restore_home(sessions: Callable[[], Session], backend: CloudBackend, workspace_id: int, home: Path,
                 owner: int | None = None) -> int:  # fmt: skip
    """Unpack the archive a restore names into this workspace's home, once; returns the entries (0: nothing).

    Claim (commit `restored_at`), then fetch with no row lock held, then record; a failed fetch gives the claim back.
    """
    with sessions() as session:
        restore = session.scalar(
            select(StudentRestore)
            .where(StudentRestore.workspace_id == workspace_id, StudentRestore.restored_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        archive = session.get(WorkspaceArchive, restore.archive_id) if restore else None
        if restore is None or archive is None:
            return 0
        restore_id, course_id, key, digest = restore.id, restore.course_id, archive.s3_key, archive.sha256
        person_id, failed_before = restore.person_id, restore.outcome == FAILED
        restore.restored_at = utcnow()  # the claim: another runtime finds nothing to do
        session.commit()
    try:
        with tempfile.TemporaryDirectory(prefix="cwc-restore-") as tmp:
            path = Path(tmp) / "home.tar.gz"
            size = backend.fetch_archive(key, path, digest)
            entries = unpack_home(path, home)
    except (CloudError, OSError, tarfile.TarError) as exc:
        log.warning("workspace %s: home not restored: %s", workspace_id, exc)
        with sessions() as session:  # give the claim back: tried again at the runtime's next start
            session.execute(
                update(StudentRestore)
                .where(StudentRestore.id == restore_id)
                .values(restored_at=None, outcome=FAILED, outcome_reason=str(exc)[:300], outcome_at=utcnow())
            )
            details = {"restore": restore_id, "archive": key, "reason": str(exc)[:300], "by": "runtime"}
            append_event(
                session, "workspace.restore_failed", course_id=course_id, subject=str(workspace_id), details=details
            )
            if not failed_before:  # told once; the runtime tries again at each start
                tell_instructors_restore_failed(session, course_id, person_id, str(exc)[:300])
            session.commit()
        return 0
    if owner is not None:
        for root, dirs, files in os.walk(home):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), owner, owner)
    with sessions() as session:
        session.execute(
            update(StudentRestore)
            .where(StudentRestore.id == restore_id)
            .values(outcome=RESTORED, outcome_reason="", restored_bytes=size, outcome_at=utcnow())
        )
        append_event(session, "workspace.home_restored", course_id=course_id, subject=str(workspace_id),
                     details={"restore": restore_id, "archive": key, "sha256": digest, "entries": entries})  # fmt: skip
        session.commit()
    log.info("workspace %s: restored %d entries from %s", workspace_id, entries, key)
    return entries
