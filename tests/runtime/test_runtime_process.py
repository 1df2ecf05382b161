"""`python -m provisioning.runtime` (what make run starts): serves logins; refuses to start without bubblewrap."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dev.services import free_port, wait_listening
from tests.runtime.conftest import ssh_run


def _env(database_url: str, backend, data_dir, port: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**os.environ, "CWC_ENV": "development", "CWC_SECRET_KEY": "x" * 40, "DATABASE_URL": database_url,
            "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url, "CWC_DATA_DIR": str(data_dir),
            "CWC_RUNTIME_SSH_PORT": str(port)}  # fmt: skip


def test_runtime_process_serves_a_workspace(database_url, backend, runtime_root, make_workspace):
    emily = make_workspace()
    port = free_port(0)
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.runtime"],
                            env=_env(database_url, backend, runtime_root, port), stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert wait_listening(proc, port, 30)
        assert ssh_run(port, emily.login, [emily.key], "echo $USER")[1] == "ubuntu\n"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"ssh -p {port}" in err.decode()
    assert "login ws" in err.decode() and emily.private_key.splitlines()[1] not in err.decode()


def test_runtime_refuses_to_start_without_bubblewrap(database_url, backend, runtime_root):
    env = {**_env(database_url, backend, runtime_root, free_port(0)), "PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "provisioning.runtime"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "refuses to start: workspaces would run unconfined: bubblewrap is not installed" in done.stderr


def _left_over(marks: tuple[str, ...]) -> list[str]:
    """Command lines of live processes that carry one of `marks` (zombies have none)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in marks):
            found.append(f"{pid}: {cmd[:200]}")
    return found


def _stop_in_the_tool(session, ws_id: int) -> None:  # type: ignore[no-untyped-def]
    from classroom.models import Workspace
    from classroom.services.workspaces import request_stop
    from provisioning.jobs.workspace import stop_workspace

    ws = session.get(Workspace, ws_id, with_for_update=True)
    request_stop(session, ws, actor_person_id=None, actor="staff", reason="stopped while the runtime was down")
    session.commit()
    assert stop_workspace(ws_id) in ("stopped", "stopping")


def test_a_runtime_killed_mid_session_comes_back_in_the_recorded_state(  # noqa: PLR0915
    database_url, backend, runtime_root, make_workspace, session, course, settings, engine, redis, client, clock
):
    import asyncio
    import contextlib
    import signal

    import asyncssh
    from sqlalchemy import select

    from classroom.db import make_session_factory
    from classroom.jobs.context import JobContext, use_context
    from classroom.models import ActivityEvent
    from provisioning.agent_service import token_hash
    from provisioning.runtime.facts import FactsLoader
    from provisioning.runtime.host import RuntimeThread
    from provisioning.runtime.service import LocalRuntime
    from tests.runtime.conftest import ssh_refused
    from tests.support.budget import make_policy
    from tests.support.outage import flask_post

    GONE = (asyncssh.ConnectionLost, asyncssh.DisconnectError)  # noqa: N806
    make_policy(session, course, integrity={"plagiarism_support": True})  # logins are spooled
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    for local in (emily, david):
        local.workspace.agent_token_hash = token_hash(f"tok-{local.workspace.id}")
    session.commit()
    port, mark = free_port(0), "31234567"
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.runtime"],
                            env=_env(database_url, backend, runtime_root, port), stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert wait_listening(proc, port, 30)
        assert ssh_run(port, david.login, [david.key], "echo his > g")[0] == 0

        async def kill_mid_session() -> None:
            async with asyncssh.connect("127.0.0.1", port, username=emily.login, client_keys=[emily.key],
                                        known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
                assert (await conn.run("echo kept > f", check=False)).exit_status == 0
                held = await conn.create_process(f"sleep {mark}")
                await conn.create_process(f"sleep {mark}1", term_type="xterm")  # a terminal session too
                await asyncio.sleep(1.5)
                sleeping = [p for p in _left_over((mark,)) if p.split(": ", 1)[1].startswith("sleep")]
                assert len(sleeping) == 2 and _left_over((str(runtime_root),)), "the held sessions run in bwrap"
                proc.send_signal(signal.SIGKILL)
                await asyncio.get_running_loop().run_in_executor(None, proc.wait)
                with contextlib.suppress(*GONE):
                    await asyncio.wait_for(held.wait(check=False), 20)  # the client sees its session end

        with contextlib.suppress(*GONE):
            asyncio.run(kill_mid_session())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _left_over((mark, str(runtime_root))):
        time.sleep(0.2)
    assert _left_over((mark, str(runtime_root))) == []  # no sandbox outlives the killed runtime

    use_context(JobContext(settings.with_(data_dir=runtime_root), make_session_factory(engine), redis, backend))
    try:
        _stop_in_the_tool(session, david.workspace.id)  # while the runtime is down
    finally:
        use_context(None)

    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root / "runtime", clock=clock,
                      post=flask_post(client, lambda: True))  # fmt: skip
    again = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    again.start()
    try:
        again.sync()
        again.call(rt.collect_all())  # before anyone logs in again: the spool the killed runtime kept is sent
        session.expire_all()
        logins = session.scalars(select(ActivityEvent.workspace_id).where(ActivityEvent.kind == "ssh_login")).all()
        assert logins == [emily.workspace.id]
        assert ssh_run(again.rt.port, emily.login, [emily.key], "cat f") == (0, "kept\n", "")
        assert ssh_refused(again.rt.port, david.login, [david.key])
        assert (rt.home(david.workspace.instance_id) / "g").read_text() == "his\n"
        time.sleep(0.5)  # the server sees the logout
        again.call(rt.collect_all())
        session.expire_all()
        logins = session.scalars(
            select(ActivityEvent.workspace_id).where(ActivityEvent.kind == "ssh_login").order_by(ActivityEvent.id)
        ).all()
        assert logins.count(emily.workspace.id) == 2  # the killed session's login, spooled on disk, then the new one
        assert david.workspace.id not in logins  # stopped: its spool waits for its next start
        backend.ec2.start_instances(InstanceIds=[david.workspace.instance_id])
        again.sync()
        assert ssh_run(again.rt.port, david.login, [david.key], "cat g") == (0, "his\n", "")
        time.sleep(0.5)
        again.call(rt.collect_all())
        session.expire_all()
        logins = session.scalars(select(ActivityEvent.workspace_id).where(ActivityEvent.kind == "ssh_login")).all()
        assert logins.count(david.workspace.id) == 2
    finally:
        again.stop()
