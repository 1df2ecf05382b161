#!/usr/bin/env python3
"""Cloud Workstation agent: report activity to the tool every minute; keep authorized_keys in sync.

Stdlib only. Config in /etc/cwc-agent.json: {"url", "token", "workspace_id", "user", "home"}.
"""

import json
import os
import subprocess
import time
import urllib.request

CONFIG = "/etc/cwc-agent.json"
STAMP = "/var/lib/cwc-agent/last-scan"


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
    ssh = os.path.join(home, ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    path = os.path.join(ssh, "authorized_keys")
    with open(path + ".tmp", "w") as f:
        f.write("# managed by Cloud Workstation: revoked keys are removed within a minute\n")
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


def report(cfg):
    body = json.dumps(
        {
            "workspace_id": cfg["workspace_id"],
            "ssh_sessions": ssh_sessions(),
            "jupyter_active": jupyter_active(),
            "cpu_pct": cpu_percent(),
            "changed_files": changed_files(cfg["home"]),
        }
    ).encode()
    req = urllib.request.Request(
        cfg["url"],
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + cfg["token"]},
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        answer = json.load(resp)
    if "authorized_keys" in answer:
        write_authorized_keys(cfg["home"], cfg["user"], answer["authorized_keys"])
    if "folders" in answer:
        make_folders(cfg["home"], cfg["user"], answer["folders"])


def main():
    with open(CONFIG) as f:
        cfg = json.load(f)
    while True:
        try:
            report(cfg)
        except Exception as exc:  # keep reporting; the tool treats silence as idle
            print("cwc-agent:", type(exc).__name__, exc, flush=True)
        time.sleep(60)


if __name__ == "__main__":
    main()
