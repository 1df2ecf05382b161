"""The local runtime's sandbox processes: started and tracked per workspace, ended with it, and none left behind
when the runtime stops (a sandbox whose start overlaps the stop is killed too); each workspace's tmux server, in a
sandbox of its own, so a shell in tmux outlives the SSH session that started it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncssh

from provisioning.runtime.access import WorkspaceFacts
from provisioning.runtime.sandbox import SandboxSpec, as_nobody, bwrap_argv

if TYPE_CHECKING:
    from provisioning.runtime.server import WorkspaceServer

log = logging.getLogger("provisioning.runtime")


class RuntimeStopping(RuntimeError):
    """The runtime is stopping: it opens no session and starts no sandbox process."""


class SandboxProcesses:
    """LocalRuntime's part that starts, tracks and ends sandbox processes and connections."""

    def init_processes(self) -> None:
        self.procs: dict[str, set[asyncio.subprocess.Process]] = {}
        self.servers: dict[str, set[WorkspaceServer]] = {}
        self.tmux: dict[str, asyncio.subprocess.Process] = {}  # each workspace's tmux server, while it runs
        self._tmux_starting: dict[str, asyncio.Lock] = {}  # two sessions at once: one server
        self.stopping = False  # set by stop(): no new session or sandbox process from then on
        self._spawning = 0  # sandbox processes forked but not yet tracked (stop() waits for them)

    async def keep_tmux(self, facts: WorkspaceFacts, spec: SandboxSpec, env: dict[str, str]) -> None:
        """Start the workspace's tmux server in a sandbox of its own (`tmux -D`, tracked: a stop ends it) unless
        it runs; a session's `tmux` client then attaches to it through the shared socket folder and its shells
        live on when the session ends. `env` is the starting session's (its new shells name that login)."""
        async with self._tmux_starting.setdefault(facts.instance_id, asyncio.Lock()):
            running = self.tmux.get(facts.instance_id)
            if running is None or running.returncode is not None:
                await self._start_tmux(facts, spec, env)

    async def _start_tmux(self, facts: WorkspaceFacts, spec: SandboxSpec, env: dict[str, str]) -> None:
        assert spec.tmux_dir is not None
        socket = spec.tmux_dir / "default"
        socket.unlink(missing_ok=True)  # a server killed by a stop leaves its socket behind
        argv, as_user = as_nobody(bwrap_argv(spec, ["/usr/bin/tmux", "-D"], env, student_tmux=True))
        proc = await self.spawn(facts.instance_id, argv, stdin=asyncio.subprocess.DEVNULL,
                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                                **as_user)  # fmt: skip
        self.tmux[facts.instance_id] = proc
        for _ in range(100):  # the client must find the server's socket, or it starts one in its own sandbox
            if socket.exists() or proc.returncode is not None:
                return
            await asyncio.sleep(0.02)
        log.warning("tmux server of %s did not start", facts.instance_id)

    async def spawn(self, instance_id: str, argv: list[str], **options: Any) -> asyncio.subprocess.Process:
        """Start a sandbox process for the workspace and track it (a stop ends it). Refused with RuntimeStopping
        once the runtime stops; one whose start overlapped the stop is killed before the refusal."""
        if self.stopping:
            raise RuntimeStopping("the workspace runtime is stopping")
        self._spawning += 1
        try:
            proc = await asyncio.create_subprocess_exec(*argv, **options)
        finally:
            self._spawning -= 1
        self.track(instance_id, proc)
        if self.stopping:  # forked while stop() waited for it: stop() ends it (killed here too, at once)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise RuntimeStopping("the workspace runtime is stopping")
        return proc

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop serving workspaces: refuse new sessions and sandbox processes, wait for those already forked to
        be tracked, close every connection, kill every tracked process and wait until each has exited (none is
        left for init to adopt). Returns how many processes were ended."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._spawning and loop.time() < deadline:
            await asyncio.sleep(0.01)
        procs = [proc for tracked in self.procs.values() for proc in tracked]
        ended = sum(self.end_workspace(i, "runtime stopping") for i in {*self.procs, *self.servers})
        if procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), max(deadline - loop.time(), 1))
        left = [p.pid for p in procs if p.returncode is None]
        if left:
            log.warning("runtime stopping: processes %s did not exit", left)
        return ended

    def track(self, instance_id: str, proc: asyncio.subprocess.Process) -> None:
        """Remember a sandbox process so a stop can end it."""
        procs = self.procs.setdefault(instance_id, set())
        procs.add(proc)
        asyncio.get_running_loop().create_task(self._forget(instance_id, proc))

    async def _forget(self, instance_id: str, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        self.procs.get(instance_id, set()).discard(proc)

    def end_workspace(self, instance_id: str, reason: str) -> int:
        """Close the workspace's connections and kill its sandboxes; returns how many processes were ended."""
        for server in list(self.servers.pop(instance_id, set())):
            if server.conn is not None:
                server.conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"workspace {reason}")
        procs = self.procs.pop(instance_id, set())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # bwrap dies, and with it the sandbox's pid namespace
        if procs:
            log.info("ended %d process(es) of %s: %s", len(procs), instance_id, reason)
        return len(procs)
