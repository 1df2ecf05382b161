#!/usr/bin/env python3
"""Cloud Workstation agent: report activity every minute, keep authorized_keys in sync, hold the lease.

Runs as root (a systemd unit); the student's login user has no sudo. Stdlib only.
Config in /etc/cwc-agent.json: {"url", "token", "workspace_id", "user", "home", "boot_grace_s"}, and for a restored
student {"restore": {"url", "sha256"}}: the archived home, brought back and reported once (restore_once).

The lease: at start the agent schedules a poweroff (boot_grace_s after boot, or the lease it already held in
this boot), and again after a resume from hibernation (LeaseKeeper.wake; the user data's sleep hook cancels the
scheduled poweroff before sleeping and schedules the boot grace after); each heartbeat answer carrying
lease_until moves it there; an answer saying stop powers off at once; no answer (the tool is down) changes
nothing, so the instance powers off when the lease runs out. A refused token
(revoked at term end) wipes the student's authorized_keys. The poweroff is injectable (tests and the simulated
account use the same LeaseKeeper with a recorded or cloud-side poweroff).

Longer than 300 lines because it is installed on each instance as one stdlib-only file (provisioning/userdata.py
embeds it in the user data), so it cannot import helpers of its own.
"""

import base64
import hashlib
import json
import math
import os
import stat
import subprocess
import time

CONFIG = "/etc/cwc-agent.json"
STAMP = "/var/lib/cwc-agent/last-scan"
LEASE_STATE = "/var/lib/cwc-agent/lease.json"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
DEFAULT_BOOT_GRACE_S = 900
RESUMED = "/run/cwc-agent/resumed"  # written by the systemd sleep hook after a resume (provisioning/userdata.py)
RESUME_SLACK_S = 120  # the wall clock ahead of the monotonic one by more than this between two loop turns: a resume
KEYS_HEADER = "# managed by Cloud Workstation: revoked keys are removed within a minute\n"
MOTD = "/etc/motd.d/cwc-messages"  # pam_motd shows /etc/motd.d/* at each SSH login (Ubuntu)
BANNER_PATH = "/etc/ssh/cwc_banner"  # sshd's Banner (read at each connection), written by the user data first
# What is recorded about a workspace: the one list behind the SSH login banner of every workspace (the local
# runtime's and EC2's, both from login_banner) and the tool's "What is recorded" page, whose items carry the same
# keys (templates/workspaces/recorded.html). (key, the banner's words.)
RECORDED_ALWAYS = (
    ("usage", "whether the workspace is in use, each minute (SSH sessions, Jupyter, CPU, files changed)"),
    ("audit", "starts, stops and every action staff take on it"),
    ("ssh_log", "each SSH login in the SSH server's log (which key or staff certificate, from which address)"),
)
RECORDED_ACTIVITY = (
    ("sessions", "SSH logins and logouts (who, from where, how long)"),
    ("files", "file changes in your home (path, size, lines, hash; never the content)"),
    ("git", "git commits"),
    ("transfers", "SFTP and scp transfers (path, direction, and size where the protocol shows it)"),
    ("downloads", "curl and wget downloads"),
    ("archives", "archive extractions"),
    ("jupyter", "whether Jupyter runs"),
    ("commands", "the commands you type in a terminal"),
    ("snapshots", "a copy of each assignment's folder at its due time"),
)


def recorded_items(collects, records_commands):
    """The keys of what is recorded under a course's integrity settings, in the page's order: always, then the
    activity (typed commands only where the course also records them). Pure."""
    keys = [key for key, _ in RECORDED_ALWAYS]
    if collects:
        keys += [key for key, _ in RECORDED_ACTIVITY if key != "commands" or records_commands]
    return keys


def login_banner(collects, records_commands):
    """The SSH login banner for a course's integrity settings (collects activity, records typed commands): the
    same text on the local runtime and on EC2. Pure."""
    import textwrap

    words = dict(RECORDED_ALWAYS + RECORDED_ACTIVITY)
    always = "; ".join(words[key] for key, _ in RECORDED_ALWAYS)
    activity = "; ".join(words[key] for key in recorded_items(collects, records_commands)[len(RECORDED_ALWAYS) :])
    text = "Cloud Workstation workspace. Recorded about it: " + always + ". "
    if collects:
        text += "Your course collects activity, so also: " + activity + ". "
    else:
        text += "Your course does not collect activity: nothing else is recorded. "
    text += 'See "What is recorded" in the tool.'
    return "\n".join(textwrap.wrap(text, 100, break_on_hyphens=False)) + "\n"


