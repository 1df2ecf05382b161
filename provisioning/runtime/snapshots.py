"""Deadline snapshots for local workspaces, taken with the agent's own code as on EC2.

The agent's `send_snapshots` asks the tool which snapshots it wants (`POST /api/agent/snapshots` with the
workspace's token) and sends each folder's tar.gz; locally the tar is made by the agent's script inside the
workspace's sandbox, as the student (on EC2 with runuser). Nothing else of the home leaves it.
"""

from __future__ import annotations

import logging
import subprocess
from typing import Any

from provisioning.agent.cwc_agent import SNAPSHOT_MAX, send_snapshots, snapshot_argv
from provisioning.runtime.activity import Post
from provisioning.runtime.sandbox import SandboxSpec, as_nobody, bwrap_argv

log = logging.getLogger("provisioning.runtime")


def tar_in_sandbox(spec: SandboxSpec):  # type: ignore[no-untyped-def]
    """The agent's snapshot command run inside this workspace's sandbox; bytes or None."""

    def run(home: str, folder: str) -> bytes | None:
        argv, as_user = as_nobody(bwrap_argv(spec, snapshot_argv(home, folder), {}))
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False, **as_user)  # noqa: S603
        if done.returncode != 0 or len(done.stdout) > SNAPSHOT_MAX:
            log.warning("snapshot of %s in %s failed: %s", folder, spec.hostname, done.stderr[-300:])
            return None
        return done.stdout

    return run


def take_snapshots(spec: SandboxSpec, cfg: dict[str, Any], post: Post) -> int:
    """Send every snapshot the tool wants of this workspace; returns how many were accepted."""
    if not cfg.get("url") or not cfg.get("token"):
        return 0
    return int(send_snapshots(cfg, spec.inner_home, tar_in_sandbox(spec), post=post))
