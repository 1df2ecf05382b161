"""The runtime's SSH server (asyncssh): one loopback port for every local workspace, routed by login name.

Authentication follows provisioning.runtime.access; every session (shell, exec, SFTP, scp) runs inside the
workspace's bubblewrap sandbox as its unprivileged user. Logins and refusals are logged (never a key's secret).
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import logging
import os
import pty
import secrets
import struct
import termios
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHReader, SSHWriter

from provisioning.runtime.access import CertFacts, WorkspaceFacts, decide_cert, decide_key
from provisioning.runtime.sandbox import SFTP_SERVER, bwrap_argv, drop_privileges
from provisioning.ssh_keys import fingerprint

if TYPE_CHECKING:
    from provisioning.runtime.service import LocalRuntime

log = logging.getLogger("provisioning.runtime")


def _line(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def cert_facts(cert: Any) -> CertFacts:
    """The facts of an asyncssh OpenSSH certificate."""
    return CertFacts(
        ca_public_key=_line(cert.signing_key),
        principals=tuple(cert.principals),
        valid_after=datetime.fromtimestamp(cert._valid_after, UTC),  # noqa: SLF001 - asyncssh keeps them private
        valid_before=datetime.fromtimestamp(min(cert._valid_before, 2**40), UTC),  # noqa: SLF001
        serial=int(cert._serial),  # noqa: SLF001
        key_id=str(cert._key_id),  # noqa: SLF001
    )


class CheckedConnection(asyncssh.SSHServerConnection):
    """asyncssh's server connection, with the runtime's certificate rules (revocation, logging) run first."""

    async def _validate_openssh_certificate(self, username: str, cert: Any) -> Any:
        owner: WorkspaceServer = self._owner  # type: ignore[assignment]
        if not await owner.check_certificate(username, cert):
            return None
        return await super()._validate_openssh_certificate(username, cert)


class SandboxedProcess(asyncssh.SSHServerProcess):  # type: ignore[type-arg]
    """A session whose shell, command or SFTP subsystem all run in the sandbox (asyncssh would serve SFTP itself).

    asyncssh only accepts the "sftp" subsystem when it has an SFTP server of its own, which would run in this
    process, unconfined; this session accepts it and starts OpenSSH's sftp-server inside the sandbox instead.
    """

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        chan = self._chan
        assert chan is not None and self._conn is not None
        stdin = SSHReader(self, chan)
        handler = self._start_process(stdin, SSHWriter(self, chan), SSHWriter(self, chan, EXTENDED_DATA_STDERR))
        if inspect.isawaitable(handler):
            self._conn.create_task(handler, stdin.logger)


class WorkspaceServer(asyncssh.SSHServer):
    """One client connection: decides who it is and which workspace it reaches."""

    def __init__(self, rt: LocalRuntime) -> None:
        self.rt = rt
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = ""
        self.facts: WorkspaceFacts | None = None
        self.identity = ""
        self._loaded_for: str | None = None
        self.session_id = ""
        self.logged_in_at: datetime | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.peer = str((conn.get_extra_info("peername") or ("?",))[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.identity and self.facts is not None and self.session_id:
            log.info("logout ws%s %s from %s", self.facts.workspace_id, self.identity, self.peer)
            seconds = int((self.rt.now() - self.logged_in_at).total_seconds()) if self.logged_in_at else 0
            self.rt.note(self.facts, "ssh_logout", {"who": self.identity, "session": self.session_id,
                                                    "source_ip": self.peer, "seconds": seconds})  # fmt: skip
            self.rt.connection_closed(self)

    async def begin_auth(self, username: str) -> bool:
        facts = await self._load(username)  # the workspace's term-end warning joins the banner
        if self.conn is not None:
            notice = f"\n{facts.notice}\n" if facts is not None and facts.notice else ""
            self.conn.send_auth_banner(self.rt.banner + notice)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def _load(self, username: str) -> WorkspaceFacts | None:
        if self._loaded_for != username:
            try:
                self.facts = await self.rt.load_facts(username)
            except Exception:  # noqa: BLE001 - the database or EC2 cannot answer: refuse (fail closed)
                log.exception("cannot check login %s", username[:64])
                self.facts = None
            self._loaded_for = username
        return self.facts

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        decision = decide_key(await self._load(username), fingerprint(_line(key)))
        return self._note(username, decision.allowed, decision.reason)

    async def check_certificate(self, username: str, cert: Any) -> bool:
        """The runtime's certificate rules (asyncssh then checks the signature, principal and times again)."""
        facts = await self._load(username)
        try:
            presented = cert_facts(cert)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:  # a malformed certificate
            return self._note(username, False, f"unreadable certificate: {type(exc).__name__}")
        decision = decide_cert(facts, username, presented, self.rt.now())
        return self._note(username, decision.allowed, decision.reason)

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.facts is not None and self.facts.ca_public_key == _line(key)

    def _note(self, username: str, allowed: bool, reason: str) -> bool:
        if allowed:
            self.identity = reason
        else:
            log.warning("ssh login refused: login=%s from=%s: %s", username[:64], self.peer, reason)
        return allowed

    def session_requested(self) -> SandboxedProcess:
        return SandboxedProcess(lambda p: run_session(self.rt, self, p), None, MIN_SFTP_VERSION, False)

    def auth_completed(self) -> None:
        assert self.facts is not None
        log.info("login ws%s %s from %s", self.facts.workspace_id, self.identity, self.peer)
        self.session_id, self.logged_in_at = secrets.token_hex(8), self.rt.now()
        login = {"who": self.identity, "session": self.session_id, "source_ip": self.peer}
        self.rt.note(self.facts, "ssh_login", login)
        self.rt.connection_opened(self)


