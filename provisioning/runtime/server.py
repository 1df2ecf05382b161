"""The runtime's SSH server (asyncssh): one loopback port for every local workspace, routed by login name.

Authentication follows provisioning.runtime.access; every session (shell, exec, SFTP, scp) runs inside the
workspace's bubblewrap sandbox as its unprivileged user. Logins and refusals are logged (never a key's secret).
Longer than 300 lines because the auth callbacks and the session runner share one connection's state (facts,
identity, debug session, banners) and read best side by side; the sandbox, recording and SFTP log are elsewhere.
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import logging
import os
import pty
import re
import secrets
import struct
import termios
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.public_key import KeyImportError, decode_ssh_certificate
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHReader, SSHWriter

from provisioning.agent.cwc_sshlog import sftp_transfer
from provisioning.runtime.access import (
    CertFacts,
    DebugFacts,
    WorkspaceFacts,
    accepted_principal,
    decide_cert,
    decide_key,
)
from provisioning.runtime.debug_io import debug_banner, run_recorded
from provisioning.runtime.messages import login_banner
from provisioning.runtime.processes import RuntimeStopping
from provisioning.runtime.sandbox import SFTP_SERVER, as_nobody, bwrap_argv, pty_spawn
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
    """asyncssh's server connection, with the runtime's certificate rules (revocation, logging) run first, and the
    bytes it sends counted as its workspace's transfer out (provisioning.runtime.traffic)."""

    _unattributed = 0  # bytes sent before the login named a workspace (the key exchange)

    def _send(self, data: bytes) -> None:
        super()._send(data)
        owner: WorkspaceServer | None = self._owner  # type: ignore[assignment]
        facts = owner.facts if owner is not None else None
        if facts is None:
            self._unattributed += len(data)
            return
        owner.rt.traffic.add(facts.instance_id, len(data) + self._unattributed)  # type: ignore[union-attr]
        self._unattributed = 0

    async def _validate_client_certificate(self, username: str, key_data: bytes) -> Any:
        """asyncssh drops a certificate it cannot read (one bit flipped: its signature fails) without a word; the
        refusal is logged like the others."""
        try:
            decode_ssh_certificate(key_data)
        except KeyImportError:
            if _certificate_type(key_data):
                owner: WorkspaceServer = self._owner  # type: ignore[assignment]
                owner.refused(username, "invalid certificate: bad signature or malformed")
            return None
        return await super()._validate_client_certificate(username, key_data)

    async def _validate_openssh_certificate(self, username: str, cert: Any) -> Any:
        owner: WorkspaceServer = self._owner  # type: ignore[assignment]
        if not await owner.check_certificate(username, cert):
            return None
        return await super()._validate_openssh_certificate(owner.cert_principal or username, cert)

    async def validate_public_key(self, username: str, key_data: bytes, msg: bytes, signature: bytes) -> bool:
        """The key (or certificate) is allowed; with a signature that verifies, its holder is proven, and only then
        is the workspace's own banner sent (before the authentication succeeds, as a banner must be)."""
        ok = await super().validate_public_key(username, key_data, msg, signature)
        if ok and msg:
            owner: WorkspaceServer = self._owner  # type: ignore[assignment]
            owner.send_banner()
        return ok

    def get_certificate_option(self, option: str, default: object = None) -> object:
        """A certificate's `force-command` is EC2's recorder: the runtime records debug sessions itself."""
        if option == "force-command":
            return default
        return super().get_certificate_option(option, default)


