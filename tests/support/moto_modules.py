"""List moto's service modules once per test process instead of on every request to the moto server.

moto's server routes each request by asking `moto.backends.list_of_moto_modules()` whether the host names a
service, and that lists moto's package directory and calls `os.path.isdir` on each of its 200-odd entries, every
time. By py-spy that was 13.9 s of a full run's CPU, and 2.8 s of the semester test's 60. The answer depends only
on the installed moto, so the tests' moto server reads a frozenset made from moto's own function on first use.
Routing is otherwise moto's own; `tests/unit/test_moto_modules.py` checks the answer is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from moto import backends

_list_of_moto_modules = backends.list_of_moto_modules


@cache
def moto_modules() -> frozenset[str]:
    return frozenset(_list_of_moto_modules())


def list_moto_modules_once() -> None:
    """Install the memo (idempotent)."""
    backends.list_of_moto_modules = moto_modules  # type: ignore[assignment]


def listed_afresh() -> Iterable[str]:
    """moto's own listing, for the test that compares the two."""
    return _list_of_moto_modules()
