"""Build and run the runtime: in its own process (make run) or on a thread (tests and bench)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from classroom.db import make_engine, make_session_factory
from config.settings import Settings
from provisioning.backend import CloudBackend
from provisioning.factory import backend_from_settings
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.server import listen
from provisioning.runtime.service import LocalRuntime

log = logging.getLogger("provisioning.runtime")
T = TypeVar("T")


def build_runtime(settings: Settings, backend: CloudBackend | None = None) -> LocalRuntime:
    """The runtime over the tool's database and the simulated account; state under <data_dir>/runtime."""
    backend = backend or backend_from_settings(settings)
    sessions = make_session_factory(make_engine(settings.database_url or ""))
    return LocalRuntime(FactsLoader(sessions, backend), (settings.data_dir / "runtime").resolve())


def host_key(path: Path) -> asyncssh.SSHKey:
    """The runtime's host key, created once (clients then see the same host across restarts)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
        path.chmod(0o600)
    return asyncssh.read_private_key(str(path))


async def run_forever(rt: LocalRuntime, host: str, port: int, key: asyncssh.SSHKey, sync_every_s: float) -> None:
    """Serve until SIGTERM (make run's stop, a service manager's) or cancelled (Ctrl-C), then stop cleanly: no new
    login or sandbox, every sandbox process killed and reaped (rt.stop), so none is left for init to adopt."""
    server = await listen(rt, host, port, key)
    rt.port = server.sockets[0].getsockname()[1]
    log.info("local runtime: ssh -p %d ws<ID>@%s", rt.port, host)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    syncing = asyncio.ensure_future(rt.sync_forever(sync_every_s))
    try:
        await stopped.wait()
    finally:
        syncing.cancel()
        server.close()
        ended = await rt.stop()
        log.info("local runtime stopped (%d sandbox process(es) ended)", ended)


class RuntimeThread:
    """The runtime on its own event loop in a thread (tests, bench): start(), call(coro), stop()."""

    def __init__(self, rt: LocalRuntime, key: asyncssh.SSHKey) -> None:
        self.rt, self.key = rt, key
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="runtime", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._thread.start()
        self._server = self.call(listen(self.rt, "127.0.0.1", 0, self.key))
        self.rt.port = self._server.sockets[0].getsockname()[1]
        return self.rt.port

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the runtime's loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def sync(self) -> None:
        """One sync pass now (what the process does every few seconds)."""
        self.call(self.rt.sync())

    def stop(self) -> None:
        """Close the listener, stop the runtime (every sandbox ended, none starts after), stop the loop."""
        if self.loop.is_closed():  # stopped already (a test stops it, then its fixture)
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            await self.rt.stop()

        self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
