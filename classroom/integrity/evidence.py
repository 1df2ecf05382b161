"""Pure: one student's evidence for an assignment from their workspace activity events.

Sessions pair an SSH login with its logout (by the runtime's or agent's session id); work time is the union of
session intervals; files, commits, transfers (scp/SFTP, downloads, archive extraction) and, when the course
records them, commands typed come from their events. Every item keeps the audit hash of the event it cites.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

TRANSFER_KINDS = frozenset({"transfer", "download", "extract"})
LOGINS, LOGOUTS = frozenset({"ssh_login", "login"}), frozenset({"ssh_logout", "logout"})  # runtime's and EC2's
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Event:
    """One stored activity event with the hash of its record in the audit chain ("" when not chained)."""

    id: int
    kind: str
    at: datetime
    details: dict[str, Any]
    hash: str = ""


@dataclass(frozen=True)
class WorkSession:
    """An SSH session: start, end (None: no logout seen), origin and whether it is inside the campus ranges."""

    start: datetime
    end: datetime | None
    source_ip: str
    on_campus: bool | None  # None: the course set no campus ranges
    hashes: tuple[str, ...]
    session: str = ""  # the runtime's or agent's session id (typed commands name it)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds()) if self.end else 0


@dataclass(frozen=True)
class FileWork:
    """A file changed in the time frame: how many times, lines added and removed in total."""

    path: str
    changes: int
    lines_added: int
    lines_removed: int


@dataclass
class Evidence:
    """What one student's events say for the time frame."""

    sessions: list[WorkSession] = field(default_factory=list)
    files: list[FileWork] = field(default_factory=list)
    commits: list[Event] = field(default_factory=list)
    transfers: list[Event] = field(default_factory=list)
    commands: list[Event] = field(default_factory=list)
    late_edits: list[Event] = field(default_factory=list)  # changes in the assignment folder after the due time

    @property
    def work_seconds(self) -> int:
        return union_seconds([(s.start, s.end) for s in self.sessions if s.end])

    def commands_in(self, session: WorkSession) -> list[Event]:
        """The commands typed in this session."""
        return [c for c in self.commands if session.session and c.details.get("session") == session.session]

    @property
    def loose_commands(self) -> list[Event]:
        """Commands whose session is not among the sessions (it began before the time frame, or is unknown)."""
        known = {s.session for s in self.sessions if s.session}
        return [c for c in self.commands if c.details.get("session") not in known]

    @property
    def hashes(self) -> list[str]:
        """The audit hashes of every event this evidence cites."""
        out = [h for s in self.sessions for h in s.hashes]
        out += [e.hash for e in (*self.commits, *self.transfers, *self.commands, *self.late_edits)]
        return [h for h in out if h]


def parse_ranges(ranges: Iterable[str]) -> list[Network]:
    """Campus CIDRs; ValueError naming the first bad one."""
    out = []
    for raw in ranges:
        try:
            out.append(ipaddress.ip_network(raw.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{raw!r} is not an address range such as 128.12.0.0/16") from exc
    return out


def on_campus(ip: str, campus: Sequence[Network]) -> bool | None:
    """Whether the address is in one of the ranges (None without ranges; False for an unreadable address)."""
    if not campus:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in campus if net.version == addr.version)


def union_seconds(intervals: Iterable[tuple[datetime, datetime | None]]) -> int:
    """Seconds covered by the intervals (overlapping sessions count once)."""
    total, end_so_far = timedelta(0), None
    for start, end in sorted((s, e) for s, e in intervals if e is not None and e > s):
        if end_so_far is None or start >= end_so_far:
            total += end - start
            end_so_far = end
        elif end > end_so_far:
            total += end - end_so_far
            end_so_far = end
    return int(total.total_seconds())


def build_evidence(
    events: Sequence[Event],
    campus: Sequence[Network],
    *,
    record_commands: bool,
    folder: str = "",
    due_at: datetime | None = None,
) -> Evidence:
    """The evidence in these events (already limited to the student and time frame)."""
    ev = Evidence()
    logins: dict[str, Event] = {}
    files: dict[str, list[int]] = {}
    for e in sorted(events, key=lambda x: (x.at, x.id)):
        d = e.details
        if e.kind in LOGINS:
            logins[str(d.get("session") or e.id)] = e
        elif e.kind in LOGOUTS:
            start = logins.pop(str(d.get("session") or ""), None)
            if start is not None:
                ev.sessions.append(_session(start, e, campus))
        elif e.kind == "file_changed":
            path = str(d.get("path", ""))
            f = files.setdefault(path, [0, 0, 0])
            f[0], f[1], f[2] = f[0] + 1, f[1] + int(d.get("lines_added") or 0), f[2] + int(d.get("lines_removed") or 0)
            if due_at and folder and e.at > due_at and path.startswith(folder.rstrip("/") + "/"):
                ev.late_edits.append(e)
        elif e.kind == "git_commit":
            ev.commits.append(e)
        elif e.kind in TRANSFER_KINDS:
            ev.transfers.append(e)
        elif e.kind == "command" and record_commands:
            ev.commands.append(e)
    ev.sessions += [_session(e, None, campus) for e in logins.values()]
    ev.sessions.sort(key=lambda s: s.start)
    ev.files = [FileWork(p, c, a, r) for p, (c, a, r) in sorted(files.items())]
    return ev


def _session(login: Event, logout: Event | None, campus: Sequence[Network]) -> WorkSession:
    ip = str(login.details.get("source_ip", ""))
    hashes = (login.hash, logout.hash) if logout else (login.hash,)
    session = str(login.details.get("session") or "")
    return WorkSession(login.at, logout.at if logout else None, ip, on_campus(ip, campus), hashes, session)


def describe_transfer(e: Event) -> str:
    """A transfer as a command-like line for the report (what was seen, never file contents)."""
    d = e.details
    if e.kind == "download":
        return f"{d.get('tool', 'download')} {d.get('url', '')} -> {d.get('path', '')}".strip()
    if e.kind == "extract":
        return f"{d.get('tool', 'extract')} {d.get('archive', '')} ({d.get('files', '?')} files)".strip()
    proto, direction = d.get("protocol", "transfer"), d.get("direction", "")
    into = "into the workspace" if direction == "upload" else "out of the workspace" if direction == "download" else ""
    return f"{proto} {d.get('path', '')} {into}".strip()


def inbound(e: Event) -> bool:
    """Whether a transfer brought files in from outside the workspace."""
    if e.kind == "download":
        return True
    if e.kind != "transfer":
        return False  # an extraction works on what is already there
    return e.details.get("direction") in ("upload", None) or e.details.get("protocol") == "sftp"
