"""Open a shell on a workspace for a redeemed ticket: a fresh key pair, a course-CA certificate for this connection.

Never a student's private key: the gateway makes an Ed25519 key per connection, has the course CA sign it for the
workspace's login for a few minutes (only the login needs it; the gateway bounds the session itself), and logs in
to the local runtime's SSH server, whose host key it pins. The certificate is recorded and audited like a staff
certificate, with the key id starting "terminal:" so the runtime's log names the person and the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from sqlalchemy.orm import Session, sessionmaker

from classroom.models import Workspace
from classroom.services.terminal import Ticket
from classroom.workspaces.lifecycle import WorkspaceState as S
from config.settings import Settings
from provisioning.ssh_ca import issue_staff_certificate, workspace_login

CERT_MINUTES = 5

_NOT_RUNNING = {
    S.REQUESTED: "Your workspace is being created. The terminal opens when it is running.",
    S.PROVISIONING: "Your workspace is being created. The terminal opens when it is running.",
    S.STARTING: "Your workspace is starting. Try again in a moment.",
    S.STOPPING: "Your workspace is stopping. Start it again from your workspace page to use the terminal.",
    S.STOPPED: "Your workspace is stopped. Start it from your workspace page, then open the terminal.",
    S.HIBERNATED: "Your workspace is hibernated. Start it from your workspace page, then open the terminal.",
}


def not_running_message(state: S) -> str:
    """What the terminal says about a workspace that is not running."""
    return _NOT_RUNNING.get(state, "This workspace has ended; its terminal cannot open.")


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
    """The local runtime, when one runs; None on real EC2 (the browser terminal is not offered there yet)."""
    if not settings.runtime_ssh_port or settings.is_production:
        return None
    return Target("127.0.0.1", settings.runtime_ssh_port, settings.data_dir / "runtime" / "ssh_host_ed25519_key")


def certify(sessions: sessionmaker[Session], settings: Settings, ticket: Ticket, public_key: str) -> str:
    """Check the workspace may be reached now and sign `public_key` for its login (blocking: run in a thread)."""
    with sessions() as session:
        ws = session.get(Workspace, ticket.workspace_id)
        if ws is None or ws.course_id != ticket.course_id:
            raise Refused("This workspace does not exist.")
        if ws.state is not S.RUNNING:
            raise Refused(not_running_message(ws.state))
        purpose = "staff-terminal" if ticket.staff else "terminal"
        cert, _ = issue_staff_certificate(session, settings=settings, workspace=ws, staff_person_id=ticket.person_id,
                                          staff_name=ticket.person_name, public_key=public_key,
                                          minutes=CERT_MINUTES, purpose=purpose)  # fmt: skip
        session.commit()
        return cert


async def open_shell(
    target: Target, sessions: sessionmaker[Session], settings: Settings, ticket: Ticket, cols: int, rows: int
) -> tuple[Any, Any]:
    """Log in and start a login shell with a terminal; return (connection, process). Raises Refused."""
    if ticket.certificate:  # a debug session's own credentials: the runtime records it and applies its mode
        key, cert_text = asyncssh.import_private_key(ticket.private_key), ticket.certificate
    else:
        key = asyncssh.generate_private_key("ssh-ed25519")
        public = key.export_public_key().decode().strip()
        cert_text = await asyncio.to_thread(certify, sessions, settings, ticket, public)
    cert = asyncssh.import_certificate(cert_text)
    try:
        host_key = target.known_host_key()
    except (OSError, asyncssh.KeyImportError) as exc:
        raise Refused("The workspace runtime is not running.") from exc
    try:
        conn = await asyncssh.connect(
            target.host, target.port, username=workspace_login(ticket.workspace_id), client_keys=[(key, cert)],
            known_hosts=([host_key], [], []), agent_path=None, preferred_auth=["publickey"], login_timeout=15,
        )  # fmt: skip
    except (OSError, asyncssh.Error) as exc:
        raise Refused("The workspace did not accept the connection; it may have just stopped.") from exc
    try:
        process = await conn.create_process(term_type="xterm-256color", term_size=(cols, rows), encoding=None)
    except (OSError, asyncssh.Error) as exc:
        conn.close()
        raise Refused("The workspace refused to start a shell.") from exc
    return conn, process