def _certificate_type(key_data: bytes) -> bool:
    """Whether SSH key data names an OpenSSH certificate type (its first string)."""
    size = int.from_bytes(key_data[:4], "big")
    return key_data[4 : 4 + size].endswith(b"-cert-v01@openssh.com")


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
        self._banner_sent = False
        self.session_id = ""
        self.logged_in_at: datetime | None = None
        self.cert_serial: int | None = None
        self.cert_principal: str | None = None  # the principal the accepted certificate names for this login
        self.debug: DebugFacts | None = None  # a staff debug session: recorded, view-only unless full control
        self.recordings = 0
        self.debug_procs: set[asyncio.subprocess.Process] = set()  # ended with the connection

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
        for proc in self.debug_procs:  # a debug session's commands never outlive it
            if proc.returncode is None:
                proc.kill()

    async def begin_auth(self, username: str) -> bool:
        await self._load(username)
        return True

    def send_banner(self) -> None:
        """The workspace's login banner (what is recorded, the term-end warning with the student's spend), sent only
        to a proven key or certificate holder: before that, every login name gets the same nothing (login names are
        guessable, and neither a course's settings nor a student's spend may leak)."""
        facts = self.facts
        if self.conn is None or facts is None or self._banner_sent:
            return
        self._banner_sent = True
        notice = f"\n{facts.notice}\n" if facts.notice else ""
        self.conn.send_auth_banner(self.rt.banner(facts.instance_id) + notice)

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
        if decision.allowed:
            self.cert_serial = presented.serial
            self.cert_principal = accepted_principal(username, presented)
        return self._note(username, decision.allowed, decision.reason)

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.facts is not None and self.facts.ca_public_key == _line(key)

    def refused(self, username: str, reason: str) -> None:
        """Log a refused login (never what the client sees: one refusal for every reason)."""
        log.warning("ssh login refused: login=%s from=%s: %s", username[:64], self.peer, reason)

    def _note(self, username: str, allowed: bool, reason: str) -> bool:
        if allowed:
            self.identity = reason
        else:
            self.refused(username, reason)
        return allowed

    def session_requested(self) -> SandboxedProcess:
        return SandboxedProcess(lambda p: run_session(self.rt, self, p), None, MIN_SFTP_VERSION, False)

    def auth_completed(self) -> None:
        assert self.facts is not None
        log.info("login ws%s %s from %s", self.facts.workspace_id, self.identity, self.peer)
        self.session_id, self.logged_in_at = secrets.token_hex(8), self.rt.now()
        self.debug = self.facts.debug.get(self.cert_serial) if self.cert_serial is not None else None
        login = {"who": self.identity, "session": self.session_id, "source_ip": self.peer}
        if self.debug is not None:
            login |= {"debug_session": self.debug.label, "mode": self.debug.mode}
        self.rt.note(self.facts, "ssh_login", login)
        self.rt.connection_opened(self)


