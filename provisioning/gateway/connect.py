"""Open a shell on a workspace for a redeemed ticket: a fresh key pair, a course-CA certificate for this connection.

Never a student's private key: the gateway makes an Ed25519 key per connection, has the course CA sign it for the
workspace's login for a few minutes (only the login needs it; the gateway bounds the session itself), and logs in
through provisioning.instance_ssh: to the local runtime's SSH server (its host key pinned), or to the workspace's
EC2 instance, accepting only the host keys its agent reported first (refused with the reason when there is no pin
yet). The certificate is recorded and audited like a staff certificate, with the key id starting "terminal:" so
the runtime's or the instance's sshd log names the person and the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from classroom.budget.enforcement import (
    BUDGET_USED_UP,
    COURSE_BUDGET_USED_UP,
    DAILY_CAP_REACHED,
    ENFORCEMENT_ACTOR,
)
from classroom.db import utcnow
from classroom.models import Workspace, WorkspaceEvent
from classroom.services.terminal import Ticket
from classroom.workspaces.archive_rules import LOCKED_FOR_ARCHIVE, locked_for_archive, may_open
from classroom.workspaces.host_keys import current_pin
from classroom.workspaces.lifecycle import WorkspaceState as S
from config.settings import Settings
from provisioning.instance_ssh import (
    SshEndpoint,
    SshFailure,
    WorkspaceSshError,
    connect,
    ec2_endpoint,
    runtime_endpoint,
)
from provisioning.ssh_ca import issue_staff_certificate

CERT_MINUTES = 5
TMUX_SESSION = "cwc-term"
# The student's shell runs in tmux on the workspace: a gateway restart, an idle or maximum-length end or a dropped
# connection only detaches it, and the next terminal reattaches (`-A`; `-D` detaches a client the last connection
# may have left, so the window takes this terminal's size). Without tmux (an image that lacks it), a login shell.
# The local runtime keeps tmux's server like an instance does (provisioning/runtime/service.py).
SHELL_COMMAND = (f"if command -v tmux >/dev/null; then exec tmux new-session -A -D -s {TMUX_SESSION} \\; "
                 "set-option status off; else exec bash -l; fi")  # fmt: skip

_NOT_RUNNING = {
    S.REQUESTED: "Your workspace is being created. The terminal opens when it is running.",
    S.PROVISIONING: "Your workspace is being created. The terminal opens when it is running.",
    S.STARTING: "Your workspace is starting. Try again in a moment.",
    S.STOPPING: "Your workspace is stopping. Start it again from your workspace page to use the terminal.",
    S.STOPPED: "Your workspace is stopped. Start it from your workspace page, then open the terminal.",
    S.HIBERNATED: "Your workspace is hibernated. Start it from your workspace page, then open the terminal.",
}


_ENFORCED = {  # the launch refusals' words (classroom/budget/policy.py), for a workspace the budget stopped
    BUDGET_USED_UP: "Your workspace was stopped because your budget for this course is used up. Your files are "
    "kept. Ask your instructor if you need more.",
    DAILY_CAP_REACHED: "Your workspace was stopped because you reached today's spending limit for this course. It "
    "can start again tomorrow (course time). Your files are kept.",
    COURSE_BUDGET_USED_UP: "Your workspace was stopped because the course's total budget is used up. No workspace "
    "can start until your instructor adds budget. Your files are kept.",
}


def not_running_message(state: S, stopped_because: str = "") -> str:
    """What the terminal says about a workspace that is not running; `stopped_because`: the enforcement sweep's
    reason when it stopped the workspace (over budget, the daily limit, idle, the term over)."""
    if stopped_because and state in (S.STOPPING, S.STOPPED, S.HIBERNATED):
        return _ENFORCED.get(stopped_because, f"Your workspace was stopped ({stopped_because}). Start it from your "
                             "workspace page, then open the terminal.")  # fmt: skip
    return _NOT_RUNNING.get(state, "This workspace has ended; its terminal cannot open.")


def stopped_because(session: Session, workspace_id: int) -> str:
    """The enforcement sweep's reason when it made the workspace's last move out of running ("" otherwise: the
    student or staff stopped it, or it never ran)."""
    last = session.scalars(select(WorkspaceEvent).where(WorkspaceEvent.workspace_id == workspace_id,
                                                        WorkspaceEvent.from_state == S.RUNNING)
                           .order_by(WorkspaceEvent.id.desc()).limit(1)).first()  # fmt: skip
    return last.reason if last is not None and last.actor == ENFORCEMENT_ACTOR else ""


def why_not_running(session: Session, ws: Workspace) -> str:
    """The terminal's message for a workspace that cannot be opened now ("" when it can): not running, or locked
    for its archive (the term-end lockout, a run for the archive only; the gateway's tool certificate would get
    past the keys the lockout removed)."""
    now = utcnow()
    if may_open(ws.state, ws.locked_out_at, ws.archiving_until, now):
        return ""
    if locked_for_archive(ws.locked_out_at, ws.archiving_until, now):
        return LOCKED_FOR_ARCHIVE
    return not_running_message(ws.state, stopped_because(session, ws.id))


class Refused(Exception):
    """The shell cannot open; the message is for the person at the terminal."""


@dataclass(frozen=True)
class Target:
    """Where the gateway logs in: the local runtime (the simulated account's workspaces)."""

    host: str
    port: int
    host_key_path: Path | None = None  # the runtime's key file (make run), read at each connection
    host_key: Any = None  # or the key itself (tests, bench: the runtime on a thread)

    def known_host_key(self) -> Any:
        """The runtime's public host key: the only one the gateway accepts."""
        if self.host_key is not None:
            return self.host_key.convert_to_public() if hasattr(self.host_key, "convert_to_public") else self.host_key
        assert self.host_key_path is not None
        return asyncssh.read_private_key(str(self.host_key_path)).convert_to_public()


def target_of(settings: Settings) -> Target | None:
    """The local runtime, when one runs; None on real EC2 (workspaces are reached at their instances)."""
    if not settings.runtime_ssh_port or settings.is_production:
        return None
    return Target("127.0.0.1", settings.runtime_ssh_port, settings.data_dir / "runtime" / "ssh_host_ed25519_key")


def endpoint_for(ws: Workspace, settings: Settings, target: Target | None) -> SshEndpoint:
    """The local runtime for its own workspaces (no pinned key: the simulated account), else the EC2 instance with
    its pinned host keys; Refused with the reason when neither can be reached."""
    if target is not None and not current_pin(ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.instance_id):
        try:
            host_key = target.known_host_key()
        except (OSError, asyncssh.KeyImportError) as exc:
            raise Refused("The workspace runtime is not running.") from exc
        return runtime_endpoint(ws.id, host=target.host, port=target.port, host_key=host_key)
    try:
        return ec2_endpoint(ws, port=settings.workspace_ssh_port)
    except WorkspaceSshError as exc:
        raise Refused(str(exc)) from exc


def certify(
    sessions: sessionmaker[Session], settings: Settings, target: Target | None, ticket: Ticket, public_key: str | None
) -> tuple[str, SshEndpoint]:
    """Check the workspace may be reached now, find where, and sign `public_key` (when given) for its login;
    returns (certificate or "", endpoint). Blocking: run in a thread."""
    with sessions() as session:
        ws = session.get(Workspace, ticket.workspace_id)
        if ws is None or ws.course_id != ticket.course_id:
            raise Refused("This workspace does not exist.")
        if why := why_not_running(session, ws):
            raise Refused(why)
        endpoint = endpoint_for(ws, settings, target)
        if public_key is None:
            return "", endpoint
        purpose = "staff-terminal" if ticket.staff else "terminal"
        cert, _ = issue_staff_certificate(session, settings=settings, workspace=ws, staff_person_id=ticket.person_id,
                                          staff_name=ticket.person_name, public_key=public_key,
                                          minutes=CERT_MINUTES, purpose=purpose)  # fmt: skip
        session.commit()
        return cert, endpoint


async def open_shell(
    target: Target | None, sessions: sessionmaker[Session], settings: Settings, ticket: Ticket, cols: int, rows: int
) -> tuple[Any, Any]:
    """Log in and start the shell with a terminal (the owner's in tmux, so it outlives this connection); return
    (connection, process). Raises Refused."""
    if ticket.certificate:  # a debug session's own credentials: the workspace records it and applies its mode
        key, public = asyncssh.import_private_key(ticket.private_key), None
    else:
        key = asyncssh.generate_private_key("ssh-ed25519")
        public = key.export_public_key().decode().strip()
    cert_text, endpoint = await asyncio.to_thread(certify, sessions, settings, target, ticket, public)
    try:
        conn = await connect(endpoint, key, ticket.certificate or cert_text)
    except WorkspaceSshError as exc:
        if exc.failure is SshFailure.HOST_KEY_MISMATCH:
            raise Refused(str(exc)) from exc
        raise Refused("The workspace did not accept the connection; it may have just stopped.") from exc
    try:
        # a debug session's shell is its own (recorded, maybe read-only): never the student's tmux
        command = None if ticket.certificate else SHELL_COMMAND
        process = await conn.create_process(command, term_type="xterm-256color", term_size=(cols, rows),
                                            encoding=None)  # fmt: skip
    except (OSError, asyncssh.Error) as exc:
        conn.close()
        raise Refused("The workspace refused to start a shell.") from exc
    return conn, process