def cpu_sample():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return idle, sum(fields)


def cpu_percent(interval=1.0):
    idle1, total1 = cpu_sample()
    time.sleep(interval)
    idle2, total2 = cpu_sample()
    busy = (total2 - total1) - (idle2 - idle1)
    return round(100.0 * busy / max(1, total2 - total1), 2)


def mem_percent():
    """Memory in use (MemTotal - MemAvailable), in % (None where /proc/meminfo says nothing)."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f if len(line.split()) > 1}
        return round(100.0 * (info["MemTotal"] - info["MemAvailable"]) / max(1, info["MemTotal"]), 2)
    except (OSError, KeyError, ValueError):
        return None


def disk_percent(home):
    """The home's file system in use, in %."""
    try:
        st = os.statvfs(home)
    except OSError:
        return None
    return round(100.0 * (st.f_blocks - st.f_bavail) / max(1, st.f_blocks), 2)


def ssh_sessions():
    out = subprocess.run(["who"], capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def jupyter_active():
    out = subprocess.run(["pgrep", "-f", "jupyter"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


def changed_files(home):
    os.makedirs(os.path.dirname(STAMP), exist_ok=True)
    since = os.path.getmtime(STAMP) if os.path.exists(STAMP) else 0
    count = 0
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            try:
                if os.path.getmtime(os.path.join(root, name)) > since:
                    count += 1
            except OSError:
                pass
    with open(STAMP, "w"):
        pass
    return count


def write_authorized_keys(home, user, keys):
    """Replace the student's authorized_keys atomically (an empty list leaves only the header)."""
    ssh = os.path.join(home, ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    path = os.path.join(ssh, "authorized_keys")
    with open(path + ".tmp", "w") as f:
        f.write(KEYS_HEADER)
        f.write("".join(k.strip() + "\n" for k in keys))
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)
    subprocess.run(["chown", "-R", f"{user}:{user}", ssh], check=False)


def end_user_sessions(user, run=subprocess.run):
    """End every session and process of the student (SSH logins, Jupyter): the final archive comes after them."""
    run(["loginctl", "terminate-user", user], check=False, capture_output=True)
    run(["pkill", "-KILL", "-u", user], check=False, capture_output=True)


def write_banner(path=BANNER_PATH, collects=False, records_commands=False):
    """sshd's Banner: only what the course's settings record (the same for every workspace of the course).
    sshd sends it before authentication to anyone reaching port 22, so nothing about the student goes in it (the
    term-end notice with their spend is shown after login: after_login_text). Atomic, and only when it changes."""
    text = login_banner(collects, records_commands)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)
    return True


def make_folders(home, user, folders):
    """Create the assignment folders the tool lists (relative to the home; never outside it)."""
    for folder in folders:
        path = os.path.realpath(os.path.join(home, folder))
        if not path.startswith(os.path.realpath(home) + os.sep) or os.path.isdir(path):
            continue
        os.makedirs(path, mode=0o755, exist_ok=True)
        subprocess.run(["chown", "-R", f"{user}:{user}", path], check=False)


def after_login_text(notice, messages):
    """What pam_motd shows the student after an SSH login: the tool's term-end notice (their spend, what happens
    to their files), then their unread staff messages; "" when there is neither. Pure."""
    parts = [text.strip("\n") for text in (notice, messages) if isinstance(text, str) and text.strip()]
    return "\n\n".join(parts) + "\n" if parts else ""


def write_motd(path, text):
    """Show `text` (after_login_text) at the next SSH login; none: remove the file (atomically)."""
    if not text:
        if os.path.exists(path):
            os.unlink(path)
        return
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)


class SystemPoweroff:
    """The real poweroff: systemd's scheduled shutdown, owned by root (a student cannot cancel or move it)."""

    def schedule(self, at):
        """Power off at epoch second `at` (minute resolution, rounded down: never later than the lease)."""
        minutes = max(0, math.floor((at - time.time()) / 60))
        subprocess.run(["shutdown", "-P", f"+{minutes}", "cwc: workspace lease"], check=False)

    def now(self, reason):
        """Power off at once (the instance stops: InstanceInitiatedShutdownBehavior=stop)."""
        print("cwc-agent: powering off:", reason, flush=True)
        subprocess.run(["shutdown", "-P", "now", "cwc: " + reason], check=False)


class LeaseKeeper:
    """The lease rule, shared by this agent and the simulated account's played agents."""

    def __init__(self, poweroff, boot_grace_s=DEFAULT_BOOT_GRACE_S, state_path=None, boot_id=""):
        self.poweroff = poweroff
        self.boot_grace_s = boot_grace_s
        self.state_path = state_path
        self.boot_id = boot_id
        self.lease_until = None
        self.stopped = False
        self._turn = None  # (wall, monotonic) at the last wake

    def boot(self, now):
        """Schedule the first poweroff: the lease already held in this boot, else boot_grace_s from now."""
        held = self._load()
        until = held["lease_until"] if held and held.get("boot_id") == self.boot_id else now + self.boot_grace_s
        self._hold(float(until))

    def wake(self, now, mono, marker=False):
        """At the top of each loop turn: after a resume from hibernation (the sleep hook's marker, or the wall
        clock jumped ahead of CLOCK_MONOTONIC, which stands still while Linux sleeps) the lease's end has passed
        while nothing ran; hold boot_grace_s from now, as at a boot, so the tool's next answer renews or stops
        (never an older lease kept: it must be re-earned). Returns whether it was a resume."""
        last, self._turn = self._turn, (now, mono)
        jumped = last is not None and (now - last[0]) - (mono - last[1]) > RESUME_SLACK_S
        if self.stopped or not (marker or jumped):
            return False
        self._hold(now + self.boot_grace_s)
        return True

    def answer(self, answer, now):
        """Apply a heartbeat answer: stop at once, or hold the lease it carries. Returns what was done."""
        if answer.get("stop") is True:
            self.power_off(str(answer.get("reason") or "the tool says stop"))
            return "stop"
        until = answer.get("lease_until_epoch")
        if isinstance(until, (int, float)) and not isinstance(until, bool) and math.isfinite(until):
            self._hold(float(until))
            return "renewed"
        return "kept"

    def check(self, now):
        """Power off when the lease has run out (the scheduled poweroff does too; this is the second guard)."""
        if self.lease_until is not None and now >= self.lease_until and not self.stopped:
            self.power_off("lease expired")
            return True
        return False

    def power_off(self, reason):
        self.stopped = True
        self.poweroff.now(reason)

    def _hold(self, until):
        self.lease_until = until
        self.poweroff.schedule(until)
        if self.state_path:
            with open(self.state_path + ".tmp", "w") as f:
                json.dump({"boot_id": self.boot_id, "lease_until": until}, f)
            os.replace(self.state_path + ".tmp", self.state_path)

    def _load(self):
        if not self.state_path or not os.path.exists(self.state_path):
            return None
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


def post_json(url, body, token, timeout=15):
    """POST JSON with the agent's bearer token; return (status, parsed answer or {})."""
    import urllib.error  # here, not at the top: the activity scan (a process per scan) needs no HTTP (~3 MB)
    import urllib.request

    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def activity(cfg):
    """This minute's activity report."""
    return {
        "workspace_id": cfg["workspace_id"],
        "ssh_sessions": ssh_sessions(),
        "jupyter_active": jupyter_active(),
        "cpu_pct": cpu_percent(),
        "mem_pct": mem_percent(),
        "disk_pct": disk_percent(cfg["home"]),
        "changed_files": changed_files(cfg["home"]),
        "host_keys": host_keys(),
    }


def host_keys(folder="/etc/ssh"):
    """The instance's SSH host public keys ("type base64"), which the tool pins at their first report to reach
    this workspace over SSH (files, export, backup, the browser terminal)."""
    keys = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return keys
    for name in names:
        if name.startswith("ssh_host_") and name.endswith("_key.pub"):
            try:
                with open(os.path.join(folder, name)) as f:
                    parts = f.read().split()
            except (OSError, UnicodeDecodeError):
                continue
            if len(parts) >= 2 and parts[0] != "ssh-dss":  # DSA: not accepted by the tool (or by OpenSSH 9)
                keys.append(parts[0] + " " + parts[1])
    return keys[:8]


def archive_home(cfg, request):
    """The retire flow's archive: tar.gz the student's home, upload it to the presigned URL, and return the report
    for the next heartbeat ({key, sha256, bytes}), or None (bad request, too big, or the upload failed)."""
    import hashlib
    import tarfile
    import tempfile

    url, key, limit = request.get("put_url"), request.get("key"), request.get("max_bytes")
    if not (isinstance(url, str) and isinstance(key, str) and isinstance(limit, int)):
        return None
    home = os.path.realpath(cfg["home"])
    fd, path = tempfile.mkstemp(prefix="cwc-home-", suffix=".tar.gz", dir=cfg.get("archive_tmp", "/var/tmp"))
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(home, arcname=os.path.basename(home))  # symlinks stored as links, never followed
        digest, size = hashlib.sha256(), os.path.getsize(path)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if size > limit:
            return None
        import urllib.request

        with open(path, "rb") as f:
            headers = {"Content-Length": str(size), "Content-Type": "application/gzip"}  # the type is signed
            put = urllib.request.Request(url, data=f, method="PUT", headers=headers)
            with urllib.request.urlopen(put, timeout=3600) as resp:
                if resp.status not in (200, 204):
                    return None
        return {"key": key, "sha256": digest.hexdigest(), "bytes": size}
    except OSError:  # urllib's URLError and HTTPError are OSErrors
        return None
    finally:
        os.unlink(path)


# A restored student's home (the tool's "Restore a student"): the user data puts {"url": a presigned S3 GET,
# "sha256"} in the config; at its first start the agent fetches the archive, checks it and unpacks it as the student,
# keeps the outcome in RESTORE_STATE (so a restart never restores twice) and reports it in each heartbeat until the
# tool answers restore_recorded.
RESTORE_STATE = "/var/lib/cwc-agent/restore.json"
RESTORE_MAX = 5 * 1024**3  # an archive is one S3 PUT at most (archive_home's limit)


def restore_tar_argv(archive, home):
    """GNU tar unpacking the agent's archive (`<user>/...`) into the home: no owners, no modes, no .ssh (the
    student's keys come from the tool); GNU tar refuses `..` and absolute names."""
    options = ["--strip-components=1", "--no-same-owner", "--no-same-permissions", "--exclude=.ssh"]
    return ["tar", "-xzf", archive, "-C", home, *options]


def untar_as(user):
    """Unpack as the student (runuser, as root can): it can write nothing the student could not. (ok, error)."""
    import pwd

    def run(archive, home):
        entry = pwd.getpwnam(user)
        os.chown(archive, entry.pw_uid, entry.pw_gid)
        argv = ["runuser", "-u", user, "--", *restore_tar_argv(archive, home)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
        return done.returncode == 0, done.stderr.strip()[-300:]

    return run


def restore_home(cfg, request, extract, opener=None):
    """Fetch the archive by its presigned GET, check its SHA-256, unpack it into the home; returns the outcome the
    heartbeat reports: {"bytes": downloaded, "sha256_ok", "extracted", "error": "" or why it failed}."""
    import tempfile

    if opener is None:
        from urllib.request import urlopen as opener

    url, want = request.get("url"), request.get("sha256")
    outcome = {"bytes": 0, "sha256_ok": False, "extracted": False, "error": ""}
    if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        outcome["error"] = "no download link in the restore request"
        return outcome
    fd, path = tempfile.mkstemp(prefix="cwc-restore-", suffix=".tar.gz", dir=cfg.get("archive_tmp", "/var/tmp"))
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, opener(url, timeout=600) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                outcome["bytes"] += len(chunk)
                if outcome["bytes"] > RESTORE_MAX:
                    outcome["error"] = "the archive is larger than 5 GiB"
                    return outcome
                digest.update(chunk)
                out.write(chunk)
        outcome["sha256_ok"] = digest.hexdigest() == want
        if not outcome["sha256_ok"]:
            outcome["error"] = "the download does not match the archive's SHA-256"
            return outcome
        outcome["extracted"], error = extract(path, cfg["home"])
        if not outcome["extracted"]:
            outcome["error"] = ("tar failed: " + error)[:300]
    except (OSError, ValueError) as exc:  # urllib's URLError and HTTPError are OSErrors
        outcome["error"] = ("download failed: " + str(exc))[:300]
    finally:
        os.unlink(path)
    return outcome


def restore_once(cfg, extract=None, opener=None):
    """At the agent's start: the restore the config asks for, done once per workspace (its outcome kept in
    cfg["restore_state"], by default RESTORE_STATE); returns the outcome still to report (None: no restore, or the
    tool has recorded it)."""
    state_path = cfg.get("restore_state", RESTORE_STATE)
    request = cfg.get("restore")
    if not isinstance(request, dict):
        return None
    try:
        with open(state_path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        outcome = restore_home(cfg, request, extract or untar_as(cfg["user"]), opener)
        state = {"outcome": outcome, "reported": False}
        with open(state_path + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(state_path + ".tmp", state_path)
    return None if state.get("reported") else state.get("outcome")


def restore_reported(state_path=RESTORE_STATE):
    """The tool recorded the outcome: never report it again (this boot or the next)."""
    try:
        with open(state_path) as f:
            state = json.load(f)
        state["reported"] = True
        with open(state_path + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(state_path + ".tmp", state_path)
    except (OSError, ValueError):
        pass


def heartbeat(
    cfg,
    keeper,
    body,
    now,
    post=post_json,
    write_keys=write_authorized_keys,
    make_dirs=make_folders,
    seen=None,
    archive=archive_home,
    write_login_banner=None,
    end_sessions=None,
):
    """Send one report and act on the answer; returns what happened.

    200: install the keys (and, when locked out for the final archive, end the student's sessions), then archive
    if asked, then stop or hold the lease. 401/403 (token refused, e.g. revoked at term end): wipe
    the student's keys. Anything else, or no answer: keep the lease as it is (it runs out by itself).
    """
    if cfg.get("_archived"):  # the home's archive uploaded after the last answer: report it once
        body = dict(body, archived=cfg["_archived"])
    if cfg.get("_restore"):  # the first boot's restore: reported until the tool says it recorded it
        body = dict(body, restore=cfg["_restore"])
    try:
        status, answer = post(cfg["url"], body, cfg["token"])
    except (OSError, ValueError) as exc:  # the tool is down or answered garbage: the lease stands
        return "no answer: " + type(exc).__name__
    if status in (401, 403):
        write_keys(cfg["home"], cfg["user"], [])
        return "refused: keys wiped"
    if status != 200 or not isinstance(answer, dict):
        return f"answer {status}: lease kept"
    if seen is not None:  # the caller keeps the answer (whether the course collects activity)
        seen.update(answer)
    if isinstance(answer.get("authorized_keys"), list):
        write_keys(cfg["home"], cfg["user"], [str(k) for k in answer["authorized_keys"]])
    if answer.get("end_sessions") is True and end_sessions is not None:  # the lockout, before any archive
        end_sessions(cfg["user"])
    if isinstance(answer.get("folders"), list):
        make_dirs(cfg["home"], cfg["user"], [str(f) for f in answer["folders"]])
    if isinstance(answer.get("motd"), str) or isinstance(answer.get("banner"), str):  # shown after login only
        write_motd(cfg.get("motd", MOTD), after_login_text(answer.get("banner"), answer.get("motd")))
    if write_login_banner is not None:  # what is recorded, as the course's settings say now (never the notice)
        collects = answer.get("collect_activity") is True
        write_login_banner(collects=collects, records_commands=answer.get("record_commands") is True)
    cfg.pop("_archived", None)  # reported (the tool asks again if it did not take it)
    if cfg.get("_restore") and answer.get("restore_recorded") is True:
        restore_reported(cfg.get("restore_state", RESTORE_STATE))
        cfg.pop("_restore")
    if isinstance(answer.get("archive"), dict):  # before any stop: the archive comes first
        cfg["_archived"] = archive(cfg, answer["archive"])
    return keeper.answer(answer, now)


# Activity events (collected only when the course's integrity setting asks for them; see the tool's
# "What is recorded" page). Each event has an idempotent id (a hash of what was observed), is spooled on disk
# (bounded: the oldest go first) and sent in batches with the workspace's token; a 2xx answer clears the batch.
SPOOL = "/var/lib/cwc-agent/activity.jsonl"
SCAN_STATE = "/var/lib/cwc-agent/scan.json"
SPOOL_MAX = 5000
MIN_EVENT_BYTES = 64  # no spooled event line is shorter (its id alone is 32 characters)
BATCH = 200
MAX_HASHED_BYTES = 20 * 1024 * 1024


def event(kind, details, at):
    """One activity event; its id is a hash of what was seen, so a re-sent or re-seen event is one event."""
    canonical = json.dumps([kind, int(at), details], sort_keys=True, separators=(",", ":"))
    return {"id": hashlib.sha256(canonical.encode()).hexdigest()[:32], "kind": kind, "at": int(at), "details": details}


class Spool:
    """Events waiting for the tool, one JSON line each, at most SPOOL_MAX (the oldest are dropped first)."""

    def __init__(self, path=SPOOL, limit=SPOOL_MAX):
        self.path, self.limit = path, limit

    def read(self):
        try:
            with open(self.path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return []

    def _write(self, events):
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            f.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in events[-self.limit :]))
        os.replace(self.path + ".tmp", self.path)

    def add(self, events):
        """Append events (one write, no rewrite: the runtime notes logins on its event loop); past the bound, the
        oldest are dropped."""
        if not events:
            return
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
        if os.path.getsize(self.path) > self.limit * MIN_EVENT_BYTES:  # perhaps over the bound: count and trim
            kept = self.read()
            if len(kept) > self.limit:
                self._write(kept)

    def flush(self, url, token, workspace_id, post=None):
        """Send the spool in batches; stop at the first failure (kept for the next try). Returns events sent."""
        post = post or post_json
        sent = 0
        while True:
            events = self.read()
            if not events:
                return sent
            batch = events[:BATCH]
            try:
                status, _ = post(url, {"workspace_id": workspace_id, "events": batch}, token)
            except (OSError, ValueError):
                return sent
            if not 200 <= status < 300:
                return sent
            self._write(events[len(batch) :])
            sent += len(batch)


def _read_regular(path):
    """The bytes of a regular file, never following a symlink (a student's link to a system file is skipped)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_HASHED_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def scan_files(home, state, now):
    """File changes under the home since the last scan: path, size, line-count change, content hash.

    `state` maps relative paths to [mtime, size, lines, sha256] and is updated in place. Hidden folders (.git,
    .cache, .ssh) are skipped; the content itself is never sent.
    """
    events, seen = [], set()
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, home)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            seen.add(rel)
            old = state.get(rel)
            if old and old[0] == info.st_mtime and old[1] == info.st_size:
                continue
            try:
                data = _read_regular(full)
            except OSError:
                continue
            if data is None:
                continue
            digest, lines = hashlib.sha256(data).hexdigest(), data.count(b"\n")
            state[rel] = [info.st_mtime, info.st_size, lines, digest]
            if old and old[3] == digest:
                continue
            before = old[2] if old else 0
            details = {
                "path": rel,
                "size": info.st_size,
                "sha256": digest,
                "lines_added": max(0, lines - before),
                "lines_removed": max(0, before - lines),
                "created": old is None,
            }
            events.append(event("file_changed", details, now))
    for rel in sorted(set(state) - seen):
        del state[rel]
        events.append(event("file_deleted", {"path": rel}, now))
    return events


def git_repos(home, depth=3):
    """Folders under the home holding a .git directory (at most `depth` levels down)."""
    found = []
    for root, dirs, _ in os.walk(home):
        if os.path.isdir(os.path.join(root, ".git")):
            found.append(root)
        if root[len(home) :].count(os.sep) >= depth:
            dirs[:] = []
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return found


def parse_git_log(repo_rel, text):
    """Commits from `git log --format=%x1e%H%x1f%ct%x1f%s --name-only` output."""
    commits = []
    for record in text.split("\x1e"):
        if not record.strip():
            continue
        head, _, names = record.partition("\n")
        parts = head.split("\x1f")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        files = [n for n in names.splitlines() if n.strip()]
        commits.append(
            {"repo": repo_rel, "hash": parts[0], "time": int(parts[1]), "message": parts[2][:500], "files": files[:200]}
        )
    return commits


def scan_git(home, run_git, now, limit=50):
    """The newest commits of every repository under the home (ids make re-seen commits one event).

    run_git(repo_path, args) runs git as the student (on EC2 the agent uses `runuser`; locally the runtime runs
    it inside the workspace's sandbox): a repository's hooks and config never run as root.
    """
    events = []
    for repo in git_repos(home):
        rel = os.path.relpath(repo, home)
        out = run_git(repo, ["log", "-n", str(limit), "--format=%x1e%H%x1f%ct%x1f%s", "--name-only"])
        for commit in parse_git_log(rel, out or ""):
            events.append(event("git_commit", commit, commit["time"]))
    return events


def activity_url(heartbeat_url):
    """The activity endpoint next to the heartbeat endpoint."""
    return heartbeat_url.rsplit("/", 1)[0] + "/activity"


def run_git_as(user):
    """git as the student (runuser, as root can): a repository's hooks and config never run as root."""

    def run(repo, args):
        argv = ["runuser", "-u", user, "--", "git", "-c", "core.fsmonitor=false", "-C", repo, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout if done.returncode == 0 else ""

    return run


def collect_activity(cfg, spool, state_path, now, run_git, post=post_json, ec2=True, tool_log=None, sources=None):
    """Scan the home for file changes, commits, downloads and extractions (and on EC2 SSH sessions and Jupyter),
    spool them, send the spool. Returns events sent. `sources`: more_events' own (run, auth_log) when not the
    machine's (tests)."""
    from_scan = _scan_module()
    try:
        with open(state_path) as f:
            state = from_scan.split_state(json.load(f))
    except (OSError, ValueError):
        state = from_scan.split_state({})
    events = scan_files(cfg["home"], state["files"], now)
    events += scan_git(cfg["home"], run_git, now)
    events += from_scan.more_events(cfg["home"], state, events, now, event, ec2, log=tool_log or from_scan.TOOL_LOG,
                                    **(sources or {}))  # fmt: skip
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)
    spool.add(events)
    return spool.flush(activity_url(cfg["url"]), cfg["token"], cfg["workspace_id"], post=post)


def _scan_module():
    try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
        from provisioning.agent import cwc_scan
    except ImportError:  # pragma: no cover - the workspace's layout
        import cwc_scan
    return cwc_scan


def record_commands(on):
    """Typed commands while the course records them: the shell hook in /etc/profile.d and /etc/bash.bashrc, and
    its log; off: neither (a shell already open stops writing at its next prompt)."""
    try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
        from provisioning.agent import cwc_commands
    except ImportError:  # pragma: no cover - the workspace's layout
        import cwc_commands
    cwc_commands.arm_command_log(on)
    cwc_commands.install_hook(on, os.path.dirname(os.path.abspath(__file__)))


def stop_collecting(state_path):
    """The course stopped collecting: no tool log, no typed commands, and the next scan starts from now (not from
    the old cursor)."""
    scan = _scan_module()
    scan.arm_tool_log(False)
    record_commands(False)
    try:
        with open(state_path) as f:
            state = scan.split_state(json.load(f))
    except (OSError, ValueError):
        return
    state.pop("ssh", None)
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)


# Deadline snapshots: at an assignment's due time the tool wants its folder; the tar is made as the student (a
# symlink or a swapped folder cannot make it read outside the home; symlinks and special files are left out).
SNAPSHOT_MAX = 10 * 1024 * 1024  # the tool's limit (base64 in a JSON body)
SNAPSHOT_TAR = r"""
import gzip, io, os, stat, sys, tarfile
home, folder = sys.argv[1], sys.argv[2].strip("/")
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for dirpath, dirs, files in os.walk(os.path.join(home, folder)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            info = tarfile.TarInfo(os.path.relpath(full, home))
            info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
            with open(full, "rb") as f:
                tar.addfile(info, f)
sys.stdout.buffer.write(gzip.compress(raw.getvalue(), mtime=0))
"""


def snapshot_argv(home, folder):
    """The command that prints the folder's tar.gz (run as the student)."""
    return ["python3", "-c", SNAPSHOT_TAR, home, folder]


def tar_as(user):
    """Run the snapshot command as the student (runuser, as root can); bytes or None."""

    def run(home, folder):
        argv = ["runuser", "-u", user, "--", *snapshot_argv(home, folder)]
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        return done.stdout if done.returncode == 0 and len(done.stdout) <= SNAPSHOT_MAX else None

    return run


def send_snapshots(cfg, home, make_tar, post=post_json):
    """Send every deadline snapshot the tool wants of this workspace; returns how many it accepted."""
    base = cfg["url"].rsplit("/", 1)[0] + "/snapshots"
    try:
        status, answer = post(base, {"workspace_id": int(cfg["workspace_id"])}, cfg["token"])
    except OSError:
        return 0
    sent = 0
    for item in answer.get("snapshots", []) if status == 200 else []:
        body = make_tar(home, str(item["folder"]))
        if body is None:
            continue
        try:
            status, _ = post(
                base + "/" + str(int(item["id"])), {"archive": base64.b64encode(body).decode()}, cfg["token"]
            )
        except OSError:
            return sent
        sent += status == 200
    return sent


def _debug_module():
    try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
        from provisioning.agent import cwc_debugrec
    except ImportError:  # pragma: no cover - the workspace's layout
        import cwc_debugrec
    return cwc_debugrec


def debug_boot(cfg):
    """At each boot: the debug view user's read-only view of the student's home, kept off the loopback first
    (cwc_debugrec); without the firewall rule no view is mounted and view-only sessions refuse to start."""
    debug = _debug_module()
    try:
        if not debug.ensure_view_firewall():
            print("cwc-agent: no debug view: the view user's loopback rule could not be set", flush=True)
            return
        print("cwc-agent: debug view", debug.ensure_view_mount(cfg["home"], cfg["user"]), flush=True)
    except (OSError, KeyError) as exc:  # view-only sessions then refuse to start (the recorder checks the mount)
        print("cwc-agent: no debug view:", exc, flush=True)


def debug_tick(cfg, answer):
    """After each heartbeat: revoke ended staff certificates in sshd, end the debug sessions the tool no longer
    lists, upload finished recordings."""
    debug = _debug_module()
    if isinstance(answer.get("revoked_serials"), list):
        debug.write_krl([s for s in answer["revoked_serials"] if isinstance(s, int)])
    if isinstance(answer.get("debug_open"), list):
        ended = debug.end_closed([str(label) for label in answer["debug_open"]])
        if ended:
            print("cwc-agent: debug sessions ended:", " ".join(ended), flush=True)
    debug.upload_recordings(cfg)


def take_marker(path):
    """Whether the sleep hook left its marker since the last look (removed: one resume counts once)."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def boot_id():
    try:
        with open(BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return ""


def main():
    with open(CONFIG) as f:
        cfg = json.load(f)
    os.makedirs(os.path.dirname(LEASE_STATE), mode=0o700, exist_ok=True)
    keeper = LeaseKeeper(SystemPoweroff(), int(cfg.get("boot_grace_s", DEFAULT_BOOT_GRACE_S)), LEASE_STATE, boot_id())
    keeper.boot(time.time())
    try:
        cfg["_restore"] = restore_once(cfg)  # a restored student's home, before the student's first login
    except Exception as exc:  # the state file could not be written: the agent reports what it can, it never stops
        print("cwc-agent: restore:", type(exc).__name__, exc, flush=True)
    answer, spool = {}, Spool()
    debug_boot(cfg)
    while True:
        if keeper.wake(time.time(), time.monotonic(), marker=take_marker(RESUMED)):
            print("cwc-agent: resumed from sleep: lease held for the boot grace until the tool answers", flush=True)
        try:
            beat = heartbeat(
                cfg,
                keeper,
                activity(cfg),
                time.time(),
                seen=answer,
                write_login_banner=write_banner,
                end_sessions=end_user_sessions,
            )
            print("cwc-agent:", beat, flush=True)
            debug_tick(cfg, answer)
            if answer.get("collect_activity") is True:  # the course's integrity setting; off: nothing is scanned
                _scan_module().arm_tool_log(True)
                record_commands(answer.get("record_commands") is True)
                collect_activity(cfg, spool, SCAN_STATE, time.time(), run_git_as(cfg["user"]))
                send_snapshots(cfg, cfg["home"], tar_as(cfg["user"]))
            elif "collect_activity" in answer:
                stop_collecting(SCAN_STATE)
        except Exception as exc:  # keep reporting; the tool treats silence as idle, the lease runs out by itself
            print("cwc-agent:", type(exc).__name__, exc, flush=True)
        keeper.check(time.time())
        time.sleep(60)


def scan_main(home, tool_log=None):
    """`cwc_agent.py --scan HOME [TOOL_LOG]`: read the scan state on stdin, print {"events", "state"} (the local
    runtime runs this inside the workspace's sandbox, as the student, so the scan sees nothing but the workspace;
    logins, SFTP and Jupyter it sees itself)."""
    import sys

    scan = _scan_module()
    try:
        state = scan.split_state(json.load(sys.stdin))
    except ValueError:
        state = scan.split_state({})

    def run_git(repo, args):
        done = subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-C", repo, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout if done.returncode == 0 else ""

    now = time.time()
    events = scan_files(home, state["files"], now) + scan_git(home, run_git, now)
    events += scan.more_events(home, state, events, now, event, False, log=tool_log or scan.TOOL_LOG)
    json.dump({"events": events, "state": state}, sys.stdout)


if __name__ == "__main__":
    import sys

    if len(sys.argv) in (3, 4) and sys.argv[1] == "--scan":
        scan_main(*sys.argv[2:])
    else:
        main()
