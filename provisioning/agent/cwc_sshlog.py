"""SSH logins, logouts and SFTP transfers on EC2, from sshd's and sftp-server's own log lines (stdlib only).

The user data sets sshd's LogLevel VERBOSE (which logs the key's fingerprint, or the certificate's key id,
serial and CA) and runs the SFTP subsystem with `-l INFO` (which logs each file opened and closed, with the bytes
read and written; scp uses SFTP since OpenSSH 9). The agent reads those lines from journald (after the cursor it
keeps) or, without journald, from /var/log/auth.log, and turns them into the same events the local runtime
sends: `ssh_login`, `ssh_logout` (with the session's length) and `transfer`. The local runtime uses
`sftp_transfer` on the sftp-server it runs in each sandbox. The parsers are pure.
"""

import json
import os
import re
import subprocess
from datetime import datetime

ACCEPTED = re.compile(
    r"^Accepted publickey for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+) ssh2: (?P<type>\S+) "
    r"(?P<fp>SHA256:\S+)(?: ID (?P<key_id>.*) \(serial (?P<serial>\d+)\) CA \S+ (?P<ca>SHA256:\S+))?$"
)
DISCONNECTED = re.compile(r"^Disconnected from user (?P<user>\S+) (?P<ip>\S+) port (?P<port>\d+)$")
SFTP_OPENED = re.compile(r"^session opened for local user (?P<user>\S+) from \[(?P<ip>[^\]]*)\]$")
SFTP_CLOSED = re.compile(r"^session closed for local user (?P<user>\S+) from \[(?P<ip>[^\]]*)\]$")
SFTP_CLOSE_FILE = re.compile(r'^close "(?P<path>.*)" bytes read (?P<read>\d+) written (?P<written>\d+)$')
SYSLOG = re.compile(r"^(?P<ts>\S+|\w{3} +\d+ [\d:]+) \S+ (?P<ident>[\w.-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")
IDENTS = ("sshd", "sshd-session", "sftp-server", "internal-sftp")
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server")
SSHDS = ("/usr/sbin/sshd", "/usr/lib/openssh/sshd-session", "/usr/libexec/openssh/sshd-session")
AUTH_LOG = "/var/log/auth.log"
MAX_READ = 2 * 1024 * 1024


def who(match):
    """How a login is named in events, the same as the local runtime's: the student's key or a staff certificate."""
    if match.group("key_id") is not None:
        return f"staff certificate {match.group('key_id')!r}"
    return f"student key {match.group('fp')}"


def sftp_transfer(message, home):
    """{"direction", "path", "bytes"} of an sftp-server `close` line that moved bytes, else None. Pure."""
    m = SFTP_CLOSE_FILE.match(message.rstrip("\r\n"))
    if not m:
        return None
    read, written = int(m.group("read")), int(m.group("written"))
    if not read and not written:
        return None
    path = m.group("path")
    rel = os.path.relpath(path, home) if path.startswith("/") else path
    return {"direction": "upload" if written else "download", "path": (path if rel.startswith("..") else rel)[:300],
            "bytes": written or read}  # fmt: skip


class SshLog:
    """Turns sshd and sftp-server lines, in order, into events; open sessions live in `state` between scans."""

    def __init__(self, state, home, event):
        self.open = state.setdefault("open", {})  # "ip port" -> {who, session, at}
        self.sftp = state.setdefault("sftp", {})  # sftp-server pid -> {who, session}
        self.closed = state.setdefault("closed", {})  # "ip port" -> {who, session} of the latest logouts
        self.home, self.event = home, event

    def line(self, at, pid, message):
        """Events for one log line (at: epoch seconds; pid: the logging process)."""
        m = ACCEPTED.match(message)
        if m:
            session = f"{m.group('port')}-{int(at)}"
            self.open[f"{m.group('ip')} {m.group('port')}"] = {"who": who(m), "session": session, "at": at}
            if len(self.open) > 500:  # a logout we never saw: forget the oldest
                self.open.pop(next(iter(self.open)))
            return [self.event("ssh_login", {"who": who(m), "session": session, "source_ip": m.group("ip")}, at)]
        m = DISCONNECTED.match(message)
        if m:
            known = self.open.pop(f"{m.group('ip')} {m.group('port')}", None) or {}
            if known:  # kept a while: typed commands read in the same scan name their session
                self.closed[f"{m.group('ip')} {m.group('port')}"] = {"who": known["who"], "session": known["session"]}
                while len(self.closed) > 100:
                    self.closed.pop(next(iter(self.closed)))
            seconds = int(at - known["at"]) if "at" in known else None
            details = {"who": known.get("who", "unknown"), "session": known.get("session", m.group("port")),
                       "source_ip": m.group("ip"), "seconds": seconds}  # fmt: skip
            return [self.event("ssh_logout", details, at)]
        m = SFTP_OPENED.match(message)
        if m:  # the newest open login from that address is this SFTP session's
            mine = [s for k, s in self.open.items() if k.split(" ")[0] == m.group("ip")]
            self.sftp[str(pid)] = mine[-1] if mine else {"who": "unknown", "session": ""}
            return []
        if SFTP_CLOSED.match(message):
            self.sftp.pop(str(pid), None)
            return []
        moved = sftp_transfer(message, self.home)
        if moved:
            session = self.sftp.get(str(pid), {"who": "unknown", "session": ""})
            details = {"protocol": "sftp", **moved, "who": session["who"], "session": session["session"]}
            return [self.event("transfer", details, at)]
        return []


