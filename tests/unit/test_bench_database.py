"""A bench's fresh database is dropped when the bench is killed with SIGTERM (`kill`, a timeout), not only when
it ends or fails: killed runs of bench.semester used to leave `cwc_bench_semester_*` databases behind. Real
PostgreSQL; the bench's own `fresh_database` in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg

from tests.conftest import PG_ADMIN_URL

CHILD = """
import sys, time
from bench.services import fresh_database
with fresh_database(sys.argv[1], sys.argv[2]):
    print("ready", flush=True)
    time.sleep(120)
"""


def _exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_a_killed_bench_drops_its_database():
    name = f"cwc_bench_sigterm_{os.getpid()}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, PG_ADMIN_URL, name], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert _exists(name)
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 128 + signal.SIGTERM
        assert not _exists(name)
    finally:
        child.kill()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
