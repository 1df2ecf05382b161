#!/usr/bin/env python3
"""A staff debug session on an EC2 workspace: the command its certificate forces (provisioning.debug_shell).

`cwc_debug_shell.py LABEL view|full UNTIL_EPOCH STUDENT`, run by sshd as the login user (view-only: the view user
whose home is the agent's read-only mount of the student's home; full control: the student's user). It prints
the banner (student, session, mode, expiry, "everything is recorded"), refuses SFTP (its binary protocol cannot
be replayed) and an expired or unmounted view, then runs the login shell, or the command the client asked for
(SSH_ORIGINAL_COMMAND), in a pseudo-terminal (or pipes when the client asked for none), copying every chunk typed
("i") and shown ("o") into an asciicast v2 file in the spool. At the expiry, on SIGTERM (the agent ends a session
the tool ended) or SIGHUP (the client went away) it ends every process of the shell's session. The finished file
is renamed *.cast; the agent uploads it with the workspace's token. Stdlib only.
"""

import contextlib
import os
import pty
import pwd
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_cast import CastRecorder
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_cast import CastRecorder

SPOOL = "/var/spool/cwc-debug"
RECORDER_NAME = "cwc_debug_shell.py"
VIEW_USER = "cwc-view"
SFTP = ("sftp-server", "internal-sftp")
CHUNK = 65536


def banner(label, mode, until, student):
    """The banner at login. Pure."""
    kind = "VIEW-ONLY (the student's home is read-only)" if mode == "view" else "FULL CONTROL (you can change files)"
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
    return (
        f"*** Debug session {label} on {student}'s workspace.\n"
        f"*** Mode: {kind}. Expires {expires}.\n"
        "*** Everything typed and shown in this session is recorded; the student has been told.\n"
    )


def parse_args(argv):
    """(label, mode, until, student) from the forced command's words; ValueError when malformed."""
    if len(argv) != 4 or not argv[0].isalnum() or argv[1] not in ("view", "full") or not argv[2].isdigit():
        raise ValueError("usage: cwc_debug_shell.py LABEL view|full UNTIL_EPOCH STUDENT")
    return argv[0], argv[1], int(argv[2]), argv[3]


def read_only_mount(path, mountinfo="/proc/self/mountinfo"):
    """Whether `path` is a mount point mounted read-only (bind mounts of the same file system included)."""
    target = os.path.realpath(path)
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in reversed(lines):  # the last mount on a point is the one in effect
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape") if len(fields) > 5 else ""
        if point == target:
            return "ro" in fields[5].split(",")
    return False


def session_members(sid, proc_root="/proc"):
    """The pids whose session id is `sid` (Linux /proc)."""
    found = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, entry, "stat"), "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and int(fields[3]) == sid:  # state, ppid, pgrp, session
            found.append(int(entry))
    return found


def end_session_of(pid):
    """Hang up, then kill, every process of the session `pid` leads (its shell and what it started)."""
    for sig in (signal.SIGHUP, signal.SIGKILL):
        for member in session_members(pid):
            with contextlib.suppress(OSError):
                os.kill(member, sig)
        if sig == signal.SIGHUP:
            time.sleep(0.5)


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]


class Session:
    """The shell's process, its recording, and why it ended."""

    def __init__(self, rec, until):
        self.rec, self.until, self.child, self.stop, self.ended = rec, until, None, "", None
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._stop)

    def _stop(self, signum, _frame):
        self.stop = self.stop or ("ended by the tool" if signum == signal.SIGTERM else "the connection closed")

    def wait_s(self):
        return max(0.0, min(1.0, self.until - time.time()))

    def check(self, notice_fd):
        """End the shell's session at the expiry or on a signal; True once it was ended."""
        if not self.stop and time.time() >= self.until:
            self.stop = "its time ran out"
        if self.stop and self.child is not None:
            text = f"\r\n*** Debug session ended: {self.stop}.\r\n"
            self.rec.output(text)
            with contextlib.suppress(OSError):
                _write_all(notice_fd, text.encode())
            end_session_of(self.child)
            self.child, self.ended = None, time.monotonic()
            return True
        return False

    def gone(self):
        """Ended a while ago: stop copying even if something still holds the terminal or a pipe open."""
        return self.ended is not None and time.monotonic() - self.ended > 5


