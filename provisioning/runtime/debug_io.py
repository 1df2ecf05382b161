"""A staff debug session's channel in the runtime: its login banner, and its I/O teed into an asciicast recording.

The server runs a debug session's shell or command through `run_recorded` instead of letting asyncssh pipe the
channel straight to the sandbox: every chunk typed ("i") and shown ("o") is written to the recording, with its
time, as it passes. When the channel ends the recording is uploaded to the course's archive bucket (through the
CloudBackend port) and recorded in the database before the exit status goes back to the client. SFTP is refused
in a debug session (its binary protocol cannot be replayed): staff use the debug page's export instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios
from typing import TYPE_CHECKING, Any

import asyncssh

from provisioning.runtime.access import DebugFacts
from provisioning.runtime.recording import CastRecorder
from provisioning.runtime.sandbox import as_nobody, pty_spawn

if TYPE_CHECKING:
    from provisioning.runtime.server import WorkspaceServer
    from provisioning.runtime.service import LocalRuntime

STOPS = (ConnectionError, asyncssh.BreakReceived, asyncssh.SignalReceived)


def debug_banner(debug: DebugFacts) -> str:
    """The banner a debug session shows at login. Pure."""
    mode = "VIEW-ONLY (the student's home is read-only)" if debug.read_only else "FULL CONTROL (you can change files)"
    return (
        f"*** Debug session {debug.label} on {debug.student_name}'s workspace, opened by {debug.staff_name}.\n"
        f"*** Mode: {mode}. Expires {debug.expires_at.strftime('%Y-%m-%d %H:%M UTC')}.\n"
        "*** Everything typed and shown in this session is recorded; the student has been told.\n"
    )


def _winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows or 24, cols or 80, 0, 0))


async def _spawn(rt: LocalRuntime, server: WorkspaceServer, argv: list[str], **options: Any) -> Any:
    """A debug session's sandbox process: tracked by the runtime (a stop ends it) and by the connection."""
    assert server.facts is not None
    proc = await rt.spawn(server.facts.instance_id, argv, **options)
    server.debug_procs.add(proc)
    return proc


async def run_recorded(
    rt: LocalRuntime, server: WorkspaceServer, process: Any, argv: list[str], *, tty: bool, banner: str
) -> int:
    """Run the debug session's shell or command in the sandbox, recording it; upload the recording; exit code."""
    facts, debug = server.facts, server.debug
    assert facts is not None and debug is not None
    if process.subsystem == "sftp":
        process.stderr.write(b"SFTP is not available in a debug session: use Export on the debug page.\n")
        return 1
    server.recordings += 1
    name = f"{server.session_id}-{server.recordings}"
    path = rt.root / "recordings" / debug.label / f"{name}.cast"
    cols, rows = process.get_terminal_size()[:2]
    started = rt.now()
    rec = CastRecorder(path, width=cols or 80, height=rows or 24, title=f"{debug.label} ws{facts.workspace_id}",
                       started=started.timestamp())  # fmt: skip
    rec.output(banner.replace("\n", "\r\n"))
    if process.command:
        rec.input(process.command + "\n")
    try:
        if tty:
            code = await _pty(rt, server, process, argv, rec)
        else:
            code = await _pipes(rt, server, process, argv, rec)
    finally:
        rec.close()
        await asyncio.get_running_loop().run_in_executor(
            None, rt.loader.store_recording, debug, facts.course_id, name, path, started
        )
    return code


async def _pipes(rt: LocalRuntime, server: WorkspaceServer, process: Any, argv: list[str], rec: CastRecorder) -> int:
    argv, as_user = as_nobody(argv)
    proc = await _spawn(rt, server, argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE, **as_user)  # fmt: skip
    assert proc.stdin and proc.stdout and proc.stderr
    stdin = proc.stdin

    async def out(source: asyncio.StreamReader, target: Any) -> None:
        while chunk := await source.read(65536):
            rec.output(chunk)
            target.write(chunk)
            await target.drain()

    async def feed() -> None:
        try:
            while True:
                try:
                    chunk = await process.stdin.read(65536)
                except asyncssh.TerminalSizeChanged:
                    continue
                if not chunk:
                    break
                rec.input(chunk)
                stdin.write(chunk)
                await stdin.drain()
            stdin.write_eof()
        except STOPS:
            pass

    feeding = asyncio.ensure_future(feed())
    await asyncio.gather(out(proc.stdout, process.stdout), out(proc.stderr, process.stderr))
    code = await proc.wait()
    feeding.cancel()
    return code


async def _pty(rt: LocalRuntime, server: WorkspaceServer, process: Any, argv: list[str], rec: CastRecorder) -> int:
    master, slave = pty.openpty()
    cols, rows = process.get_terminal_size()[:2]
    _winsize(slave, cols, rows)
    argv, spawn = pty_spawn(argv)
    try:
        proc = await _spawn(rt, server, argv, stdin=slave, stdout=slave, stderr=slave, **spawn)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master, "rb", buffering=0)
    )
    write_fd = os.dup(master)

    async def out() -> None:
        try:
            while chunk := await reader.read(65536):
                rec.output(chunk)
                process.stdout.write(chunk)
                await process.stdout.drain()
        except (OSError, *STOPS):  # EIO once the shell's side of the terminal is gone
            pass

    async def feed() -> None:
        try:
            while True:
                try:
                    chunk = await process.stdin.read(65536)
                except asyncssh.TerminalSizeChanged as exc:
                    _winsize(write_fd, exc.width, exc.height)
                    continue
                if not chunk:
                    break
                rec.input(chunk)
                os.write(write_fd, chunk)
        except (OSError, *STOPS):
            pass

    feeding = asyncio.ensure_future(feed())
    showing = asyncio.ensure_future(out())
    code = await proc.wait()
    await asyncio.wait([showing], timeout=2)
    feeding.cancel()
    showing.cancel()
    transport.close()
    os.close(write_fd)
    return code
