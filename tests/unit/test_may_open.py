"""Whether a workspace may be opened (terminal, gateway, runtime logins): running and not locked for its archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from classroom.workspaces.archive_rules import locked_for_archive, may_open
from classroom.workspaces.lifecycle import WorkspaceState as S

NOW = datetime(2026, 12, 18, 23, 0, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(minutes=30), NOW - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("state", "locked_out_at", "archiving_until", "opens"),
    [
        (S.RUNNING, None, None, True),
        (S.RUNNING, EARLIER, None, False),  # locked out for the final archive: for good
        (S.RUNNING, EARLIER, EARLIER, False),
        (S.RUNNING, None, LATER, False),  # runs for its archive only
        (S.RUNNING, None, EARLIER, True),  # that window is over (the retire flow stopped or forgot it)
        (S.STOPPED, None, None, False),
        (S.STARTING, None, None, False),
    ],
)
def test_only_a_running_workspace_not_locked_for_its_archive_opens(state, locked_out_at, archiving_until, opens):  # type: ignore[no-untyped-def]
    assert may_open(state, locked_out_at, archiving_until, NOW) is opens
    if state is S.RUNNING:
        assert locked_for_archive(locked_out_at, archiving_until, NOW) is not opens
