"""The simulated instances' side is its own process: it powers an instance off when its lease runs out, with
no web app, worker or scheduler running at all."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from provisioning.sim_host import LEASE_TAG
from tests.support.outage import launch_instance


def test_sim_host_process_stops_an_instance_whose_lease_ran_out_with_the_tool_down(backend):
    kept = launch_instance(backend, 1, "tok-1", grace_s=3600)
    lapsing = launch_instance(backend, 2, "tok-2", grace_s=2)  # first lease: 2 s after the sim host sees it
    env = {
        **os.environ,
        "CWC_ENV": "development",
        "CWC_SECRET_KEY": "x" * 40,
        "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url,
        "CWC_SIM_TICK_S": "0.5",
    }
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.sim_host"], env=env, stderr=subprocess.PIPE)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    said = b"powered off: " + lapsing.encode() + b" (lease expired)"
    try:
        # The tick's own report line comes after the poweroff, the lease tag's removal and the tick's tag writes:
        # waiting for it (not for "stopped" alone) never stops the sim host halfway through that tick.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(said in line for line in list(lines)):
            assert proc.poll() is None, "the sim host exited:\n" + b"".join(lines).decode()[-2000:]
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)
    err = b"".join(lines)
    assert any(said in line for line in lines), err.decode()[-2000:]
    states = {i.instance_id: i.state for i in backend.describe_managed()}
    assert states == {kept: "running", lapsing: "stopped"}, err.decode()[-2000:]
    tags = {i.instance_id: i.tags for i in backend.describe_managed()}
    assert LEASE_TAG in tags[kept] and LEASE_TAG not in tags[lapsing]