def run_pty(argv, rec, until):
    """The shell or command in a pseudo-terminal sized like the client's (stdin is in raw mode: main)."""
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    s = Session(rec, until)
    s.child = pid

    def resize(_signum=None, _frame=None):
        try:
            import fcntl

            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass

    resize()
    signal.signal(signal.SIGWINCH, resize)
    try:
        reading = [0, master]
        while master in reading and not s.gone():
            s.check(1)
            try:
                ready = select.select(reading, [], [], s.wait_s())[0]
            except InterruptedError:
                continue
            if 0 in ready:
                data = os.read(0, CHUNK)
                if not data:
                    reading.remove(0)
                else:
                    rec.input(data)
                    _write_all(master, data)
            if master in ready:
                try:
                    data = os.read(master, CHUNK)
                except OSError:  # EIO: every process holding the terminal is gone
                    data = b""
                if not data:
                    reading.remove(master)
                else:
                    rec.output(data)
                    _write_all(1, data)
    except OSError:
        s.stop = s.stop or "the connection closed"
        s.check(2)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def run_pipes(argv, rec, until):
    """The command with pipes (the client asked for no terminal): stdout and stderr both recorded as shown."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    s = Session(rec, until)
    s.child = proc.pid
    targets = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
    reading = [0, *targets]
    try:
        while any(fd in reading for fd in targets) and not s.gone():
            s.check(2)
            try:
                ready = select.select(reading, [], [], s.wait_s())[0]
            except InterruptedError:
                continue
            for fd in ready:
                data = os.read(fd, CHUNK)
                if fd == 0:
                    if data:
                        rec.input(data)
                    try:
                        if data:
                            proc.stdin.write(data)
                            proc.stdin.flush()
                        else:
                            reading.remove(0)
                            proc.stdin.close()
                    except BrokenPipeError:  # the command stopped reading: keep showing what it prints
                        reading = [r for r in reading if r != 0]
                elif data:
                    rec.output(data)
                    _write_all(targets[fd], data)
                else:
                    reading.remove(fd)
    except OSError:
        s.stop = s.stop or "the connection closed"
        s.check(2)
    code = proc.wait()
    return 128 - code if code < 0 else code


def main(argv, spool=SPOOL):
    try:
        label, mode, until, student = parse_args(argv)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    terminal = os.isatty(0)
    saved = termios.tcgetattr(0) if terminal else None
    if terminal:  # raw at once (TCSANOW keeps what was typed already): the shell's terminal does the echo
        tty.setraw(0, termios.TCSANOW)
    try:
        return _session(label, mode, until, student, terminal, spool)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _session(label, mode, until, student, terminal, spool):
    def say(text, fd=1 if terminal else 2):
        _write_all(fd, text.replace("\n", "\r\n").encode() if terminal else text.encode())

    text = banner(label, mode, until, student)
    say(text)
    command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    words = command.split()
    if words and os.path.basename(words[0]) in SFTP:
        say("SFTP is not available in a debug session: use Export on the debug page.\n", 2)
        return 1
    if time.time() >= until:
        say(f"Debug session {label} has expired.\n")
        return 1
    me = pwd.getpwuid(os.getuid())
    if mode == "view" and (me.pw_name != VIEW_USER or not read_only_mount(me.pw_dir)):
        say("View-only is unavailable: the read-only view of the student's home is not mounted.\n")
        return 1
    shell = me.pw_shell if me.pw_shell and os.path.basename(me.pw_shell) not in ("nologin", "false") else "/bin/bash"
    run = [shell, "-c", command] if command else [shell, "-l"]
    part = Path(spool) / f"{label}.{int(time.time())}.{os.getpid()}.part"
    cols, rows = 80, 24
    if terminal:
        with contextlib.suppress(OSError):
            cols, rows = os.get_terminal_size(0)
    old = os.umask(0o077)  # the recording is readable by its writer and root (the agent) only
    try:
        rec = CastRecorder(part, width=cols, height=rows, title=f"{label} {student}", started=time.time())
    finally:
        os.umask(old)
    rec.output(text.replace("\n", "\r\n"))
    if command:
        rec.input(command + "\n")
    try:
        return run_pty(run, rec, until) if terminal else run_pipes(run, rec, until)
    finally:
        rec.close()
        os.rename(part, part.with_suffix(".cast"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
