"""A resume from hibernation holds the boot grace instead of powering off at once; the lease is then re-earned from
the tool or the instance powers off. The agent's real LeaseKeeper with injected wall and monotonic clocks, and the
user data's systemd sleep hook run with a recording `shutdown` ahead in PATH."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from provisioning.agent.cwc_agent import RESUME_SLACK_S, LeaseKeeper, heartbeat, take_marker
from provisioning.userdata import SLEEP_HOOK, UserDataInput, render_user_data
from tests.money.test_agent_lease import RecordedPoweroff

GRACE = 900
CFG = {"url": "http://tool/api/agent/heartbeat", "token": "t", "home": "/nonexistent", "user": "u"}


def _keeper(tmp_path: Path) -> LeaseKeeper:
    keeper = LeaseKeeper(RecordedPoweroff(), GRACE, str(tmp_path / "lease.json"), boot_id="boot-1")
    keeper.boot(1000.0)  # lease until 1900
    keeper.wake(1000.0, 50.0)  # the first loop turn: nothing to compare with yet
    return keeper


def _down(*args: object) -> tuple[int, object]:
    raise OSError("the tool is unreachable")


def test_a_resume_seen_by_the_clocks_holds_the_boot_grace_not_a_poweroff(tmp_path: Path):
    keeper = _keeper(tmp_path)
    # hibernated for a day: the wall clock moved 86,460 s, CLOCK_MONOTONIC (stopped while asleep) only 60 s
    now = 1000.0 + 86_460
    assert keeper.wake(now, 110.0) is True
    assert keeper.lease_until == now + GRACE and keeper.poweroff.scheduled[-1] == now + GRACE
    assert heartbeat(CFG, keeper, {}, now, post=_down).startswith("no answer")  # the tool has not answered yet
    assert keeper.check(now) is False and keeper.poweroff.stopped == []
    assert keeper.answer({"stop": False, "lease_until_epoch": now + 600}, now + 60) == "renewed"  # then it renews
    assert keeper.lease_until == now + 600 and keeper.poweroff.stopped == []


def test_without_a_resume_an_expired_lease_powers_off(tmp_path: Path):
    keeper = _keeper(tmp_path)
    # an ordinary minute (both clocks advance alike, a little drift is no resume), and the tool never answered
    assert keeper.wake(1960.0, 50.0 + 960 - RESUME_SLACK_S / 2) is False
    assert keeper.lease_until == 1900.0
    assert keeper.check(1960.0) is True and keeper.poweroff.stopped == ["lease expired"]
    assert keeper.wake(1000.0 + 86_460, 10_000.0) is False  # powered off: no resume brings the lease back


def test_a_resume_then_no_answer_within_the_grace_powers_off(tmp_path: Path):
    keeper = _keeper(tmp_path)
    now, mono = 1000.0 + 3600, 110.0
    assert keeper.wake(now, mono) is True
    for minute in range(1, GRACE // 60 + 1):  # a turn a minute, the tool unreachable all along
        t = now + 60 * minute
        assert keeper.wake(t, mono + 60 * minute) is False
        heartbeat(CFG, keeper, {}, t, post=_down)
        expired = keeper.check(t)
        assert expired is (t >= now + GRACE)
    assert keeper.poweroff.stopped == ["lease expired"]


def test_a_resumed_instance_the_tool_says_stop_to_powers_off(tmp_path: Path):
    keeper = _keeper(tmp_path)
    now = 1000.0 + 3600
    assert keeper.wake(now, 60.0, marker=True) is True  # the sleep hook's marker: a resume even without a jump
    out = heartbeat(CFG, keeper, {}, now, post=lambda *a: (200, {"stop": True, "reason": "term over"}),
                    write_keys=lambda *a: None)  # fmt: skip
    assert out == "stop" and keeper.poweroff.stopped == ["term over"]


def test_the_marker_counts_once(tmp_path: Path):
    marker = tmp_path / "resumed"
    assert take_marker(str(marker)) is False
    marker.touch()
    assert take_marker(str(marker)) is True and not marker.exists() and take_marker(str(marker)) is False


def _hook(user_data: str) -> str:
    start = user_data.index("<<'CWC_SLEEP'\n") + len("<<'CWC_SLEEP'\n")
    return user_data[start : user_data.index("CWC_SLEEP\n", start)]


def test_the_user_data_installs_a_sleep_hook_that_reholds_the_grace(tmp_path: Path):
    user_data = render_user_data(UserDataInput(
        workspace_id=7, agent_url="https://tool/api/agent/heartbeat", agent_token="t", os_user="ubuntu",
        ssh_public_keys=(), course_slug="cs229", region="us-east-1", file_system_id="fs-1", access_point_id="fsap-1",
        boot_grace_s=GRACE))  # fmt: skip
    assert f"chown root:root {SLEEP_HOOK} && chmod 755 {SLEEP_HOOK}" in user_data
    assert user_data.index(SLEEP_HOOK) < user_data.index("systemctl daemon-reload")  # before the agent runs
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)
    hook = tmp_path / "cwc-lease"
    hook.write_text(_hook(user_data))
    subprocess.run(["bash", "-n", str(hook)], check=True)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "shutdown").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "shutdown").chmod(0o755)
    marker = tmp_path / "run" / "resumed"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CWC_RESUMED": str(marker)}
    subprocess.run([str(hook), "pre", "hibernate"], env=env, check=True)
    assert calls.read_text().splitlines() == ["-c cwc: sleeping; the lease is held again at resume"]
    assert not marker.exists()
    subprocess.run([str(hook), "post", "hibernate"], env=env, check=True)
    assert calls.read_text().splitlines()[1] == "-P +15 cwc: resumed; no agent lease yet"  # the boot grace's 15 min
    assert take_marker(str(marker)) is True  # the agent sees the resume at its next turn
    (bin_dir / "shutdown").write_text("#!/bin/sh\nexit 1\n")  # shutdown failing does not fail the sleep itself
    assert subprocess.run([str(hook), "post", "suspend"], env=env, check=False).returncode == 0
    assert marker.exists()
