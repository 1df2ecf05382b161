"""scp transfers on EC2, from the tool log (stdlib only; runs on EC2; the parsers are pure).

The old scp protocol (`scp -O`, asyncssh's scp) is not SFTP: sshd runs `scp -t TARGET` (an upload) or
`scp -f PATH...` (a download) through the student's shell, which finds the recorder (cwc_toolwrap.py) first in
PATH. Its record names the arguments, the folder, the run's start and end and the SSH client's "address port",
which names the login it ran in (cwc_sshlog's open or recently closed sessions). Each file becomes one
`transfer` event {"protocol": "scp", "direction", "path", "bytes", "who", "session", "exit", "seen": "command"}:
an upload into a folder is the files in it written during the run; bytes are the file's size now (None for a
folder, a file that is gone, or one the student does not own). The record is the student's to write, like every
tool-log record ("seen": "command"). The local runtime reports scp sessions itself and never reads these.
"""

import os
import time

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_toolargs import events_of, scp_transfer
    from provisioning.agent.cwc_transfers import PATHS_SHOWN, _fit, _open_owned, _when, inside, shown
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_toolargs import events_of, scp_transfer
    from cwc_transfers import PATHS_SHOWN, _fit, _open_owned, _when, inside, shown

SLACK_S = 0.05  # a file's change time (the kernel's coarse clock, a tick behind) against the run's times
MAX_WALK = 5000  # entries looked at under an upload's folder


def file_size(path, home):
    """The size of a regular file in the home owned by the student, else None."""
    opened = _open_owned(path, home)
    if opened is None:
        return None
    os.close(opened[0])
    return opened[1].st_size


def uploaded(target, start, end, home, recursive):
    """The files an upload wrote: the target file, or the files under the target folder (below it too with -r)
    changed during the run; never outside the home."""
    if not inside(home, target) or os.path.islink(target):
        return []
    if not os.path.isdir(target):
        return [target] if os.path.isfile(target) else []
    found, seen = [], 0
    for root, dirs, files in os.walk(target):
        dirs[:] = sorted(dirs) if recursive else []
        for name in sorted(files):
            seen += 1
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if os.path.isfile(path) and not os.path.islink(path) and start - SLACK_S <= info.st_ctime <= end + SLACK_S:
                found.append(path)
        if seen > MAX_WALK or len(found) >= PATHS_SHOWN:
            break
    return found[:PATHS_SHOWN]


def scp_events(records, home, sessions, event):
    """`transfer` events of the scp runs in these tool-log records; `sessions` maps "address port" to the login's
    {"who", "session"} (cwc_sshlog)."""
    return events_of(records, lambda rec: _run(rec, home, sessions, event))


def _run(rec, home, sessions, event):
    args, cwd = [str(a) for a in rec["argv"]], str(rec.get("cwd") or home)
    found = scp_transfer(args, cwd)
    if found is None:
        return []
    direction, paths, recursive = found
    start = _when(rec.get("start"), 0)
    end = _when(rec.get("end"), start or time.time())
    status = rec.get("exit") if isinstance(rec.get("exit"), int) and not isinstance(rec.get("exit"), bool) else None
    if direction == "upload":
        paths = uploaded(paths[0], start, end, home, recursive) or paths
    login = sessions.get(str(rec.get("ssh") or ""), {})
    events = []
    for path in paths[:PATHS_SHOWN]:
        details = {"protocol": "scp", "direction": direction, "path": shown(path, home), "bytes": file_size(path, home),
                   "who": login.get("who", "unknown"), "session": login.get("session", ""), "exit": status,
                   "seen": "command"}  # fmt: skip
        events.append(event("transfer", _fit(details), end))
    return events
