"""A reset's new EC2 machine: wait for its agent to pin its host key, restore the kept paths into its home over
SSH, verify them against the backup, and check the machine works. Nothing here touches the workspace row.

The new instance's agent reports with the token held on the reset row (provisioning.agent_service pins its host
keys there, apart from the old instance's pin the student's workspace still uses). Until it has, the reset waits:
the job ends and the pinning heartbeat queues it again; a reset whose new machine never reports within
PIN_WAIT fails (`reset_deadline`). The restore uses a course-CA certificate forcing create-only SFTP (nothing in
the new home is overwritten), the check reads every restored file back with a read-only certificate and compares
its SHA-256 with the backup's, and the health check runs one fixed command (TOOL_HEALTH_COMMAND, forced by its
certificate) as the student's login. Each certificate is made just before its connection, for that one use.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncssh

from classroom.db import utcnow
from classroom.jobs.context import current
from classroom.models import Workspace, WorkspaceBackup, WorkspaceReset
from classroom.services.resets import ALWAYS_KEPT, keep_paths
from classroom.workspaces.host_keys import pinned_keys
from provisioning.instance_ssh import SshEndpoint, connect, login_user, ssh_error, tool_credentials
from provisioning.remote_home import RemoteHome, backup_members
from provisioning.runtime.home_files import keep_matches
from provisioning.ssh_ca import TOOL_READ_COMMAND, TOOL_RESTORE_COMMAND

PIN_WAIT = timedelta(minutes=15)  # a new machine boots and reports within two; past this the reset fails
SEEN_WITHIN = timedelta(minutes=5)  # the health check wants the new agent's heartbeat this recent (one a minute)
HEALTH_TIMEOUT_S = 60
# The health check: the template's Python runs as the student's login and the home is writable. Forced by the
# certificate, so the key can run this and nothing else.
TOOL_HEALTH_COMMAND = "python3 -c 'import sys; print(sys.version.split()[0])' && test -w \"$HOME\""
# Installed on every new machine by its user data and agent from the student's registered keys: not restored
# (the old copy may differ in form only, and create-only would refuse it).
MANAGED = frozenset({".ssh/authorized_keys"})


class ResetFailed(RuntimeError):
    """A step failed; the message is what staff read."""


def pin_ready(keys: str, refused: str, launched_at: datetime | None, now: datetime) -> bool:
    """Whether the new machine's host key is pinned (True), or the reset should wait (False); ResetFailed when it
    reported a different key, or never reported within PIN_WAIT. Pure."""
    if refused:
        raise ResetFailed("the new machine's agent reported a different SSH host key from the one it reported "
                          "first, so the tool will not connect to it")  # fmt: skip
    if keys:
        return True
    if launched_at is not None and now - launched_at > PIN_WAIT:
        minutes = int(PIN_WAIT.total_seconds() // 60)
        raise ResetFailed(f"the new machine's agent did not report its SSH host key within {minutes} minutes, so "
                          "the tool cannot verify the machine and restored nothing")  # fmt: skip
    return False


def wanted(patterns: list[str]) -> Callable[[str], bool]:
    """The backup members a reset restores: the keep paths (and ALWAYS_KEPT), except the tool-managed files."""
    return lambda rel: rel not in MANAGED and keep_matches(rel, patterns)


@dataclass(frozen=True)
class _Plan:
    workspace_id: int
    instance_id: str
    keys: tuple[str, ...]
    user: str
    backup_key: str
    backup_sha256: str
    patterns: list[str]
    staff_person_id: int


def _plan(reset_id: int) -> _Plan | None:
    with current().session() as session:
        row = session.get(WorkspaceReset, reset_id)
        assert row is not None and row.new_instance_id and row.backup_id
        if not pin_ready(row.new_host_keys, row.new_host_keys_refused, row.launched_at, utcnow()):
            return None
        ws, backup = session.get(Workspace, row.workspace_id), session.get(WorkspaceBackup, row.backup_id)
        assert ws is not None and backup is not None
        return _Plan(ws.id, row.new_instance_id, pinned_keys(row.new_host_keys), login_user(ws), backup.s3_key,
                     backup.sha256, keep_paths(session, row.course_id) + ALWAYS_KEPT, row.staff_person_id)  # fmt: skip


def _credentials(plan: _Plan, reset_id: int, command: str) -> tuple[asyncssh.SSHKey, str]:
    """A key made for one connection and the course CA's certificate forcing `command` on it."""
    with current().session() as session:
        ws = session.get(Workspace, plan.workspace_id)
        assert ws is not None
        credentials = tool_credentials(session, settings=current().settings, workspace=ws, why=f"reset-R{reset_id}",
                                       person_id=plan.staff_person_id, command=command)  # fmt: skip
        session.rollback()
    return credentials


