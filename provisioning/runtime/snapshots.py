"""Deadline snapshots for local workspaces, taken as the agent takes them on EC2.

The runtime asks the tool which snapshots it wants (`POST /api/agent/snapshots` with the workspace's token),
tars each assignment folder inside the workspace's sandbox as the student (a symlink or a swapped folder
cannot make it read anything outside the home; symlinks and special files are left out), and sends the
tar.gz to `POST /api/agent/snapshots/<id>`. Nothing else of the home leaves it.
"""

from __future__ import annotations

import base64
import logging
import subprocess
from typing import Any

from provisioning.runtime.activity import Post
from provisioning.runtime.sandbox import SandboxSpec, bwrap_argv, drop_privileges

log = logging.getLogger("provisioning.runtime")
MAX_BYTES = 10 * 1024 * 1024  # the tool's limit for one snapshot (base64 in a JSON body under 16 MB)

# Run by python3 inside the sandbox: a deterministic tar.gz of one folder of the home, regular files only.
TAR_SCRIPT = r"""
import gzip, io, os, stat, sys, tarfile
home, folder = sys.argv[1], sys.argv[2].strip("/")
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    root = os.path.join(home, folder)
    for dirpath, dirs, files in os.walk(root):
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


def tar_folder(spec: SandboxSpec, folder: str) -> bytes | None:
    """The folder as a tar.gz made inside the sandbox (None when it failed or is too large)."""
    argv = bwrap_argv(spec, ["python3", "-c", TAR_SCRIPT, spec.inner_home, folder], {})
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False, preexec_fn=drop_privileges)  # noqa: PLW1509
    if done.returncode != 0 or len(done.stdout) > MAX_BYTES:
        log.warning(
            "snapshot of %s in %s failed: %s", folder, spec.hostname, done.stderr.decode(errors="replace")[-300:]
        )
        return None
    return done.stdout


def take_snapshots(spec: SandboxSpec, cfg: dict[str, Any], post: Post) -> int:
    """Send every snapshot the tool wants of this workspace; returns how many were accepted."""
    url, token = str(cfg.get("url") or ""), str(cfg.get("token") or "")
    if not url or not token:
        return 0
    base = url.rsplit("/", 1)[0] + "/snapshots"
    try:
        status, answer = post(base, {"workspace_id": int(cfg["workspace_id"])}, token)
    except OSError:
        return 0
    if status != 200:
        return 0
    sent = 0
    for item in answer.get("snapshots", []):
        body = tar_folder(spec, str(item["folder"]))
        if body is None:
            continue
        try:
            status, _ = post(f"{base}/{int(item['id'])}", {"archive": base64.b64encode(body).decode()}, token)
        except OSError:
            return sent
        sent += status == 200
    return sent