def _winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    cols, rows = size[0] or 80, size[1] or 24
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _pty_child() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    drop_privileges()


async def run_session(rt: LocalRuntime, server: WorkspaceServer, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run the session's shell, command or SFTP server inside the workspace's sandbox."""
    facts = server.facts
    if facts is None:
        process.exit(1)
        return
    transfer = _transfer(process.subsystem, process.command)
    if transfer:
        rt.note(facts, "transfer", {**transfer, "who": server.identity, "session": server.session_id})
    if process.subsystem == "sftp":
        command = [SFTP_SERVER]
    elif process.command:
        command = ["/bin/bash", "-c", process.command]
    else:
        command = ["/bin/bash", "-l"]
    spec = rt.sandbox_for(facts)
    await asyncio.get_running_loop().run_in_executor(None, rt.loader.mirror_materials, facts.course_id, spec.materials)
    env = {"SSH_CONNECTION": f"{server.peer} 0 127.0.0.1 {rt.port}", "TERM": process.get_terminal_type() or "dumb"}
    tty = process.get_terminal_type() is not None and process.subsystem != "sftp"
    argv = bwrap_argv(spec, command, env, new_session=not tty)
    if tty:
        code = await _run_pty(rt, facts, process, argv)
    else:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=drop_privileges,  # noqa: PLW1509 - no threads touch locks between fork and exec here
        )  # fmt: skip
        rt.track(facts.instance_id, proc)
        code = await _pump(process, proc)
    process.exit(code if code >= 0 else 255)


def _transfer(subsystem: str | None, command: str | None) -> dict[str, str] | None:
    """What a session says about a file transfer (SFTP, or scp's legacy protocol: -t upload, -f download)."""
    if subsystem == "sftp":
        return {"protocol": "sftp"}
    words = (command or "").split()
    if words[:1] == ["scp"]:
        direction = "upload" if "-t" in words else "download" if "-f" in words else "unknown"
        return {"protocol": "scp", "direction": direction, "path": words[-1][:300]}
    return None


async def _copy_out(source: asyncio.StreamReader, target: Any) -> None:
    while chunk := await source.read(65536):
        target.write(chunk)
        await target.drain()


async def _copy_in(source: Any, target: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            target.write(chunk)
            await target.drain()
        target.write_eof()
    except (ConnectionError, asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
        pass


async def _pump(process: Any, proc: asyncio.subprocess.Process) -> int:
    """Copy the channel to the sandbox and back until the sandbox exits and its output is all sent."""
    assert proc.stdin and proc.stdout and proc.stderr
    feeding = asyncio.ensure_future(_copy_in(process.stdin, proc.stdin))
    await asyncio.gather(_copy_out(proc.stdout, process.stdout), _copy_out(proc.stderr, process.stderr))
    code = await proc.wait()
    feeding.cancel()
    return code


async def _run_pty(rt: LocalRuntime, facts: WorkspaceFacts, process: Any, argv: list[str]) -> int:
    master, slave = pty.openpty()
    _winsize(slave, process.get_terminal_size())
    proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=_pty_child)  # noqa: PLW1509
    os.close(slave)
    rt.track(facts.instance_id, proc)
    reader, writer = os.fdopen(master, "rb", buffering=0), os.fdopen(os.dup(master), "wb", buffering=0)
    await process.redirect(stdin=writer, stdout=reader)
    return await proc.wait()


async def listen(rt: LocalRuntime, host: str, port: int, host_key: asyncssh.SSHKey) -> asyncio.base_events.Server:
    """Listen on host:port with the runtime's server and checked connections."""
    loop = asyncio.get_running_loop()
    options = await asyncssh.SSHServerConnectionOptions.construct(
        None, server_factory=lambda: WorkspaceServer(rt), server_host_keys=[host_key], encoding=None,
        sftp_factory=None, allow_scp=False,
        agent_forwarding=False, x11_forwarding=False, login_timeout=30, keepalive_interval=30,
    )  # fmt: skip
    loop.set_default_executor(ThreadPoolExecutor(max_workers=8, thread_name_prefix="runtime-db"))
    return await loop.create_server(lambda: CheckedConnection(loop, options), host, port, backlog=256)
