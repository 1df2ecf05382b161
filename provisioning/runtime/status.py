"""What runs in each local workspace, as the agent's heartbeat reports it: one small status file per workspace.

The local runtime is the only process that knows a local workspace's SSH connections (the browser terminal's
included: it logs in through the runtime's SSH server) and sandbox processes, and the sim host is the one that
plays the instance's agent (heartbeat, lease). So each sync pass of the runtime writes, per running instance,
<runtime root>/agent/<instance id>/status.json: open SSH connections, whether Jupyter runs, and the CPU the
sandbox processes used over that pass. The sim host reads it at each beat and sends it with the agent's own
heartbeat code. A missing or stale file (the runtime is down, or never served the instance) reads as nobody
there: with the runtime down nobody can be.

Stdlib only and light (the sim host imports it): no asyncssh, no database.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STALE_S = 120.0  # older than two beats: the runtime is not writing (down), nobody can be logged in
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WorkspaceStatus:
    """One sync pass's look at a workspace (the heartbeat's activity fields)."""

    at: float  # when the runtime looked (its clock, epoch seconds)
    ssh_sessions: int = 0
    jupyter_active: bool = False
    cpu_pct: float = 0.0  # the sandbox processes' CPU over the last pass, in % of the host's CPUs (as on EC2)
    disk_pct: float | None = None

    def activity(self, workspace_id: int) -> dict[str, object]:
        """The heartbeat body's activity fields (the local runtime sees no file changes by itself: a process
        writing files shows as CPU, and one in a session as the session)."""
        return {"workspace_id": workspace_id, "ssh_sessions": self.ssh_sessions,
                "jupyter_active": self.jupyter_active, "cpu_pct": round(self.cpu_pct, 2),
                "disk_pct": self.disk_pct, "changed_files": 0}  # fmt: skip


def status_path(root: Path, instance_id: str) -> Path:
    """Where the runtime keeps this instance's status (next to its activity spool, out of the student's reach)."""
    return root / "agent" / instance_id / "status.json"


def write_status(root: Path, instance_id: str, status: WorkspaceStatus) -> None:
    """Replace the instance's status atomically (a reader never sees half a file)."""
    path = status_path(root, instance_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, path)


def read_status(root: Path, instance_id: str, now: float) -> WorkspaceStatus:
    """The instance's latest status; nobody there when it is missing, unreadable or stale."""
    try:
        data = json.loads(status_path(root, instance_id).read_text())
        status = WorkspaceStatus(
            at=float(data["at"]), ssh_sessions=max(0, int(data["ssh_sessions"])),
            jupyter_active=data["jupyter_active"] is True, cpu_pct=max(0.0, float(data["cpu_pct"])),
            disk_pct=None if data.get("disk_pct") is None else float(data["disk_pct"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return WorkspaceStatus(at=now)
    return status if now - status.at <= STALE_S else WorkspaceStatus(at=now)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used by these processes and everything they ran (live descendants, and the reaped ones through
    their parents' cutime/cstime), from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended since it was listed
        ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime (fields 14-17)
    return ticks / CLOCK_TICKS


def cpu_percent(used_s: float, wall_s: float) -> float:
    """CPU seconds used over a wall-clock interval, in % of the host's CPUs (0 for no interval or a restart)."""
    if wall_s <= 0 or used_s <= 0:
        return 0.0
    return min(100.0, 100.0 * used_s / wall_s / (os.cpu_count() or 1))
