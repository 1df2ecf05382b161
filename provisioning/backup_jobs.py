"""Restore a backup (made by a reset) into the workspace's current home, under ~/restored/backup-<id>/: nothing
the student has now is overwritten. The backup is read from S3 and its SHA-256 checked first; audited, the
student told. The local runtime's home is written here; an EC2 home over SSH (provisioning.home_access: the
pinned host key, a certificate allowing SFTP to create folders and files only). A failure is told to the staff
member who asked."""

from __future__ import annotations

import hashlib

from classroom.audit import append_event
from classroom.jobs.context import current
from classroom.models import Workspace, WorkspaceBackup
from classroom.notify import notify
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.home_access import home_reader
from provisioning.instance_ssh import WorkspaceSshError
from provisioning.runtime.home_files import PathRefused


def restore_backup(backup_id: int, staff_person_id: int) -> str:
    """Restore a backup's whole home into the workspace's current home under ~/restored/backup-<id>/ (nothing
    is overwritten); audited, the student told."""
    ctx = current()
    with ctx.session() as session:
        backup = session.get(WorkspaceBackup, backup_id)
        ws = session.get(Workspace, backup.workspace_id) if backup else None
        if backup is None or ws is None:
            return "not restorable now"
        if ws.state is not WorkspaceState.RUNNING:
            state = ws.state.value
            session.rollback()
            return _failed(backup_id, staff_person_id, f"the workspace is {state}: start it, then restore again")
        try:
            target = home_reader(session, ws, ctx.settings, why=f"restore-B{backup_id}", person_id=staff_person_id,
                                 restore=True)  # fmt: skip
        except WorkspaceSshError as exc:
            session.rollback()
            return _failed(backup_id, staff_person_id, str(exc))
        key, sha = backup.s3_key, backup.sha256
        session.commit()
    body = ctx.backend.get_private_object(key)
    if hashlib.sha256(body).hexdigest() != sha:
        return _failed(backup_id, staff_person_id, "the backup read back from S3 does not match its SHA-256")
    try:
        written = target.restore(body, into=f"restored/backup-{backup_id}")
    except (WorkspaceSshError, PathRefused) as exc:
        return _failed(backup_id, staff_person_id, str(exc))
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


def _failed(backup_id: int, staff_person_id: int, why: str) -> str:
    """Tell the staff member who asked; nothing was changed for the student (or only new files were added)."""
    with current().session() as session:
        backup = session.get(WorkspaceBackup, backup_id)
        assert backup is not None
        notify(
            session,
            person_id=staff_person_id,
            course_id=backup.course_id,
            subject=f"Restore of backup B{backup_id} failed",
            body=f"The backup could not be restored into ~/restored/backup-{backup_id}/: {why}",
        )
        session.commit()
    return "failed"
