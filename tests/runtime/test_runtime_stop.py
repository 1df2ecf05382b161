"""Stopping the runtime: no session opens once it stops, and no sandbox process outlives it (none left for init).

Real parts: the runtime's SSH server (on a thread, and as `python -m provisioning.runtime`), real bwrap sandboxes
and tmux servers, asyncssh clients. Leftovers are looked for in /proc by the runtime's data folder, which every
sandbox's bwrap command line names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import asyncssh
import pytest

from dev.services import free_port, wait_listening
from provisioning.runtime.processes import RuntimeStopping
from tests.runtime.conftest import ssh_run, until_quiet
from tests.runtime.test_runtime_process import _env


def _bwraps(mark: str) -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of live bwrap processes whose command line names `mark`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/status") as f:
                ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
        except (OSError, StopIteration):
            continue
        if "bwrap" in cmd and mark in cmd:
            found.append((int(pid), ppid, cmd[:160]))
    return found


def _none_left(mark: str, limit: float = 5) -> list[tuple[int, int, str]]:
    """The bwrap processes still alive after `limit` seconds (killed then, so one failure does not leak)."""
    deadline = time.monotonic() + limit
    while (left := _bwraps(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, _, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def test_a_stopping_runtime_refuses_new_sessions(runtime, make_workspace, runtime_root):  # type: ignore[no-untyped-def]
    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "echo in")[:2] == (0, "in\n")
    runtime.call(runtime.rt.stop())  # the listener still accepts: the sessions themselves are refused
    code, out, err = ssh_run(runtime.rt.port, emily.login, [emily.key], "echo in")
    assert code == 1 and out == "" and "runtime is stopping" in err
    assert runtime.rt.procs == {} and _none_left(str(runtime_root), limit=0) == []  # no sandbox was started

    async def spawn() -> None:
        await runtime.rt.spawn(emily.workspace.instance_id, ["sleep", "313.25"])

    with pytest.raises(RuntimeStopping):
        runtime.call(spawn())
    assert runtime.rt.procs == {}


def test_a_sandbox_forked_as_the_stop_begins_is_ended(runtime, make_workspace):  # type: ignore[no-untyped-def]
    """A process forked but not yet tracked when the stop begins: the stop waits for it and it is killed."""
    instance = make_workspace().workspace.instance_id

    async def scene() -> tuple[int, BaseException | None]:
        starting = asyncio.ensure_future(runtime.rt.spawn(instance, ["sleep", "317.25"]))
        await asyncio.sleep(0)  # the spawn has forked and waits for its pipes: not tracked yet
        forked = runtime.rt._spawning  # noqa: SLF001
        await runtime.rt.stop()
        return forked, (await asyncio.gather(starting, return_exceptions=True))[0]

    forked, outcome = runtime.call(scene())
    assert forked == 1 and isinstance(outcome, RuntimeStopping)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid) == "sleep 317.25"]
    assert runtime.rt.procs == {}


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def test_stopping_while_a_terminal_session_opens_leaves_no_sandbox(runtime, make_workspace, runtime_root):  # type: ignore[no-untyped-def]
    """The browser terminal's session (a pty, the workspace's tmux server) is held while it is being prepared; the
    runtime stops meanwhile; the session is refused and no bwrap naming this runtime's folder is left, orphaned
    (parent pid 1) or not."""
    emily = make_workspace()
    reached, go = threading.Event(), threading.Event()
    prepare = runtime.rt.prepare_session

    def held(facts, spec):  # type: ignore[no-untyped-def]
        prepare(facts, spec)
        reached.set()
        go.wait(20)

    runtime.rt.prepare_session = held

    async def login() -> None:
        with contextlib.suppress(OSError, asyncssh.Error):  # refused, or cut off as the runtime stops
            async with asyncssh.connect("127.0.0.1", runtime.rt.port, username=emily.login,
                                        client_keys=[emily.key], known_hosts=None, agent_path=None,
                                        config=None) as conn:  # fmt: skip
                proc = await conn.create_process("tmux new-session -A -s t", term_type="xterm")
                await until_quiet(proc, limit=15)

    client = threading.Thread(target=lambda: asyncio.run(login()), daemon=True)
    client.start()
    assert reached.wait(30)
    go.set()
    runtime.stop()
    client.join(20)
    assert _none_left(str(runtime_root)) == []
    assert runtime.rt.procs == {} and runtime.rt.servers == {}


def test_the_runtime_process_ends_its_sandboxes_on_sigterm(database_url, backend, runtime_root, make_workspace):  # type: ignore[no-untyped-def]
    """make run's stop: SIGTERM with a terminal open (its shell and the workspace's tmux server): exit code 0, and
    no bwrap naming the runtime's data folder is left."""
    emily = make_workspace()
    port = free_port(0)
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.runtime"],
                            env=_env(database_url, backend, runtime_root, port), stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert wait_listening(proc, port, 30)

        async def terminal() -> list[tuple[int, int, str]]:
            async with asyncssh.connect("127.0.0.1", port, username=emily.login, client_keys=[emily.key],
                                        known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
                shell = await conn.create_process("tmux new-session -A -s t", term_type="xterm", encoding="utf-8")
                shell.stdin.write("echo up-$((20+1))\n")
                assert "up-21" in await until_quiet(shell)
                running = _bwraps(str(runtime_root))
                proc.send_signal(signal.SIGTERM)
                await until_quiet(shell, limit=20)  # the runtime closes the session as it stops
                return running

        running = asyncio.run(terminal())
        assert len(running) >= 2  # the shell's sandbox and the tmux server's, each an outer and an inner bwrap
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=20)
    assert _none_left(str(runtime_root)) == []
    assert "local runtime stopped" in err.decode() and "Traceback" not in err.decode()