def genuine(rec):
    """Whether a journal entry was written by the program its identifier names: journald's own fields (`_UID`,
    `_COMM`, `_EXE`: the sender's credentials, not its words) refuse `logger -t sshd ...` or a script named
    sftp-server run by the student. sshd logs as root; sftp-server and internal-sftp run as the student, so their
    executable must be OpenSSH's own (root's files). Pure."""
    ident = rec.get("SYSLOG_IDENTIFIER")
    if ident in ("sshd", "sshd-session"):
        return rec.get("_UID") == "0"
    if ident == "sftp-server":
        return rec.get("_COMM") == "sftp-server" and rec.get("_EXE") in SFTP_SERVERS
    return ident == "internal-sftp" and rec.get("_EXE") in SSHDS


def journal_entries(cursor, since, run=subprocess.run):
    """(entries [(epoch, pid, message)], new cursor) of sshd's and sftp-server's lines after `cursor`, or, before
    the first one, since epoch second `since` (when collection started: nothing earlier is reported). None when
    journald cannot be read."""
    argv = ["journalctl", "-o", "json", "--no-pager", "-q"] + [a for i in IDENTS for a in ("-t", i)]
    argv += ["--after-cursor", cursor] if cursor else ["--since", f"@{int(since)}"]
    try:
        done = run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode not in (0, 1):
        return None
    entries, last = [], cursor
    for raw in done.stdout.splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        last = rec.get("__CURSOR") or last
        message, pid = rec.get("MESSAGE"), str(rec.get("_PID") or rec.get("SYSLOG_PID") or "")
        if not genuine(rec):
            continue
        if isinstance(message, str) and str(rec.get("__REALTIME_TIMESTAMP", "")).isdigit():
            entries.append((int(rec["__REALTIME_TIMESTAMP"]) / 1e6, pid, message))
    return entries, (last or "")


def syslog_entries(path, state, now):
    """Entries of sshd's and sftp-server's lines in a syslog file (auth.log) after the offset in `state`."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            offset = state.get("offset")
            if offset is None:  # the first read starts at the end, as for journald
                offset = info.st_size
            elif state.get("inode") != info.st_ino or offset > info.st_size:  # rotated or truncated
                offset = 0
            f.seek(offset)
            data = f.read(MAX_READ)
    except OSError:
        return []
    state.update(offset=offset + data.rfind(b"\n") + 1, inode=info.st_ino)
    entries = []
    for raw in data[: data.rfind(b"\n") + 1].decode(errors="replace").splitlines():
        m = SYSLOG.match(raw)
        if not m or m.group("ident") not in IDENTS:
            continue
        try:
            at = datetime.fromisoformat(m.group("ts")).timestamp()
        except ValueError:  # the traditional "Dec  5 16:00:00" has no year or zone: the time of reading
            at = now
        entries.append((at, m.group("pid"), m.group("msg")))
    return entries


def scan_ssh_log(state, home, event, now, run=subprocess.run, auth_log=AUTH_LOG):
    """This scan's login, logout and SFTP transfer events; `state` keeps the journal cursor and open sessions."""
    found = journal_entries(state.get("cursor", ""), state.setdefault("since", now), run)
    if found is not None:
        entries, state["cursor"] = found
    else:
        entries = syslog_entries(auth_log, state.setdefault("auth_log", {}), now)
    log, events = SshLog(state, home, event), []
    for at, pid, message in entries:
        events += log.line(at, pid, message)
    return events
