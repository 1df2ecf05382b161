"""Downloads and archive extractions, for the agent's activity events (stdlib only; runs on EC2 and locally).

Two sources, both read by the agent's scan:
- the tool log (cwc_toolwrap.py): each finished run of curl, wget, unzip or tar with its arguments; the argument
  parsers below find the URL and the file written (a `download` event, with the file's size and SHA-256), or the
  archive and the folder extracted into (an `extract` event, counting the archive's members now present there);
- the file scan: when one scan finds several new files that are members of an archive in the home, under one
  folder, that is an extraction too, whatever did it (Python's zipfile, a script, a program called by full path):
  an `extract` event with "seen": "files".
Downloads by other means (a program called by its full path, Python's urllib, a browser) are not seen (scp: cwc_scp).
"""

import hashlib
import json
import os
import stat
import tarfile
import time
import zipfile

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_toolargs import (
        clean_url,
        curl_downloads,
        events_of,
        tar_extraction,
        unzip_extraction,
        wget_downloads,
    )
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_toolargs import clean_url, curl_downloads, events_of, tar_extraction, unzip_extraction, wget_downloads

TOOL_LOG = "/var/log/cwc/tools.jsonl"  # written by cwc_toolwrap.py (the same path locally and on EC2)
MAX_LOG_READ = 1024 * 1024  # tool-log bytes read per scan (the rest waits for the next one)
MAX_LIST_BYTES = 512 * 1024 * 1024  # archives listed for member names
MAX_MEMBERS = 20000
MAX_HASH_BYTES = 1024 * 1024 * 1024
MAX_ARCHIVES = 20  # archives looked at per scan for the file-based detection
PATHS_SHOWN = 50
MAX_TEXT = 300  # characters of a path or URL in an event
MAX_DETAILS = 6000  # bytes of an event's details (the tool refuses over 8192)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def _member(name):
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def inside(home, path):
    """Whether `path` (symlinks resolved) is in the home: the agent reads nothing else for these events."""
    real = os.path.realpath(home)
    return path is not None and os.path.realpath(path).startswith(real + os.sep)


def _open_owned(path, home):
    """A read descriptor and its stat for a regular file in the home owned by the home's owner, else None.

    The tool log is the student's to write, so a record may name any path: on EC2 (the agent is root) only a
    file the student owns, reached without a symlink at its end, is read (nothing the student could not read).
    """
    if not inside(home, path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.stat(home).st_uid:
        os.close(fd)
        return None
    return fd, info


def _names(f):
    if zipfile.is_zipfile(f):
        return "zip", [i.filename for i in zipfile.ZipFile(f).infolist()[:MAX_MEMBERS] if not i.is_dir()]
    f.seek(0)
    names = []
    with tarfile.open(fileobj=f, mode="r:*") as tar:
        for member in tar:
            if member.isfile():
                names.append(member.name)
            if len(names) >= MAX_MEMBERS:
                break
    return "tar", names


def archive_members(path, home):
    """("zip" or "tar", regular-file member names) of an archive in the home (never extracted), or None."""
    opened = _open_owned(path, home)
    if opened is None or opened[1].st_size > MAX_LIST_BYTES:
        if opened:
            os.close(opened[0])
        return None
    try:
        with os.fdopen(opened[0], "rb") as f:
            kind, names = _names(f)
        return kind, [m for m in (_member(n) for n in names) if m]
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, ValueError):
        return None


def file_digest(path, home):
    """(bytes, sha256) of a file in the home (no hash above MAX_HASH_BYTES), or (None, None)."""
    opened = _open_owned(path, home)
    if opened is None:
        return None, None
    fd, info = opened
    if info.st_size > MAX_HASH_BYTES:
        os.close(fd)
        return info.st_size, None
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None, None
    return info.st_size, digest.hexdigest()


def shown(path, home):
    """A path as events show it: relative to the home when inside it."""
    if path is None:
        return None
    rel = os.path.relpath(path, home)
    return path if rel.startswith("..") else rel


def arm_log(on, log):
    """An append-only log that exists only while `on` (the student may append, not read it): made when on,
    removed when off. What the wrappers and the typed-command hook write to only while it exists."""
    if not on:
        if os.path.lexists(log):
            os.unlink(log)
        return
    os.makedirs(os.path.dirname(log), mode=0o755, exist_ok=True)
    if not os.path.exists(log):
        fd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o622)
        os.fchmod(fd, 0o622)
        os.close(fd)


def read_jsonl(log, state):
    """New JSON-object lines of an append-only log since state {"offset", "inode"} (updated); a replaced log
    starts over; a line still being written waits; a line that is not a JSON object is skipped."""
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        offset = state.get("offset", 0) if state.get("inode") == info.st_ino else 0
        if offset > info.st_size:
            offset = 0
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, MAX_LOG_READ)
    finally:
        os.close(fd)
    complete = data[: data.rfind(b"\n") + 1]
    state.update(offset=offset + len(complete), inode=info.st_ino)
    records = []
    for line in complete.splitlines():
        try:
            rec = json.loads(line.decode("utf-8", errors="replace"))
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def read_tool_log(log, state):
    """New records of the tool log since state {"offset", "inode"} (updated); a replaced log starts over."""
    tools = ("curl", "wget", "unzip", "tar", "scp")  # cwc_toolwrap.TOOLS
    return [r for r in read_jsonl(log, state) if isinstance(r.get("argv"), list) and r.get("tool") in tools]


