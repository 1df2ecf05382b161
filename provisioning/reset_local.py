"""A reset's new machine on the local runtime (`make run`, the tests): wait for it, seed its home from the
template, restore the kept paths from the verified backup, check them and the template's environment."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from classroom.jobs.context import current
from classroom.models import Workspace, WorkspaceBackup, WorkspaceReset
from classroom.services.resets import ALWAYS_KEPT, keep_paths
from config.catalog import load_catalog
from provisioning import home_access
from provisioning.reset_ec2 import ResetFailed
from provisioning.runtime.home_files import HomeFiles
from provisioning.runtime.template_home import check_environment, sandbox_spec, seed_home

READY_WAIT_S = 120


def local_homes() -> HomeFiles:
    """The local runtime's homes, under the job context's settings."""
    return home_access.local_homes(current().settings)


def _runtime_root() -> Path:
    return (current().settings.data_dir / "runtime").resolve()


def _wait_running(instance_id: str) -> None:
    backend, deadline = current().backend, time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        found = backend.describe([instance_id])
        state = found[0].state if found else "missing"
        if state == "running":
            return
        if state in ("terminated", "shutting-down", "stopped", "missing"):
            raise ResetFailed(f"the new workspace's machine is {state}")
        time.sleep(1)
    raise ResetFailed(f"the new workspace's machine was not running after {READY_WAIT_S} s")


def restore_local(row: WorkspaceReset) -> dict[str, object]:
    """Seed the new local home from the template, restore the kept paths from the backup, check them; a summary."""
    assert row.new_instance_id and row.backup_id
    ctx, homes = current(), local_homes()
    _wait_running(row.new_instance_id)
    with current().session() as session:
        backup = session.get(WorkspaceBackup, row.backup_id)
        ws = session.get(Workspace, row.workspace_id)
        assert backup is not None and ws is not None
        patterns = keep_paths(session, row.course_id) + ALWAYS_KEPT
        template = load_catalog().get(ws.template_id)
        os_user = template.os_user if template else "ubuntu"
    body = ctx.backend.get_private_object(backup.s3_key)  # restored from the verified backup, not the old disk
    if hashlib.sha256(body).hexdigest() != backup.sha256:
        raise ResetFailed("the backup read back from S3 does not match its SHA-256")
    spec = sandbox_spec(_runtime_root(), row.new_instance_id, row.workspace_id, row.course_id, os_user)  # type: ignore[arg-type]
    shutil.rmtree(spec.home, ignore_errors=True)  # a retry starts the new home again
    seed_home(spec)
    written = homes.restore(row.new_instance_id, body, patterns)
    for rel in written:  # the kept files are byte-identical to the backup
        restored = homes.read_file(row.new_instance_id, rel, limit=1 << 40)
        if len(restored) != written[rel]:
            raise ResetFailed(f"{rel} was not restored whole")
    env = check_environment(spec)
    return {"paths": patterns, "files": len(written), "bytes": sum(written.values()), "python": env}
