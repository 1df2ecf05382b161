"""A reset's wait for its new EC2 machine's host key (provisioning.reset_ec2.pin_ready): pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioning.reset_ec2 import PIN_WAIT, ResetFailed, pin_ready, wanted

NOW = datetime(2026, 10, 6, 14, 0, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk"


def test_a_pinned_key_is_ready_and_no_key_waits_until_the_deadline():
    assert pin_ready(KEY, "", NOW - PIN_WAIT * 3, NOW) is True  # pinned: late or not, go on
    assert pin_ready("", "", NOW - PIN_WAIT, NOW) is False  # exactly at the deadline: still waiting
    assert pin_ready("", "", None, NOW) is False  # not launched yet
    with pytest.raises(ResetFailed, match="within 15 minutes"):
        pin_ready("", "", NOW - PIN_WAIT - timedelta(seconds=1), NOW)


def test_a_refused_report_fails_even_with_a_pin():
    with pytest.raises(ResetFailed, match="different SSH host key"):
        pin_ready(KEY, "ssh-ed25519 AAAAother", NOW, NOW)


def test_the_restore_takes_the_keep_paths_but_not_the_tool_managed_keys_file():
    keep = wanted(["homework/", "*.ipynb", ".ssh/"])
    assert keep("homework/hw1/train.py") and keep("notes/a.ipynb") and keep(".ssh/id_github")
    assert not keep(".ssh/authorized_keys") and not keep(".trainrc") and not keep(".venv/bin/python")


def test_the_reconcile_pass_ends_only_replaced_instances_still_alive():
    from provisioning.backend import InstanceInfo
    from provisioning.reset_ends import to_end

    seen = [InstanceInfo("i-old", "running", {}), InstanceInfo("i-gone", "shutting-down", {}),
            InstanceInfo("i-stopped", "stopped", {}), InstanceInfo("i-live", "running", {}),
            InstanceInfo("i-other", "running", {})]  # fmt: skip
    wanted = {"i-old", "i-gone", "i-stopped", "i-live", "i-not-seen"}
    assert to_end(wanted, {"i-live"}, seen) == ["i-old", "i-stopped"]  # never a live workspace's own instance
