"""One writer of /etc/passwd at a time among the test processes, and one EC2 stand-in test at a time per machine.

Tests that stand in for an EC2 instance create OS users (useradd, usermod) as root. Two xdist workers doing it at
once make one of them fail ("cannot lock /etc/passwd; try again later", exit 1); `accounts_lock` orders them.

Those tests also share fixed OS accounts and their homes (`cwc-h17a-student`, `cwc-h17c-new`, ...). Within a run
the `ec2-accounts` xdist group keeps them on one worker, but two checkouts testing at once (each with its own
`CWC_TEST_REDIS_DB`) ran them concurrently and one removed or refilled the other's homes mid-test. `EC2_ACCOUNTS`
(registered by tests/conftest.py) holds a machine-wide lock from the group's first test to its last.
"""

from __future__ import annotations

import fcntl
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

LOCK = Path("/tmp/cwc-tests-os-users.lock")
GROUP_LOCK = Path("/tmp/cwc-tests-ec2-accounts.lock")
GROUP = "ec2-accounts"


@contextmanager
def accounts_lock() -> Iterator[None]:
    """Hold the lock while changing OS accounts."""
    with _exclusive(LOCK):
        yield


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def in_group(item: pytest.Item) -> bool:
    return any(GROUP in (*m.args, m.kwargs.get("name")) for m in item.iter_markers("xdist_group"))


class Ec2AccountsPlugin:
    """Takes the machine-wide lock before the group's first test and keeps it while the next test is one of the
    group too (their module-scoped hosts and accounts live across tests), releasing it after the last."""

    def __init__(self, path: Path = GROUP_LOCK) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
        if in_group(item) and self.handle is None:
            self.handle = self.path.open("a")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        try:
            return (yield)
        finally:
            if self.handle is not None and (nextitem is None or not in_group(nextitem)):
                fcntl.flock(self.handle, fcntl.LOCK_UN)
                self.handle.close()
                self.handle = None


EC2_ACCOUNTS = Ec2AccountsPlugin()