def _fit(details):
    """Details the tool accepts whatever a record said (its limit is 8 KB an event, and one refused event would
    hold the whole spool back): texts cut to MAX_TEXT, the path list shortened to fit."""
    for key, value in details.items():
        if isinstance(value, str):
            details[key] = value[:MAX_TEXT]
    if "paths" in details:
        details["paths"] = [p[:MAX_TEXT] for p in details["paths"]]
        while details["paths"] and len(json.dumps(details)) > MAX_DETAILS:
            details["paths"].pop()
    return details


def _when(value, default):
    """Epoch seconds from a record (the student can write anything there), else `default`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 2**33
    return value if ok else default


def _written(path, start, home):
    """The file a run wrote: `path`, or wget's `path.N` when the name was taken (changed since the run began)."""
    if not inside(home, path):
        return path
    for candidate in [path] + [f"{path}.{n}" for n in range(1, 10)]:
        try:
            if os.lstat(candidate).st_ctime >= start - 2:
                return candidate
        except OSError:
            continue
    return path


def _extraction(tool, archive, dest, home, created, status, event, at):
    listed = archive_members(archive, home) if archive else None
    if listed and inside(home, os.path.join(dest, "x")):
        paths = (os.path.join(dest, m) for m in listed[1])
        present = sorted(p for p in paths if inside(home, p) and os.path.isfile(p))  # a "../" member: not looked at
    else:  # the archive is gone or came on standard input: the files this scan saw appear under the folder
        prefix = "" if shown(dest, home) == "." else shown(dest, home) + "/"
        present = [os.path.join(home, f) for f in sorted(created) if f.startswith(prefix)]
    details = {"tool": tool, "archive": shown(archive, home) or "-", "dest": shown(dest, home),
               "files": len(present), "paths": [shown(p, home) for p in present[:PATHS_SHOWN]], "exit": status,
               "seen": "command"}  # fmt: skip
    return event("extract", _fit(details), at)


def tool_events(records, home, created, event):
    """`download` and `extract` events of finished curl, wget, unzip and tar runs."""
    others = [r for r in records if r.get("tool") != "scp"]  # scp: cwc_scp, on EC2 only
    return events_of(others, lambda rec: _run_events(rec, home, created, event))


def _run_events(rec, home, created, event):
    tool, args = rec["tool"], [str(a) for a in rec["argv"]]
    cwd, status = str(rec.get("cwd") or home), rec.get("exit") if isinstance(rec.get("exit"), int) else None
    start = _when(rec.get("start"), 0)
    at = _when(rec.get("end"), start or time.time())
    if tool in ("curl", "wget"):
        events = []
        for url, path in (curl_downloads if tool == "curl" else wget_downloads)(args, cwd):
            path = _written(path, start, home) if path else None
            size, sha = file_digest(path, home) if path else (None, None)
            details = {"tool": tool, "url": clean_url(url), "path": shown(path, home) if path else "(stdout)",
                       "bytes": size, "sha256": sha, "exit": status}  # fmt: skip
            events.append(event("download", _fit(details), at))
        return events
    found = (tar_extraction if tool == "tar" else unzip_extraction)(args, cwd)
    return [_extraction(tool, found[0], found[1], home, created, status, event, at)] if found else []


def file_extractions(home, created, archives, event, now):
    """`extract` events for new files of one scan that are members of an archive in the home, under one folder.

    `created`: paths (relative to the home) new in this scan and not explained by a recorded run; `archives`:
    archive paths in the home. A folder counts when it holds at least two of the archive's members (or the only
    one); a file is given to one archive only, the one that explains most files.
    """
    if len(created) < 2:
        return []
    candidates = []
    for archive in sorted(archives)[:MAX_ARCHIVES]:
        listed = archive_members(os.path.join(home, archive), home)
        if not listed or not listed[1]:
            continue
        members, found = set(listed[1]), {}
        for path in created:
            parts = path.split("/")
            for i in range(len(parts)):
                if "/".join(parts[i:]) in members:
                    found.setdefault("/".join(parts[:i]) or ".", set()).add(path)
                    break
        candidates += [(len(paths), archive, listed[0], len(members), dest, paths) for dest, paths in found.items()]
    events, taken = [], set()
    for _, archive, kind, size, dest, paths in sorted(candidates, key=lambda c: (-c[0], c[1], c[4])):
        paths = sorted(paths - taken)
        if len(paths) >= 2 or (size == 1 and paths):
            taken.update(paths)
            details = {"tool": "unzip" if kind == "zip" else "tar", "archive": archive, "dest": dest,
                       "files": len(paths), "paths": paths[:PATHS_SHOWN], "seen": "files"}  # fmt: skip
            events.append(event("extract", _fit(details), now))
    return events


def scan_transfers(home, state, file_events, files_state, now, event, log=TOOL_LOG, first_scan=False, scp=lambda _: []):
    """This scan's downloads and extractions: from the tool log (state["tool_log"] keeps the place), and from
    the new files the file scan found (`file_events`; not on the first scan, when every file is new). `scp` (EC2):
    scp records -> their `transfer` events (the local runtime reports scp sessions itself)."""
    created = {e["details"]["path"] for e in file_events if e["kind"] == "file_changed" and e["details"].get("created")}
    records = read_tool_log(log, state.setdefault("tool_log", {}))
    events = tool_events(records, home, created, event) + (scp([r for r in records if r["tool"] == "scp"]) or [])
    if not first_scan:
        folders = {e["details"]["dest"] for e in events if e["kind"] == "extract"}
        unexplained = {p for p in created if not any(f == "." or p.startswith(f + "/") for f in folders)}
        archives = [p for p in files_state if p.lower().endswith(ARCHIVE_SUFFIXES)]
        events += file_extractions(home, unexplained, archives, event, now)
    return events
