"""The EC2 stand-in tests hold one machine-wide lock from the group's first test to its last."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from tests.support.os_users import GROUP, Ec2AccountsPlugin


class _Item:
    def __init__(self, group: str | None) -> None:
        self.marks = [pytest.mark.xdist_group(group).mark] if group else []

    def iter_markers(self, name: str):  # type: ignore[no-untyped-def]
        return iter(m for m in self.marks if m.name == name)


def _free(path: Path) -> bool:
    """Whether another open file (as another checkout's test process would have) can take the lock now."""
    with path.open("a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
        return True


def _run(plugin: Ec2AccountsPlugin, item: _Item, nextitem: _Item | None, during: list[bool]) -> None:
    protocol = plugin.pytest_runtest_protocol(item, nextitem)  # type: ignore[arg-type]
    next(protocol)
    during.append(_free(plugin.path))
    with pytest.raises(StopIteration):
        protocol.send(None)


def test_the_lock_is_held_across_the_group_and_released_after_its_last_test(tmp_path: Path) -> None:
    plugin, during = Ec2AccountsPlugin(tmp_path / "ec2-accounts.lock"), []
    first, second, other = _Item(GROUP), _Item(GROUP), _Item("browser")
    assert _free(plugin.path)
    _run(plugin, first, second, during)
    assert not _free(plugin.path)  # kept between two tests of the group
    _run(plugin, second, other, during)
    assert _free(plugin.path)  # released after the last
    _run(plugin, other, None, during)
    assert during == [False, False, True]  # held during each group test, not during another group's
