"""Local heartbeats say what really happens: the sim host sends the runtime's status of each workspace (its open
SSH sessions, Jupyter, its sandboxes' CPU) with the agent's own heartbeat code, so the real sweep never idle-stops
a workspace someone is logged in to, and stops one nobody uses once its idle limit has passed. Real runtime,
asyncssh client, moto, PostgreSQL; the clock is moved with time-machine (asyncio's monotonic clock is not)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
import time_machine
from sqlalchemy import select

from classroom.models import Heartbeat, Workspace
from classroom.services.enforcement import run_sweep
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from provisioning.agent_service import token_hash
from provisioning.runtime.status import read_status
from provisioning.sim_host import SimHost
from tests.runtime.conftest import ssh_run
from tests.support.budget import make_policy
from tests.support.outage import flask_post

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
IDLE_MINUTES = 15
STEP = timedelta(minutes=5)
BEATS = 9  # 40 minutes: well past the idle limit, and past the 5 beats the old played student was "active"


class HeldSession:
    """A student's interactive SSH shell, held open on its own event loop while the test moves the clock."""

    def __init__(self, port: int, login: str, key: asyncssh.SSHKey) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def login_shell() -> tuple[Any, Any]:
            conn = await asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key], known_hosts=None,
                                          agent_path=None, config=None)  # fmt: skip
            return conn, await conn.create_process(term_type="xterm")

        self.conn, self.shell = self._call(login_shell())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        async def end() -> None:
            self.conn.close()
            await self.conn.wait_closed()

        self._call(end())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _idle_workspace(session, course, make_workspace):  # type: ignore[no-untyped-def]
    """Emily's running workspace (a real moto instance) in a course that idle-stops after 15 minutes."""
    make_policy(session, course, idle_stop_minutes=IDLE_MINUTES)
    emily = make_workspace()
    ws = session.get(Workspace, emily.workspace.id)
    ws.agent_token_hash = token_hash(f"tok-{ws.id}")  # the token launch_instance wrote into the user data
    session.commit()
    return emily


def _walk(runtime, host, session, ws_id: int, traveller, start: datetime) -> list[tuple[int, S]]:  # type: ignore[no-untyped-def]
    """Every 5 simulated minutes: a runtime sync pass, a beat, the real sweep; (minute, state) after each."""
    seen = []
    for n in range(BEATS):
        now = start + n * STEP
        traveller.move_to(now)
        runtime.sync()
        assert host.tick().beats == 1
        run_sweep(session, now, PRICES)
        session.commit()
        session.expire_all()
        seen.append((n * 5, session.get(Workspace, ws_id).state))
        if seen[-1][1] is not S.RUNNING:
            break
    return seen


def _sessions_reported(session, ws_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    query = select(Heartbeat.ssh_sessions).where(Heartbeat.workspace_id == ws_id).order_by(Heartbeat.id)
    return list(session.scalars(query))


def test_a_held_ssh_session_keeps_the_workspace_from_the_idle_stop(
    runtime, runtime_root, make_workspace, session, course, client, backend
):
    emily = _idle_workspace(session, course, make_workspace)
    host = SimHost(backend, post=flask_post(client, lambda: True), runtime_root=runtime_root)
    start = datetime.now(UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=True) as traveller:
        held = HeldSession(runtime.rt.port, emily.login, emily.key)
        try:
            seen = _walk(runtime, host, session, emily.workspace.id, traveller, start)
        finally:
            held.close()
    assert seen == [(m * 5, S.RUNNING) for m in range(BEATS)]  # 40 minutes logged in, idle limit 15: never stopped
    assert _sessions_reported(session, emily.workspace.id) == [1] * BEATS


def test_with_no_session_the_workspace_is_idle_stopped_after_its_limit(
    runtime, runtime_root, make_workspace, session, course, client, backend
):
    emily = _idle_workspace(session, course, make_workspace)
    host = SimHost(backend, post=flask_post(client, lambda: True), runtime_root=runtime_root)
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "echo done")[0] == 0  # she worked, then logged out
    for _ in range(50):  # the server sees the logout
        if not runtime.rt.servers.get(emily.workspace.instance_id):
            break
        time.sleep(0.1)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(start, tick=True) as traveller:
        seen = _walk(runtime, host, session, emily.workspace.id, traveller, start)
    assert seen == [(0, S.RUNNING), (5, S.RUNNING), (10, S.RUNNING), (15, S.STOPPING)]  # stopped at the limit
    assert _sessions_reported(session, emily.workspace.id) == [0, 0, 0, 0]
    reason = session.scalar(select(Workspace.desired_state).where(Workspace.id == emily.workspace.id))
    assert reason is not None and reason.value == "hibernated"


def test_a_missing_or_stale_status_reads_as_nobody_there(runtime_root):
    """With the runtime down (its last status older than two beats) nobody can be logged in."""
    from provisioning.runtime.status import WorkspaceStatus, write_status

    write_status(runtime_root, "i-1", WorkspaceStatus(at=1000.0, ssh_sessions=2, jupyter_active=True, cpu_pct=50))
    assert read_status(runtime_root, "i-1", 1060.0).ssh_sessions == 2
    stale = read_status(runtime_root, "i-1", 1000.0 + 121)
    assert (stale.ssh_sessions, stale.jupyter_active, stale.cpu_pct) == (0, False, 0.0)
    assert read_status(runtime_root, "i-2", 1000.0).activity(7)["ssh_sessions"] == 0


def test_cpu_seconds_count_a_finished_child_through_its_parent(tmp_path):
    """A sandbox command that burned CPU and ended still counts (its parent's cutime), so the pass sees it."""
    import os
    import subprocess
    import sys

    from provisioning.runtime.status import cpu_percent, cpu_seconds

    before = cpu_seconds([os.getpid()])
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    used = cpu_seconds([os.getpid()]) - before
    assert used >= 0.25
    assert cpu_percent(used, 1.0) >= 10 and cpu_percent(-1.0, 1.0) == 0.0
