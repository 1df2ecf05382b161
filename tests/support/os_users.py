"""One writer of /etc/passwd at a time among the test processes.

Tests that stand in for an EC2 instance create OS users (useradd, usermod) as root. Two xdist workers doing it at
once make one of them fail ("cannot lock /etc/passwd; try again later", exit 1); this file lock orders them.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path("/tmp/cwc-tests-os-users.lock")


@contextmanager
def accounts_lock() -> Iterator[None]:
    """Hold the lock while changing OS accounts."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
