"""`python -m provisioning.gateway` (what make run starts) as its own process, restarted under an open terminal.

Real parts: the gateway in a subprocess with make run's environment (settings from CWC_* variables, the runtime's
host key read from the data folder), the runtime's SSH server and a bwrap sandbox with its tmux server, Redis for
the tickets, PostgreSQL for the workspace rows, a real WebSocket client. SIGTERM is what dev/server.py's
stop_process and a service manager send.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from classroom.models import StaffSshCert
from dev.services import free_port, wait_listening
from tests.runtime.test_terminal_gateway import ORIGIN, _open, ticket_for


class GatewayProcess:
    """One `python -m provisioning.gateway` run: its process and its stderr (a file: a pipe could fill up)."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.log = port, log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "provisioning.gateway"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)  # fmt: skip
        if wait_listening(self.proc, port):
            return
        self.proc.kill()
        pytest.fail(f"the gateway did not start: {log.read_text()[-2000:]}")

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def ensure_gone(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def gateway_env(settings, runtime, backend, tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """make run's environment for the gateway (dev/server.py build_environment), over the test's runtime: its host
    key where the gateway reads it (<CWC_DATA_DIR>/runtime/ssh_host_ed25519_key)."""
    data_dir = tmp_path / "run"
    (data_dir / "runtime").mkdir(parents=True)
    runtime.key.write_private_key(str(data_dir / "runtime" / "ssh_host_ed25519_key"))
    return {**os.environ, "CWC_ENV": "development", "CWC_SECRET_KEY": settings.secret_key,
            "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url, "CWC_DATA_DIR": str(data_dir),
            "CWC_BASE_URL": ORIGIN, "CWC_RUNTIME_SSH_PORT": str(runtime.rt.port),
            "CWC_GATEWAY_PORT": str(free_port(0)), "PYTHONUNBUFFERED": "1"}  # fmt: skip


def _connections(runtime, instance_id: str) -> int:  # type: ignore[no-untyped-def]
    """The runtime's open SSH connections to this workspace (its bookkeeping, read on its loop)."""

    async def count() -> int:
        return len(runtime.rt.servers.get(instance_id, ()))

    return runtime.call(count())


def _sandboxes(runtime, instance_id: str) -> int:  # type: ignore[no-untyped-def]
    """The workspace's live sandbox processes the runtime tracks (tmux's server and each session's)."""

    async def count() -> int:
        return sum(p.returncode is None for p in runtime.rt.procs.get(instance_id, ()))

    return runtime.call(count())


def _until(check, limit: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


async def _status(port: int, ticket: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            term = await _open(http, port, ticket)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await term.ws.close()
        return 101


def test_the_gateway_process_restarts_under_an_open_terminal(  # type: ignore[no-untyped-def]
    gateway_env, runtime, make_workspace, redis, session, tmp_path
):
    emily = make_workspace("Emily Chen")
    instance = emily.workspace.instance_id
    port = int(gateway_env["CWC_GATEWAY_PORT"])
    used, spare = ticket_for(redis, emily), ticket_for(redis, emily)  # both issued before the restart

    first = GatewayProcess(gateway_env, port, tmp_path / "gateway-1.log")
    try:

        async def before() -> tuple[dict, bool, int]:  # type: ignore[type-arg]
            async with aiohttp.ClientSession() as http:
                term = await _open(http, port, used)
                await term.type("echo $((6*7))\n")
                assert await term.read_until(r"[\r\n]42\r?\n"), term.screen[-500:]
                await term.type("export X=41; echo set-$((40+1))\n")
                assert await term.read_until("set-41"), term.screen[-500:]
                assert _connections(runtime, instance) == 1  # the gateway's one SSH connection
                first.proc.send_signal(signal.SIGTERM)
                closed = await term.control("closed", timeout=20)
                end = await asyncio.wait_for(term.ws.receive(), 10)  # the close frame follows the message
                # the code the gateway's close frame carries (the client's own close_code turns 1006 when the
                # gateway has already closed the connection as the client replies: a loaded machine's timing)
                return closed, end.type is aiohttp.WSMsgType.CLOSE, end.data

        closed, socket_closed, code = asyncio.run(before())
        assert closed["retry"] is True and "restarting" in closed["message"]  # the page reconnects by itself
        assert socket_closed and code == aiohttp.WSCloseCode.GOING_AWAY  # a close frame, not a dropped socket
        assert first.proc.wait(20) == 0  # SIGTERM is a normal stop
        assert "Traceback" not in first.stderr() and " ERROR " not in first.stderr(), first.stderr()[-3000:]
        assert used not in first.stderr()  # the access log leaves the ticket (a secret) out of the URL
        assert _until(lambda: _connections(runtime, instance) == 0), "the first gateway's SSH connection is left"
        assert _until(lambda: _sandboxes(runtime, instance) == 1)  # the session's sandbox ended; tmux's stays
    finally:
        first.ensure_gone()

    second = GatewayProcess(gateway_env, port, tmp_path / "gateway-2.log")
    try:

        async def after() -> str:
            async with aiohttp.ClientSession() as http:
                term = await _open(http, port, ticket_for(redis, emily))
                assert await term.read_until("set-41"), term.screen[-500:]  # tmux redraws the same shell's screen
                await term.type("echo got-$X\n")
                assert await term.read_until(r"[\r\n]got-41\r?\n"), term.screen[-500:]
                await term.ws.close()
                return term.screen

        assert "got-41" in asyncio.run(after())
        assert asyncio.run(_status(port, spare)) == 101  # issued before the restart, kept in Redis: works once
        certificates = session.scalar(select(func.count()).select_from(StaffSshCert))
        assert asyncio.run(_status(port, spare)) == 401
        assert asyncio.run(_status(port, used)) == 401  # used before the restart: still used
        assert session.scalar(select(func.count()).select_from(StaffSshCert)) == certificates  # refused: no login
        assert _until(lambda: _connections(runtime, instance) <= 1)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(20) == 0
        assert "Traceback" not in second.stderr() and " ERROR " not in second.stderr(), second.stderr()[-3000:]
        assert _until(lambda: _connections(runtime, instance) == 0), "the second gateway's SSH connection is left"
        assert _until(lambda: _sandboxes(runtime, instance) == 1)
    finally:
        second.ensure_gone()
