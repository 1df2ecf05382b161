"""`make test` runs `--dist loadgroup`: a test marked with an xdist group must reach the scheduler tagged with it
(tests/conftest.py XdistGroups), or grouped tests run on both workers at once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("groups-selfcheck")


def test_a_grouped_test_carries_its_group_to_the_scheduler(request: pytest.FixtureRequest) -> None:
    tagged = request.node.nodeid.endswith("@groups-selfcheck")
    assert tagged == bool(getattr(request.config.option, "loadgroup", False)), request.node.nodeid
