"""Restore a backup (made by a reset) into the workspace's current home, under ~/restored/backup-<id>/: nothing
the student has now is overwritten. The backup is read from S3 and its SHA-256 checked first; audited, the
student told."""

from __future__ import annotations

import hashlib

from classroom.audit import append_event
from classroom.jobs.context import current
from classroom.models import Workspace, WorkspaceBackup
from classroom.notify import notify
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.reset_jobs import _homes


def restore_backup(backup_id: int, staff_person_id: int) -> str:
    """Restore a backup's whole home into the workspace's current home under ~/restored/backup-<id>/ (nothing
    is overwritten); audited, the student told."""
    ctx, homes = current(), _homes()
    with current().session() as session:
        backup = session.get(WorkspaceBackup, backup_id)
        ws = session.get(Workspace, backup.workspace_id) if backup else None
        if (
            backup is None
            or ws is None
            or ws.state is not WorkspaceState.RUNNING
            or not homes.available(ws.instance_id)
        ):
            return "not restorable now"
        key, sha, instance_id = backup.s3_key, backup.sha256, str(ws.instance_id)
        session.commit()
    body = ctx.backend.get_private_object(key)
    if hashlib.sha256(body).hexdigest() != sha:
        return "checksum mismatch"
    written = homes.restore(instance_id, body, None, into=f"restored/backup-{backup_id}")
    with current().session() as session:
        ws = session.get(Workspace, backup.workspace_id)
        assert ws is not None
        append_event(
            session,
            "workspace.backup.restored",
            actor_person_id=staff_person_id,
            course_id=ws.course_id,
            subject=str(ws.person_id),
            details={"backup": backup_id, "files": len(written)},
        )
        notify(
            session,
            person_id=ws.person_id,
            course_id=ws.course_id,
            subject="Files restored into your workspace",
            body=f"A backup of your home was restored into ~/restored/backup-{backup_id}/ ({len(written)} files).",
        )
        session.commit()
    return "restored"
