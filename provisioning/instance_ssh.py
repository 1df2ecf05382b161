"""One way for the tool to open SSH to a workspace: the local runtime, or an EC2 instance with its pinned host key.

The tool never uses a student's key: it makes an Ed25519 key per connection and the course CA signs it for the
workspace's principal (`ws<id>`), which sshd on an EC2 instance accepts through the user data's
AuthorizedPrincipalsFile for the template's login user. Reading files (the debug page, export, a reset's backup)
uses a certificate whose critical option forces `internal-sftp -R`, sshd's own read-only SFTP server: the
tool's login can read what the student can read and nothing else (no shell, no writes). The browser terminal
uses the gateway's terminal certificate instead (provisioning/gateway/connect.py).

The host key is always checked: on EC2 against the keys the instance's agent reported first (pinned on the
workspace row, classroom/workspaces/host_keys.py); without a pin, or after the instance reported different keys,
the tool refuses to connect and says why. Every asyncssh or OS failure becomes one error, `WorkspaceSshError`,
whose message is for the person who asked.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

import asyncssh
from sqlalchemy.orm import Session

from classroom.models import Workspace
from classroom.workspaces.host_keys import current_pin
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.settings import Settings
from provisioning.ssh_ca import issue_tool_certificate
from provisioning.ssh_keys import SshKeyError

CONNECT_TIMEOUT_S = 15
# asyncssh's default ciphers with AES-GCM first (its default puts ChaCha20-Poly1305 first): the same set, so any
# server it could reach before it still reaches; AES-GCM is one hardware-accelerated call per packet where asyncssh's
# ChaCha20-Poly1305 builds three cipher objects and a Poly1305 MAC per packet, ~13 against ~2 us for a keystroke's
# packet here, and a browser terminal sends one packet each way per keystroke.
CIPHERS = (
    "aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com",
    "aes256-ctr", "aes192-ctr", "aes128-ctr",
)  # fmt: skip


class SshFailure(enum.StrEnum):
    """Why the tool could not reach a workspace."""

    NOT_RUNNING = "not_running"
    NO_ADDRESS = "no_address"
    NOT_PINNED = "not_pinned"
    KEY_CHANGED = "key_changed"  # the agent reported other keys than the pinned ones
    HOST_KEY_MISMATCH = "host_key_mismatch"  # the server showed a key that is not pinned
    REFUSED = "refused"  # the server did not accept the tool's certificate
    UNREACHABLE = "unreachable"
    FAILED = "failed"  # anything else during the session (lost connection, SFTP error)


class WorkspaceSshError(Exception):
    """The tool could not reach or use a workspace over SSH; the message is for the person who asked."""

    def __init__(self, failure: SshFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class SshEndpoint:
    """Where to log in, as whom, and the only host keys accepted (OpenSSH public key lines or key objects)."""

    host: str
    port: int
    username: str
    host_keys: tuple[Any, ...]
    where: str = "ec2"  # ec2 | runtime

    def known_hosts(self) -> tuple[list[Any], list[Any], list[Any]]:
        """asyncssh's trusted host keys: these and nothing else (no CA, no revoked list)."""
        keys = [asyncssh.import_public_key(k) if isinstance(k, str) else k for k in self.host_keys]
        return keys, [], []


def login_user(ws: Workspace) -> str:
    """The EC2 login user the workspace's template names (the user data configures sshd for it)."""
    template = load_catalog().get(ws.template_id)
    return template.os_user if template else "ubuntu"


