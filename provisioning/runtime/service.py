"""The local runtime: sandboxes, their processes and connections, kept in step with the simulated EC2 account.

A workspace is reachable only while its instance is running. A sync pass (every CWC_RUNTIME_SYNC_S seconds, and
at start) ends the processes and connections of every instance that is not running, and removes the home of a
terminated one once it is saved (its archive recorded, or the backup of the reset that replaced it): a home
terminated without either is kept, never deleted unarchived. Homes survive stops and runtime restarts, so a
restarted runtime comes back to the recorded state.
A workspace's tmux server runs in a sandbox of its own, kept until the workspace stops (as on an EC2 instance): a
shell in tmux (the browser terminal's) outlives the SSH session that started it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from classroom.db import utcnow
from provisioning.agent.cwc_agent import disk_percent, login_banner, post_json
from provisioning.runtime.access import WorkspaceFacts
from provisioning.runtime.activity import Post, WorkspaceActivity, jupyter_running, process_tree, runs_jupyter
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.processes import SandboxProcesses
from provisioning.runtime.restore import restore_home
from provisioning.runtime.sandbox import (
    HOST_UID,
    SandboxSpec,
    arm_commands,
    arm_tool_log,
    make_toolbin,
    prepare,
    remove_home,
    write_motd,
)
from provisioning.runtime.snapshots import take_snapshots
from provisioning.runtime.status import WorkspaceStatus, cpu_percent, cpu_seconds, write_status
from provisioning.runtime.traffic import TrafficOut, publish
from provisioning.userdata import AGENT_SOURCE

if TYPE_CHECKING:
    from provisioning.runtime.server import WorkspaceServer

log = logging.getLogger("provisioning.runtime")
DOWN = ("stopping", "stopped", "shutting-down", "terminated")


class LocalRuntime(SandboxProcesses):
    """State shared by every connection: where homes live, what runs, who is connected."""

    def __init__(
        self, loader: FactsLoader, root: Path, *, clock: Callable[[], datetime] = utcnow, post: Post = post_json
    ) -> None:
        self.loader, self.root, self.clock, self.post = loader, root, clock, post
        self.specs: dict[str, SandboxSpec] = {}
        self.port = 0
        self.init_processes()
        self._activity: dict[str, WorkspaceActivity] = {}
        self._cpu: dict[str, tuple[float, float]] = {}  # instance -> (monotonic time, CPU seconds) at the last pass
        self.collecting: frozenset[str] = frozenset()  # instances whose course collects activity (each sync)
        self.recording: frozenset[str] = frozenset()  # ... and records typed commands (each sync)
        self.kept: set[str] = set()  # terminated instances whose home is kept: not saved (logged once)
        self.traffic = TrafficOut()  # bytes sent to SSH clients per instance, published as NetworkOut each pass
        for sub in ("homes", "etc", "materials", "agent", "tools", "tmux"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub).chmod(0o711)  # `nobody` (bwrap) must reach its own folder, and list none
        root.chmod(0o711)
        self.toolbin = make_toolbin(root / "toolbin")

    def banner(self, instance_id: str) -> str:
        """The login banner for the workspace's course as of the last sync pass: the EC2 agent's text
        (login_banner), so both say the same about the same settings."""
        return login_banner(instance_id in self.collecting, instance_id in self.recording)

    def now(self) -> datetime:
        """The runtime's clock (injectable: certificate validity in tests)."""
        return self.clock()

    async def load_facts(self, login: str) -> WorkspaceFacts | None:
        """The login's facts, read off the event loop (DB and EC2 calls block)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.loader.load, login)

    def home(self, instance_id: str) -> Path:
        return self.root / "homes" / instance_id

    def sandbox_for(self, facts: WorkspaceFacts) -> SandboxSpec:
        """The workspace's sandbox, its folders created on first use (the home is kept across stops)."""
        slug = facts.mount_point.strip("/").replace("/", "_")
        spec = SandboxSpec(os_user=facts.os_user, home=self.home(facts.instance_id),
                           materials=self.root / "materials" / slug, mount_point=facts.mount_point,
                           etc=self.root / "etc" / facts.instance_id, hostname=f"ws{facts.workspace_id}",
                           agent=AGENT_SOURCE.parent, toolbin=self.toolbin,
                           tool_log=self.root / "tools" / facts.instance_id,
                           tmux_dir=self.root / "tmux" / facts.instance_id)  # fmt: skip
        if self.specs.get(facts.instance_id) != spec:
            prepare(spec, self.banner(facts.instance_id))
            owner = HOST_UID if os.geteuid() == 0 else None  # a restored student's archived home, once
            restore_home(self.loader.sessions, self.loader.backend, facts.workspace_id, spec.home, owner)
            self.specs[facts.instance_id] = spec
        return spec

    def prepare_session(self, facts: WorkspaceFacts, spec: SandboxSpec) -> None:
        """Before a session (blocking: off the event loop): refresh the course materials, and let the tool
        recorders log only while the course collects activity, and shells record typed commands only while it
        records them (as of the last sync pass: no query per session, which queued the burst's logins behind it
        in the executor)."""
        self.loader.mirror_materials(facts.course_id, spec.materials)
        arm_tool_log(spec.tool_log, facts.instance_id in self.collecting)  # type: ignore[arg-type]
        arm_commands(spec.tool_log, spec.etc, facts.instance_id in self.recording)  # type: ignore[arg-type]
        write_motd(spec, self.banner(facts.instance_id))  # the settings may have changed since the sandbox was made

    def activity(self, instance_id: str) -> WorkspaceActivity:
        """The workspace's activity spool (the agent's code, run by the runtime); its folder made once."""
        if instance_id not in self._activity:
            self._activity[instance_id] = WorkspaceActivity(self.root / "agent" / instance_id)
        return self._activity[instance_id]

    def note(self, facts: WorkspaceFacts, kind: str, details: dict[str, object]) -> None:
        """Spool an event the runtime saw for this workspace."""
        self.activity(facts.instance_id).note(kind, details, self.clock().timestamp())

    def collect(self, instance_id: str, pids: list[int]) -> int:
        """Scan a running workspace's home and processes, send its spool (blocking: run it off the event loop).
        One not served since the runtime started (killed mid-session, say) only sends what its spool kept."""
        spec = self.specs.get(instance_id)
        if not self.home(instance_id).exists():
            return 0
        act = self.activity(instance_id)
        if spec is None:
            return act.flush(self.loader.config(instance_id), self.post)
        collects = self.loader.collects_activity(instance_id)
        arm_tool_log(spec.tool_log, collects)  # type: ignore[arg-type]
        arm_commands(spec.tool_log, spec.etc, collects and self.loader.records_commands(instance_id))  # type: ignore[arg-type]
        if collects:  # with the course's setting off, nothing is scanned
            act.scan(spec, self.clock().timestamp())
            act.note_jupyter(jupyter_running(pids), self.clock().timestamp())
        sent = act.flush(self.loader.config(instance_id), self.post)
        take_snapshots(spec, self.loader.config(instance_id), self.post)  # deadline snapshots the tool wants
        return sent

    async def collect_all(self) -> int:
        """Collect every running workspace the runtime has served, in this run or before it (a spool on disk);
        one thread each, off the loop."""
        loop = asyncio.get_running_loop()
        spooled = {i for i in self.loader.seen_running if (self.root / "agent" / i).is_dir()}
        running = sorted(i for i in self.specs.keys() | spooled if i in self.loader.seen_running)
        pids = {i: [p.pid for p in self.procs.get(i, ())] for i in running}  # read on the loop, used in threads
        sent = await asyncio.gather(*(loop.run_in_executor(None, self.collect, i, pids[i]) for i in running))
        return sum(sent)

    def connection_opened(self, server: WorkspaceServer) -> None:
        assert server.facts is not None
        self.servers.setdefault(server.facts.instance_id, set()).add(server)

    def connection_closed(self, server: WorkspaceServer) -> None:
        assert server.facts is not None
        self.servers.get(server.facts.instance_id, set()).discard(server)

    async def end_closed_debug(self) -> int:
        """Disconnect debug sessions that were ended ("End session") or ran out of time; returns how many."""
        live = [s for servers in self.servers.values() for s in servers if s.debug is not None and s.conn]
        if not live:
            return 0
        ids = {s.debug.session_id for s in live if s.debug}
        still = await asyncio.get_running_loop().run_in_executor(None, self.loader.open_debug_sessions, ids)
        ended = 0
        for server in live:
            assert server.debug is not None and server.conn is not None
            if server.debug.session_id not in still or self.now() >= server.debug.expires_at:
                server.conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"debug session {server.debug.label} ended")
                ended += 1
        return ended

    def write_statuses(self, running: list[str], pids: dict[str, list[int]], sessions: dict[str, int]) -> None:
        """Write each running workspace's status for its heartbeat (blocking, cheap: /proc and one small file
        each): its open SSH connections, whether Jupyter runs, its sandboxes' CPU since the last pass."""
        at = self.clock().timestamp()
        for instance_id in running:
            tree = process_tree(pids.get(instance_id, []))
            mono, used = time.monotonic(), cpu_seconds(tree)
            before = self._cpu.get(instance_id)
            self._cpu[instance_id] = (mono, used)
            cpu = cpu_percent(used - before[1], mono - before[0]) if before else 0.0
            home = self.home(instance_id)
            status = WorkspaceStatus(at, sessions.get(instance_id, 0), runs_jupyter(tree), cpu,
                                     disk_percent(str(home)) if home.exists() else None)  # fmt: skip
            write_status(self.root, instance_id, status)
        for gone in set(self._cpu) - set(running):
            del self._cpu[gone]

    async def sync(self) -> None:
        """One pass: end what is not running, remove terminated homes, end closed debug sessions, write the
        running workspaces' heartbeat status, publish the transfer out counted since the last pass."""
        await self.end_closed_debug()
        instances = await asyncio.get_running_loop().run_in_executor(None, self.loader.backend.describe_managed)
        self.loader.seen_running = {i.instance_id for i in instances if i.state == "running"}
        self.collecting = await asyncio.get_running_loop().run_in_executor(None, self.loader.collecting_instances)
        self.recording = await asyncio.get_running_loop().run_in_executor(None, self.loader.recording_instances)
        for inst in instances:
            if inst.state in DOWN:
                self.end_workspace(inst.instance_id, inst.state)
        ended = {i.instance_id for i in instances if i.state == "terminated" and self.home(i.instance_id).exists()}
        saved = await asyncio.get_running_loop().run_in_executor(None, self.loader.saved_homes, ended)
        for instance_id in sorted(ended):
            if instance_id in saved:
                remove_home(self.home(instance_id))
                self.kept.discard(instance_id)
                log.info("removed the home of terminated %s (saved)", instance_id)
            elif instance_id not in self.kept:
                self.kept.add(instance_id)
                log.warning("terminated %s: its home is kept, no archive or backup of it is recorded", instance_id)
        running = sorted(self.loader.seen_running)
        pids = {i: [p.pid for p in self.procs.get(i, ())] for i in running}  # read on the loop, used in a thread
        sessions = {i: len(self.servers.get(i, ())) for i in running}
        await asyncio.get_running_loop().run_in_executor(None, self.write_statuses, running, pids, sessions)
        await self.publish_traffic()

    async def publish_traffic(self) -> int:
        """Publish each instance's bytes sent since the last publish as a CloudWatch NetworkOut datapoint (off the
        loop); what a failed call did not send is kept for the next pass. Returns the bytes published."""
        counts = self.traffic.take()
        if not counts:
            return 0
        unsent = await asyncio.get_running_loop().run_in_executor(
            None, publish, self.loader.backend, counts, self.clock()
        )
        self.traffic.give_back(unsent)
        return sum(counts.values()) - sum(unsent.values())

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop serving (SandboxProcesses.stop), then publish the transfer out counted since the last pass."""
        ended = await super().stop(timeout)
        try:
            await self.publish_traffic()
        except Exception:  # noqa: BLE001 - the stop completes whatever CloudWatch says
            log.exception("transfer out not published at stop")
        return ended

    async def sync_forever(self, every_s: float, activity_every: int = 15) -> None:
        """Sync every `every_s` seconds, collect activity every `activity_every` passes, until cancelled."""
        passes = 0
        while True:
            try:
                await self.sync()
                if passes % activity_every == activity_every - 1:
                    await self.collect_all()
            except Exception:  # noqa: BLE001 - a moto or tool hiccup must not stop the runtime
                log.exception("runtime sync failed")
            passes += 1
            await asyncio.sleep(every_s)
