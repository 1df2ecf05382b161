"""The reset job: back up, start fresh, restore the keep paths, check, switch; the student keeps the old workspace
until the new one is healthy. Claim, commit, call, record: no row lock is held across S3, EC2, SSH or the sandbox.

Each step records its result on the reset row (backup id, new instance id), so a retried job carries on where
the last one stopped. Any failure (S3, EC2, SSH, a backup or a restored file that does not match its SHA-256, the
new environment not working) ends the reset as `failed` with the reason: the new instance is terminated, the
workspace row and the old instance are untouched. The local runtime's homes are read and written here (`make run`
runs the worker on the same machine). On EC2 (provisioning.reset_ec2) the home is backed up over SSH (the pinned
host key, a read-only certificate); the new instance's agent pins its own host key on the reset row, whose
heartbeat queues this job again; then the kept paths are restored over SSH (create only), read back and compared
with the backup's SHA-256, the machine is checked, and only then does the workspace switch. The old instance's
end is then recorded on the reset row and asked of EC2 (a retried job asks again).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.jobs.context import current  # one JobContext for every workspace job
from classroom.jobs.queue import get_queue
from classroom.models import Person, Workspace, WorkspaceBackup, WorkspaceReset
from classroom.notify import notify
from classroom.services.resets import STEPS, request_old_instance_end
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.aws_archive import archive_prefix
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key
from provisioning.home_access import home_reader
from provisioning.host_key_pins import clear_host_keys
from provisioning.instance_ssh import WorkspaceSshError
from provisioning.jobs.workspace import launch_spec
from provisioning.reset_ec2 import PIN_WAIT, ResetFailed, pin_ready, restore_on_ec2
from provisioning.reset_local import local_homes, restore_local
from provisioning.runtime.home_files import PathRefused
from provisioning.runtime.template_home import TemplateError
from provisioning.ssh_ca import workspace_login

log = logging.getLogger(__name__)
DEADLINE_JOB = "provisioning.reset_jobs.reset_deadline"


def _step(reset_id: int, state: str, **values: object) -> WorkspaceReset:
    with current().session() as session:
        row = session.scalar(select(WorkspaceReset).where(WorkspaceReset.id == reset_id).with_for_update())
        assert row is not None
        if row.state == "failed":  # failed meanwhile (its deadline): stop here, the new instance is being ended
            raise ResetFailed(row.error)
        row.state, row.progress = state, STEPS[state]
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
        session.refresh(row)
        session.expunge(row)
        return row


def reset_workspace(reset_id: int) -> str:
    """Run (or carry on) one reset; returns its final state."""
    with current().session() as session:
        row = session.get(WorkspaceReset, reset_id)
        if row is None:
            return "nothing to do"
        if row.state == "done":
            _end_old(row.old_instance_id)  # a retry after the switch: make sure the old one is gone
            return "done"
        if row.state == "failed":
            return "failed"
        ws = session.get(Workspace, row.workspace_id)
        assert ws is not None
        if ws.state is not WorkspaceState.RUNNING or ws.instance_id != row.old_instance_id:
            return _fail(reset_id, f"the workspace is {ws.state.value} now, not running as when the reset was asked")
    try:
        row = _backup(reset_id) if row.backup_id is None else row
        local = local_homes().available(row.old_instance_id)
        row = _launch(reset_id, local) if row.new_instance_id is None else row
        kept = restore_local(row) if local else restore_on_ec2(reset_id)
        if kept is None:
            return "waiting for the new machine's agent"  # its pinning heartbeat queues this job again
        _switch(reset_id, kept)
    except (ResetFailed, CloudError, PathRefused, TemplateError, WorkspaceSshError) as exc:
        return _fail(reset_id, str(exc))
    except Exception as exc:  # noqa: BLE001 - whatever broke, the student keeps the old workspace and staff see why
        log.exception("reset %s failed", reset_id)
        return _fail(reset_id, f"an internal error ({type(exc).__name__}); the logs have the details")
    _end_old(row.old_instance_id)
    return "done"


def reset_deadline(reset_id: int) -> str:
    """Queued at an EC2 launch for after PIN_WAIT: fail the reset if its new machine never pinned a host key."""
    with current().session() as session:
        row = session.get(WorkspaceReset, reset_id)
        if row is None or row.state != "restoring":
            return row.state if row else "nothing to do"
        keys, refused, launched = row.new_host_keys, row.new_host_keys_refused, row.launched_at
    try:
        pin_ready(keys, refused, launched, utcnow())
    except ResetFailed as exc:
        return _fail(reset_id, str(exc))
    return row.state


def _backup(reset_id: int) -> WorkspaceReset:
    row = _step(reset_id, "backing_up")
    ctx = current()
    with ctx.session() as session:  # the reader (on EC2: the pinned host key, a read-only certificate), no lock
        ws = session.get(Workspace, row.workspace_id)
        assert ws is not None
        reader = home_reader(session, ws, ctx.settings, why=f"reset-R{row.id}", person_id=row.staff_person_id)
        session.rollback()
    body, files = reader.tar_gz_home()  # no transaction open while the home is read
    digest = hashlib.sha256(body).hexdigest()
    ck = course_key(row.course_id)
    key = f"{archive_prefix(ck)}ws{row.workspace_id}/backups/reset-{row.id}.tar.gz"
    stored = ctx.backend.put_private_object(key, body, content_type="application/gzip", course_key=ck)
    if stored.sha256 != digest or not ctx.backend.verify_archive(key, digest, len(body)):
        raise ResetFailed("the backup in S3 does not match the SHA-256 of the home: nothing was changed")
    with current().session() as session:
        backup = WorkspaceBackup(
            course_id=row.course_id,
            workspace_id=row.workspace_id,
            instance_id=row.old_instance_id,
            s3_key=key,
            sha256=digest,
            size_bytes=len(body),
            files=files,
            created_by_person_id=row.staff_person_id,
        )
        session.add(backup)
        session.flush()
        append_event(
            session,
            "workspace.backup",
            actor_person_id=row.staff_person_id,
            course_id=row.course_id,
            subject=str(row.workspace_id),
            details={
                "backup": backup.id,
                "key": key,
                "sha256": digest,
                "bytes": len(body),
                "files": files,
                "reset": row.id,
            },
        )
        session.commit()
        backup_id = backup.id
    return _step(reset_id, "launching", backup_id=backup_id)


def _launch(reset_id: int, local: bool) -> WorkspaceReset:
    ctx = current()
    with current().session() as session:
        row = session.get(WorkspaceReset, reset_id)
        ws = session.get(Workspace, row.workspace_id) if row else None
        assert row is not None and ws is not None
        old_hash, old_revoked = ws.agent_token_hash, ws.agent_token_revoked_at
        spec = launch_spec(session, ctx, ws)  # a new agent token for the new instance, held on the reset row
        new_hash = ws.agent_token_hash
        ws.agent_token_hash, ws.agent_token_revoked_at = old_hash, old_revoked  # the old agent keeps working
        row.new_agent_token_hash = new_hash
        session.commit()
    spec = replace(
        spec,
        client_token=f"cwc-ws-{spec.workspace_id}-reset-{reset_id}",
        tags={**spec.tags, "cwc:reset-id": str(reset_id)},
    )
    info = ctx.backend.launch(spec)
    row = _step(reset_id, "restoring", new_instance_id=info.instance_id, launched_at=utcnow())
    if not local:  # the new machine's agent has PIN_WAIT to report in; its heartbeat queues the reset sooner
        get_queue(ctx.redis).enqueue_in(PIN_WAIT + timedelta(seconds=30), DEADLINE_JOB, reset_id,
                                        job_id=f"reset-{reset_id}-deadline")  # fmt: skip
    return row


def _switch(reset_id: int, kept: dict[str, object]) -> None:
    row = _step(reset_id, "switching", kept=kept)
    found = current().backend.describe([str(row.new_instance_id)])  # before the lock: no AWS call under it
    public_ip = found[0].public_ip if found and found[0].public_ip else ""
    with current().session() as session:
        row = session.scalar(select(WorkspaceReset).where(WorkspaceReset.id == reset_id).with_for_update())
        assert row is not None
        ws = session.scalar(select(Workspace).where(Workspace.id == row.workspace_id).with_for_update())
        assert ws is not None
        if ws.state is not WorkspaceState.RUNNING or ws.instance_id != row.old_instance_id:
            session.rollback()
            raise ResetFailed(f"the workspace became {ws.state.value} during the reset")
        if row.state != "switching":
            session.rollback()
            raise ResetFailed(row.error or f"the reset became {row.state} during the switch")
        ws.instance_id, ws.agent_token_hash = row.new_instance_id, row.new_agent_token_hash
        ws.agent_token_revoked_at = None
        ws.public_ip = public_ip or ws.public_ip
        clear_host_keys(ws)  # the old instance's pin is no more
        if row.new_host_keys:  # EC2: the pin the new instance's own agent reported, checked by the restore
            ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = (
                row.new_host_keys, row.new_instance_id, row.new_agent_seen_at)  # fmt: skip
        row.state, row.progress, row.finished_at = "done", STEPS["done"], utcnow()
        request_old_instance_end(session, row)
        staff = session.get(Person, row.staff_person_id)
        backup = session.get(WorkspaceBackup, row.backup_id)
        append_event(
            session,
            "workspace.reset.done",
            actor_person_id=row.staff_person_id,
            course_id=row.course_id,
            subject=str(ws.person_id),
            details={
                "reset": row.id,
                "workspace": ws.id,
                "old": row.old_instance_id,
                "new": row.new_instance_id,
                "kept": kept,
                "backup_sha256": backup.sha256 if backup else "",
            },
        )
        paths = ", ".join(str(p) for p in kept.get("paths", []))  # type: ignore[union-attr]
        notify(
            session,
            person_id=ws.person_id,
            course_id=ws.course_id,
            subject="Your workspace was reset",
            body=(
                f"{staff.display_name if staff else 'Staff'} reset your workspace {workspace_login(ws.id)}: "
                f"{row.reason}. It is a fresh workspace from the template with the same name and your SSH keys; "
                f"kept: {paths} ({kept.get('files')} files). A backup of your whole home before the reset is "
                f"kept (SHA-256 {backup.sha256 if backup else '?'}); staff can restore anything from it."
            ),
        )
        session.commit()


def _fail(reset_id: int, why: str) -> str:
    with current().session() as session:
        row = session.scalar(select(WorkspaceReset).where(WorkspaceReset.id == reset_id).with_for_update())
        if row is None or row.state in ("done", "failed"):
            return row.state if row else "nothing to do"
        row.state, row.progress, row.error, row.finished_at = "failed", STEPS["failed"], why[:2000], utcnow()
        ws = session.get(Workspace, row.workspace_id)
        append_event(
            session,
            "workspace.reset.failed",
            actor_person_id=row.staff_person_id,
            course_id=row.course_id,
            subject=str(ws.person_id if ws else ""),
            details={"reset": row.id, "why": why},
        )
        notify(
            session,
            person_id=row.staff_person_id,
            course_id=row.course_id,
            subject=f"Reset R{row.id} failed: the student keeps the old workspace",
            body=f"The reset of workspace {row.workspace_id} failed: {why}. Nothing was changed for the student.",
        )
        new_instance = row.new_instance_id
        session.commit()
    if new_instance:
        _terminate(new_instance)
        shutil.rmtree(local_homes().root / new_instance, ignore_errors=True)
    return "failed"


def _end_old(instance_id: str) -> None:
    """The old instance after the switch: its end is recorded on the reset row (request_old_instance_end); asked
    of EC2 here, and again by each reconcile pass while AWS reports it alive (provisioning.reset_ends)."""
    _terminate(instance_id)


def _terminate(instance_id: str) -> None:
    try:
        current().backend.terminate([instance_id])
    except CloudError:
        log.exception("instance %s not terminated after a reset; terminate it by hand", instance_id)