def restore_on_ec2(reset_id: int) -> dict[str, object] | None:
    """Restore, verify and check the new machine; the kept paths' summary, or None while its agent has not
    pinned its host key yet. ResetFailed, CloudError, WorkspaceSshError or PathRefused on any failure."""
    plan = _plan(reset_id)
    if plan is None:
        return None
    ctx = current()
    found = ctx.backend.describe([plan.instance_id])
    state = found[0].state if found else "missing"
    if state != "running":
        raise ResetFailed(f"the new workspace's machine is {state}")
    if not found[0].public_ip:
        raise ResetFailed("the new workspace's machine has no public address")
    endpoint = SshEndpoint(found[0].public_ip, ctx.settings.workspace_ssh_port, plan.user, plan.keys)
    body = ctx.backend.get_private_object(plan.backup_key)  # restored from the verified backup, not the old disk
    if hashlib.sha256(body).hexdigest() != plan.backup_sha256:
        raise ResetFailed("the backup read back from S3 does not match its SHA-256")
    written = RemoteHome(endpoint, *_credentials(plan, reset_id, TOOL_RESTORE_COMMAND)).restore(
        body, "", only=wanted(plan.patterns)
    )
    expected = {m.rel: hashlib.sha256(m.data).hexdigest() for m in backup_members(body) if m.rel in written}
    got = RemoteHome(endpoint, *_credentials(plan, reset_id, TOOL_READ_COMMAND)).digests(sorted(written))
    bad = sorted(rel for rel in written if got.get(rel) != expected[rel])
    if bad:
        raise ResetFailed(f"{bad[0]} in the new home does not match the backup's SHA-256 ({len(bad)} of "
                          f"{len(written)} files differ)")  # fmt: skip
    python = health_check(reset_id, plan, endpoint)
    return {"paths": plan.patterns, "files": len(written), "bytes": sum(written.values()), "verified": len(got),
            "python": python}  # fmt: skip


def health_check(reset_id: int, plan: _Plan, endpoint: SshEndpoint) -> str:
    """The new agent's heartbeat is recent and TOOL_HEALTH_COMMAND succeeds over SSH; returns Python's version."""
    with current().session() as session:
        row = session.get(WorkspaceReset, reset_id)
        seen = row.new_agent_seen_at if row else None
    if seen is None or utcnow() - seen > SEEN_WITHIN:
        raise ResetFailed("the new machine's agent has not reported in the last "
                          f"{int(SEEN_WITHIN.total_seconds() // 60)} minutes")  # fmt: skip
    key, cert = _credentials(plan, reset_id, TOOL_HEALTH_COMMAND)
    code, out, err = asyncio.run(_run(endpoint, key, cert))
    if code != 0:
        raise ResetFailed(f"the new machine failed its health check (exit {code}): {err.strip()[:200]}")
    return out.strip()


async def _run(endpoint: SshEndpoint, key: asyncssh.SSHKey, cert: str) -> tuple[int, str, str]:
    conn = await connect(endpoint, key, cert)
    try:
        result = await asyncio.wait_for(conn.run("health", check=False), HEALTH_TIMEOUT_S)
    except TimeoutError as exc:
        raise ResetFailed(f"the new machine's health check took over {HEALTH_TIMEOUT_S} s") from exc
    except (asyncssh.Error, OSError) as exc:
        raise ssh_error(exc, endpoint) from exc
    finally:
        conn.close()
        await conn.wait_closed()
    code = result.exit_status if result.exit_status is not None else -1  # killed by a signal: not healthy
    return code, str(result.stdout or ""), str(result.stderr or "")
