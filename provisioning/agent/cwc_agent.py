#!/usr/bin/env python3
"""Cloud Workstation agent: report activity every minute, keep authorized_keys in sync, hold the lease.

Runs as root (a systemd unit); the student's login user has no sudo. Stdlib only.
Config in /etc/cwc-agent.json: {"url", "token", "workspace_id", "user", "home", "boot_grace_s"}.

The lease: at start the agent schedules a poweroff (boot_grace_s after boot, or the lease it already held in
this boot); each heartbeat answer carrying lease_until moves it there; an answer saying stop powers off at once;
no answer (the tool is down) changes nothing, so the instance powers off when the lease runs out. A refused token
(revoked at term end) wipes the student's authorized_keys. The poweroff is injectable (tests and the simulated
account use the same LeaseKeeper with a recorded or cloud-side poweroff).
"""

import json
import math
import os
import subprocess
import time
import urllib.error
import urllib.request

CONFIG = "/etc/cwc-agent.json"
STAMP = "/var/lib/cwc-agent/last-scan"
LEASE_STATE = "/var/lib/cwc-agent/lease.json"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
DEFAULT_BOOT_GRACE_S = 900
KEYS_HEADER = "# managed by Cloud Workstation: revoked keys are removed within a minute\n"


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


def make_folders(home, user, folders):
    """Create the assignment folders the tool lists (relative to the home; never outside it)."""
    for folder in folders:
        path = os.path.realpath(os.path.join(home, folder))
        if not path.startswith(os.path.realpath(home) + os.sep) or os.path.isdir(path):
            continue
        os.makedirs(path, mode=0o755, exist_ok=True)
        subprocess.run(["chown", "-R", f"{user}:{user}", path], check=False)


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

    def boot(self, now):
        """Schedule the first poweroff: the lease already held in this boot, else boot_grace_s from now."""
        held = self._load()
        until = held["lease_until"] if held and held.get("boot_id") == self.boot_id else now + self.boot_grace_s
        self._hold(float(until))

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
        "changed_files": changed_files(cfg["home"]),
    }


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
        with open(path, "rb") as f:
            headers = {"Content-Length": str(size), "Content-Type": "application/gzip"}  # the type is signed
            put = urllib.request.Request(url, data=f, method="PUT", headers=headers)
            with urllib.request.urlopen(put, timeout=3600) as resp:
                if resp.status not in (200, 204):
                    return None
        return {"key": key, "sha256": digest.hexdigest(), "bytes": size}
    except (OSError, urllib.error.URLError):
        return None
    finally:
        os.unlink(path)


def heartbeat(cfg, keeper, body, now, post=post_json, write_keys=write_authorized_keys, make_dirs=make_folders,
              archive=archive_home):
    """Send one report and act on the answer; returns what happened.

    200: install the keys, then stop or hold the lease. 401/403 (token refused, e.g. revoked at term end): wipe
    the student's keys. Anything else, or no answer: keep the lease as it is (it runs out by itself).
    """
    if cfg.get("_archived"):  # the home's archive uploaded after the last answer: report it once
        body = dict(body, archived=cfg["_archived"])
    try:
        status, answer = post(cfg["url"], body, cfg["token"])
    except (OSError, ValueError) as exc:  # the tool is down or answered garbage: the lease stands
        return "no answer: " + type(exc).__name__
    if status in (401, 403):
        write_keys(cfg["home"], cfg["user"], [])
        return "refused: keys wiped"
    if status != 200 or not isinstance(answer, dict):
        return f"answer {status}: lease kept"
    if isinstance(answer.get("authorized_keys"), list):
        write_keys(cfg["home"], cfg["user"], [str(k) for k in answer["authorized_keys"]])
    if isinstance(answer.get("folders"), list):
        make_dirs(cfg["home"], cfg["user"], [str(f) for f in answer["folders"]])
    cfg.pop("_archived", None)  # reported (the tool asks again if it did not take it)
    if isinstance(answer.get("archive"), dict):  # before any stop: the archive comes first
        cfg["_archived"] = archive(cfg, answer["archive"])
    return keeper.answer(answer, now)


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
    while True:
        try:
            print("cwc-agent:", heartbeat(cfg, keeper, activity(cfg), time.time()), flush=True)
        except Exception as exc:  # keep reporting; the tool treats silence as idle, the lease runs out by itself
            print("cwc-agent:", type(exc).__name__, exc, flush=True)
        keeper.check(time.time())
        time.sleep(60)


if __name__ == "__main__":
    main()
