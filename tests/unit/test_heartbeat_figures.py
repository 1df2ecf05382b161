"""The agent reports memory and disk use beside CPU; the tool bounds them like CPU and accepts older agents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from provisioning.agent.cwc_agent import disk_percent, mem_percent
from provisioning.agent_service import parse_report


def test_memory_and_disk_are_read_from_this_machine(tmp_path):  # type: ignore[no-untyped-def]
    mem, disk = mem_percent(), disk_percent(str(tmp_path))
    assert mem is not None and 0 < mem <= 100
    assert disk is not None and 0 <= disk <= 100
    assert disk_percent(str(tmp_path / "missing")) is None


def test_report_bounds_memory_and_disk_and_accepts_an_agent_without_them():
    report = parse_report({"workspace_id": 3, "cpu_pct": 5, "mem_pct": 140.555, "disk_pct": -2})
    assert report.mem_pct == Decimal("100.00") and report.disk_pct == Decimal("0.00")
    old = parse_report({"workspace_id": 3, "cpu_pct": 5})
    assert old.mem_pct is None and old.disk_pct is None


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "lots", 10**9])
def test_malformed_figures_are_refused(bad):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="mem_pct"):
        parse_report({"workspace_id": 3, "mem_pct": bad})
