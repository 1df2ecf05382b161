"""The agent's activity side for local workspaces, run by the runtime with the agent's own code.

The sandboxes have no network, so the runtime does what the agent's activity loop does on EC2, per workspace:
it spools login, logout and transfer events it sees itself, runs the agent's own scan of the home (file
changes, git commits) inside the workspace's sandbox as the student, and sends the spool with the workspace's
own token. The spool and the scan state live outside the home, where the student cannot edit them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioning.agent.cwc_agent import Spool, event, post_json
from provisioning.agent.cwc_commands import by_staff
from provisioning.runtime.sandbox import AGENT_DIR, SandboxSpec, as_nobody, bwrap_argv

log = logging.getLogger("provisioning.runtime")
Post = Callable[[str, dict[str, Any], str], tuple[int, Any]]
AGENT_IN_SANDBOX = f"{AGENT_DIR}/cwc_agent.py"  # read-only: the same files EC2's user data installs
LOGINS_KEPT = 200
SANDBOX_TIMED = ("command", "download", "extract")  # timed by the sandbox's wall clock (the hook, the recorders)


def activity_url(heartbeat_url: str) -> str:
    """The activity endpoint next to the agent's heartbeat endpoint."""
    return heartbeat_url.rsplit("/", 1)[0] + "/activity"


def scan_argv(spec: SandboxSpec) -> tuple[list[str], dict[str, Any]]:
    """The agent's scan of the home, in the workspace's sandbox as the student: argv and subprocess options (read
    the scan state on stdin, print events and the new state)."""
    argv = bwrap_argv(spec, ["python3", "-s", "-E", AGENT_IN_SANDBOX, "--scan", spec.inner_home], {})
    return as_nobody(argv)


class WorkspaceActivity:
    """One workspace's spool and scan state under <runtime>/agent/<instance id>/."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        self.folder = folder
        self.spool = Spool(str(folder / "activity.jsonl"))
        self.state_path = folder / "scan.json"
        self.logins_path = folder / "logins.json"  # session id -> who, for the latest logins

    def note(self, kind: str, details: dict[str, Any], at: float) -> None:
        """Spool one event the runtime saw (a login, a logout, a transfer); a login's session is remembered with
        who logged in (typed commands name their session)."""
        if kind == "ssh_login" and details.get("session"):
            logins = self._logins()
            logins[str(details["session"])] = str(details.get("who") or "")
            kept = dict(list(logins.items())[-LOGINS_KEPT:])
            self.logins_path.write_text(json.dumps(kept))
        self.spool.add([event(kind, details, at)])

    def _logins(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.logins_path.read_text()))
        except (OSError, ValueError, TypeError):
            return {}

    def _with_who(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Typed commands with who logged in to their session; none typed in a staff member's session."""
        logins, out = self._logins(), []
        for e in events:
            if e.get("kind") == "command":
                who = logins.get(str(e["details"].get("session") or ""), "")
                if by_staff(who):
                    continue
                e = event("command", {**e["details"], "who": who}, e["at"]) if who else e
            out.append(e)
        return out

    def scan(self, spec: SandboxSpec, now: float | None = None) -> int:
        """Spool the home's file changes and git commits since the last scan; returns how many events.

        The agent's scan runs inside the workspace's sandbox, as the student: it sees only this workspace (a
        symlink or a swapped folder cannot make it read anything else), and git's hooks and config never run on
        the host. Its state stays out here, where the student cannot edit it.
        """
        state = self.state_path.read_text() if self.state_path.exists() else "{}"
        argv, as_user = scan_argv(spec)
        done = subprocess.run(argv, input=state, capture_output=True, text=True, timeout=120, check=False,
                              **as_user)  # fmt: skip
        try:
            out = json.loads(done.stdout)
            events, new_state = list(out["events"]), dict(out["state"])
        except (ValueError, KeyError, TypeError):
            log.warning("activity scan of %s failed: %s", spec.hostname, done.stderr.strip()[-300:])
            return 0
        self.state_path.write_text(json.dumps(new_state))
        events = self._with_who(events)
        if now is not None:  # file changes are seen now by the runtime's clock (commits keep their own time)
            events = [{**e, "at": int(now)} if e.get("kind") in ("file_changed", "file_deleted") else e for e in events]
            shift = int(now - time.time())  # the sandbox's times (commands, recorded runs), on the runtime's clock
            events = [event(e["kind"], e["details"], e["at"] + shift) if e.get("kind") in SANDBOX_TIMED and shift
                      else e for e in events]  # fmt: skip
        self.spool.add(events)
        return len(events)

    def note_jupyter(self, running: bool, at: float) -> None:
        """Spool whether Jupyter runs, when that changed since the last look."""
        mark = self.folder / "jupyter"
        if running != mark.exists():
            self.note("jupyter", {"running": running}, at)
            if running:
                mark.touch()
            else:
                mark.unlink()

    def flush(self, cfg: dict[str, Any], post: Post = post_json) -> int:
        """Send the spool with the workspace's token (kept when the tool does not answer)."""
        url, token = str(cfg.get("url") or ""), str(cfg.get("token") or "")
        if not url or not token:
            return 0
        return int(self.spool.flush(activity_url(url), token, int(cfg["workspace_id"]), post=post))


def process_tree(pids: list[int]) -> list[int]:
    """These sandbox processes and all their live descendants (from /proc; an ended one is skipped)."""
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def runs_jupyter(tree: list[int]) -> bool:
    """Whether one of these processes is Jupyter (by its command line)."""
    for pid in tree:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"jupyter" in f.read():
                    return True
        except OSError:
            continue
    return False


def jupyter_running(pids: list[int]) -> bool:
    """Whether a process under these sandbox processes is Jupyter."""
    return runs_jupyter(process_tree(pids))