def _winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    cols, rows = size[0] or 80, size[1] or 24
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def run_session(rt: LocalRuntime, server: WorkspaceServer, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run the session's shell, command or SFTP server inside the workspace's sandbox; refused (exit 1, saying
    why) once the runtime is stopping, whenever the stop comes while it opens."""
    if server.facts is None:
        process.exit(1)
        return
    try:
        await _run_session(rt, server, process)
    except RuntimeStopping:
        if process.subsystem != "sftp":  # SFTP speaks a binary protocol
            process.stderr.write(b"The workspace runtime is stopping; try again in a moment.\r\n")
        process.exit(1)


async def _run_session(rt: LocalRuntime, server: WorkspaceServer, process: asyncssh.SSHServerProcess[bytes]) -> None:
    facts = server.facts
    assert facts is not None
    if rt.stopping:
        raise RuntimeStopping("the workspace runtime is stopping")
    transfer = _transfer(process.subsystem, process.command)
    if transfer:
        rt.note(facts, "transfer", {**transfer, "who": server.identity, "session": server.session_id})
    if process.subsystem == "sftp":  # its log (each file's bytes) on stderr, read below as on EC2
        command = [SFTP_SERVER, "-e", "-l", "INFO"]
    elif process.command:
        command = ["/bin/bash", "-c", process.command]
    else:
        command = ["/bin/bash", "-l"]
    spec = rt.sandbox_for(facts)
    await asyncio.get_running_loop().run_in_executor(None, rt.prepare_session, facts, spec)
    if rt.stopping:  # the stop came while the session was being prepared
        raise RuntimeStopping("the workspace runtime is stopping")
    if command == ["/bin/bash", "-l"] and server.identity.startswith("student key"):
        await _staff_messages(rt, facts, process)
    env = {"SSH_CONNECTION": f"{server.peer} 0 127.0.0.1 {rt.port}", "TERM": process.get_terminal_type() or "dumb"}
    tty = process.get_terminal_type() is not None and process.subsystem != "sftp"
    in_tmux = tty and server.debug is None and runs_tmux(process.command)
    if command == ["/bin/bash", "-l"] or in_tmux:  # a typed command names its session (when the course records them)
        env["CWC_SESSION"] = server.session_id
    if in_tmux:  # the browser terminal's shell (or `ssh -t ws tmux`): kept by the workspace's tmux server
        await rt.keep_tmux(facts, spec, env)
    debug = server.debug
    argv = bwrap_argv(spec, command, env, new_session=not tty, home_read_only=debug is not None and debug.read_only,
                      student_tmux=debug is None)  # fmt: skip
    if debug is not None:
        banner = debug_banner(debug)
        if process.subsystem != "sftp":  # SFTP speaks a binary protocol: its banner is the login's
            (process.stdout if tty else process.stderr).write(banner.replace("\n", "\r\n").encode())
        code = await run_recorded(rt, server, process, argv, tty=tty, banner=banner)
    elif tty:
        code = await _run_pty(rt, facts, process, argv)
    else:
        argv, as_user = as_nobody(argv)
        proc = await rt.spawn(facts.instance_id, argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                              stderr=asyncio.subprocess.PIPE, **as_user)  # fmt: skip
        sftp_log = _sftp_noter(rt, server, spec.inner_home) if process.subsystem == "sftp" else None
        code = await _pump(process, proc, sftp_log)
    process.exit(code if code >= 0 else 255)


def runs_tmux(command: str | None) -> bool:
    """A command that runs tmux (its server then runs apart from the session, as on an instance). Pure."""
    return bool(command) and re.search(r"(^|[\s;&|])(exec\s+)?tmux(\s|$)", command or "") is not None


async def _staff_messages(rt: LocalRuntime, facts: WorkspaceFacts, process: Any) -> None:
    """List the student's unread staff messages before their login shell starts (a DB failure shows nothing)."""
    try:
        text = await asyncio.get_running_loop().run_in_executor(
            None, login_banner, rt.loader.sessions, facts.workspace_id
        )
    except Exception:  # noqa: BLE001 - the login goes on without the list
        log.exception("staff messages for ws%s not shown", facts.workspace_id)
        return
    if text:
        process.stdout.write(text.replace("\n", "\r\n").encode())


def _transfer(subsystem: str | None, command: str | None) -> dict[str, str] | None:
    """What a session says about a file transfer: scp's legacy protocol (-t upload, -f download); SFTP's files
    come from sftp-server's log, one event per file."""
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


def _sftp_noter(rt: LocalRuntime, server: WorkspaceServer, home: str) -> Callable[[str], None]:
    """Note a `transfer` event for each sftp-server log line that closed a file with bytes moved."""

    def note(line: str) -> None:
        moved = sftp_transfer(line, home)
        if moved and server.facts is not None:
            rt.note(server.facts, "transfer", {"protocol": "sftp", **moved, "who": server.identity,
                                               "session": server.session_id})  # fmt: skip

    return note


async def _read_log(source: asyncio.StreamReader, note: Callable[[str], None]) -> None:
    while line := await source.readline():
        note(line.decode(errors="replace").rstrip("\r\n"))


async def _pump(process: Any, proc: asyncio.subprocess.Process, log: Callable[[str], None] | None = None) -> int:
    """Copy the channel to the sandbox and back until the sandbox exits and its output is all sent (stderr to
    `log` when given: sftp-server's log is the runtime's, not the client's)."""
    assert proc.stdin and proc.stdout and proc.stderr
    feeding = asyncio.ensure_future(_copy_in(process.stdin, proc.stdin))
    errors = _read_log(proc.stderr, log) if log else _copy_out(proc.stderr, process.stderr)
    await asyncio.gather(_copy_out(proc.stdout, process.stdout), errors)
    code = await proc.wait()
    feeding.cancel()
    return code


async def _run_pty(rt: LocalRuntime, facts: WorkspaceFacts, process: Any, argv: list[str]) -> int:
    master, slave = pty.openpty()
    _winsize(slave, process.get_terminal_size())
    argv, spawn = pty_spawn(argv)
    try:
        proc = await rt.spawn(facts.instance_id, argv, stdin=slave, stdout=slave, stderr=slave, **spawn)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
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
