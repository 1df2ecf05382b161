#!/usr/bin/python3 -I
"""Record a run of curl, wget, unzip, tar or scp for the workspace's activity log, then be that program.

Installed (read-only, owned by root) as /usr/local/bin/curl, wget, unzip, tar and scp, ahead of /usr/bin in PATH,
on EC2 by the user data and in each local sandbox by the runtime. sshd runs the old scp protocol's server side
(`scp -t` to upload, `scp -f` to download: `scp -O`, asyncssh's scp) through the user's shell, so it comes here
too, with the SSH session's address in SSH_CONNECTION. It records only while the log file exists: the
agent creates it when the course collects activity and removes it when it does not. Then it runs the real
program as its child, and after it ends appends one JSON line (program, arguments, folder, start, end, exit
status, the SSH client's "address port" when run in an SSH session) that the agent turns into `download`,
`extract` and, on EC2, scp `transfer` events. Without the log file it is the real program
(exec). It never changes what the program does; any failure to record is silent. Stdlib only.

Not a lock: a program called by its full path (/usr/bin/curl) or another downloader is not seen this way.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

LOG = "/var/log/cwc/tools.jsonl"
TOOLS = ("curl", "wget", "unzip", "tar", "scp")  # the one list: the user data and the runtime link these
REAL_DIRS = ("/usr/bin", "/bin")
MAX_ARGS, MAX_ARG_CHARS = 64, 1000


def real_program(tool):
    """The real program's path (never this wrapper's own folder)."""
    for folder in REAL_DIRS:
        path = os.path.join(folder, tool)
        if os.access(path, os.X_OK) and os.path.realpath(path) != os.path.realpath(__file__):
            return path
    return None


def ssh_client(env):
    """The SSH client's "address port" of the session this runs in (OpenSSH's SSH_CONNECTION, else SSH_CLIENT)."""
    words = (env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or "").split()
    return " ".join(words[:2])[:100] if len(words) >= 2 else ""


def record(tool, args, cwd, start, end, status, log=LOG, ssh=""):
    """Append one line to the log (one write on an O_APPEND descriptor: lines from concurrent runs never mix)."""
    line = json.dumps({"tool": tool, "argv": [a[:MAX_ARG_CHARS] for a in args[:MAX_ARGS]], "cwd": cwd,
                       "start": round(start, 3), "end": round(end, 3), "exit": status,
                       **({"ssh": ssh} if ssh else {})})  # fmt: skip
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def main():
    tool = os.path.basename(sys.argv[0])
    real = real_program(tool) if tool in TOOLS else None
    if real is None:
        sys.stderr.write(f"cwc: {tool}: no such program\n")
        return 127
    if not os.path.exists(LOG):  # the course does not collect activity: be the program
        os.execv(real, [tool, *sys.argv[1:]])
    for sig in (signal.SIGINT, signal.SIGQUIT):  # the child gets them from the terminal; we wait and record
        signal.signal(sig, lambda *_: None)  # a handler (not SIG_IGN): the child starts with the default
    start = time.time()
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    status = subprocess.call([tool, *sys.argv[1:]], executable=real)
    with contextlib.suppress(OSError, ValueError):  # recording never changes what the program did
        record(tool, sys.argv[1:], cwd, start, time.time(), status, ssh=ssh_client(os.environ))
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