def ec2_endpoint(ws: Workspace, *, port: int, username: str | None = None) -> SshEndpoint:
    """The running EC2 instance of this workspace, with its pinned host keys; WorkspaceSshError saying why not."""
    if ws.state is not WorkspaceState.RUNNING:
        raise WorkspaceSshError(
            SshFailure.NOT_RUNNING, f"The workspace is {ws.state.value}: its machine can be reached only while running."
        )
    if ws.ssh_host_keys_refused and ws.ssh_host_keys_instance_id == ws.instance_id:
        raise WorkspaceSshError(
            SshFailure.KEY_CHANGED,
            "This workspace's machine reported a different SSH host key from the one pinned when it first booted, "
            "so the tool will not connect to it (a reset gives it a new machine).",
        )
    keys = current_pin(ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.instance_id)
    if not keys:
        raise WorkspaceSshError(
            SshFailure.NOT_PINNED,
            "The tool has no pinned SSH host key for this workspace's machine yet (its agent reports it within a "
            "minute of booting), so it cannot verify the machine and will not connect. Try again in a minute.",
        )
    if not ws.public_ip:
        raise WorkspaceSshError(SshFailure.NO_ADDRESS, "This workspace's machine has no public address yet.")
    return SshEndpoint(ws.public_ip, port, username or login_user(ws), keys)


def runtime_endpoint(workspace_id: int, *, port: int, host_key: Any, host: str = "127.0.0.1") -> SshEndpoint:
    """The local runtime's SSH server (development, demos, tests): login `ws<id>`, its own host key."""
    return SshEndpoint(host, port, f"ws{workspace_id}", (host_key,), where="runtime")


def tool_credentials(
    session: Session, *, settings: Settings, workspace: Workspace, why: str, person_id: int | None, command: str
) -> tuple[asyncssh.SSHKey, str]:
    """A key made for one connection and the course CA's certificate for it (`issue_tool_certificate`: the
    workspace's principal, a few minutes, `command` forced); WorkspaceSshError (refused) when the course has no CA.
    Writes nothing to the session."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    try:
        cert = issue_tool_certificate(session, settings=settings, workspace=workspace, why=why, person_id=person_id,
                                      public_key=key.export_public_key().decode(), command=command)  # fmt: skip
    except SshKeyError as exc:
        raise WorkspaceSshError(SshFailure.REFUSED, str(exc)) from exc
    return key, cert


async def connect(endpoint: SshEndpoint, key: asyncssh.SSHKey, certificate: str) -> asyncssh.SSHClientConnection:
    """Log in with the key and its certificate, accepting only the endpoint's host keys."""
    try:
        cert = asyncssh.import_certificate(certificate)
        return await asyncssh.connect(
            endpoint.host, endpoint.port, username=endpoint.username, client_keys=[(key, cert)],
            known_hosts=endpoint.known_hosts(), agent_path=None, config=None, preferred_auth=["publickey"],
            connect_timeout=CONNECT_TIMEOUT_S, login_timeout=CONNECT_TIMEOUT_S, encryption_algs=CIPHERS,
        )  # fmt: skip
    except Exception as exc:
        mapped = ssh_error(exc, endpoint)
        if mapped is exc:
            raise
        raise mapped from exc


def ssh_error(exc: Exception, endpoint: SshEndpoint | None = None) -> Exception:
    """The port's error for an asyncssh or OS failure (anything else is returned as is)."""
    where = f"{endpoint.host}:{endpoint.port}" if endpoint else "the workspace"
    if isinstance(exc, WorkspaceSshError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return WorkspaceSshError(
            SshFailure.HOST_KEY_MISMATCH,
            f"The machine at {where} did not show the SSH host key pinned for this workspace: the tool refused "
            "the connection and read nothing.",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return WorkspaceSshError(
            SshFailure.REFUSED, "The workspace's SSH server did not accept the tool's course certificate."
        )
    if isinstance(exc, asyncssh.Error | asyncssh.SFTPError):
        return WorkspaceSshError(SshFailure.FAILED, f"The SSH session with the workspace failed: {exc.reason}")
    if isinstance(exc, OSError | asyncio.TimeoutError | asyncssh.KeyImportError):
        return WorkspaceSshError(SshFailure.UNREACHABLE, f"The workspace's machine cannot be reached at {where}.")
    return exc
