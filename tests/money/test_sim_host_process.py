"""The simulated instances' side is its own process: it powers an instance off when its lease runs out, with
no web app, worker or scheduler running at all."""

from __future__ import annotations

import os
import subprocess
import sys
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
    try:
        deadline = time.monotonic() + 30
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {i.instance_id: i.state for i in backend.describe_managed()}
            if states[lapsing] == "stopped":
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the sim host exited"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert states == {kept: "running", lapsing: "stopped"}, err.decode()[-2000:]
    tags = {i.instance_id: i.tags for i in backend.describe_managed()}
    assert LEASE_TAG in tags[kept] and LEASE_TAG not in tags[lapsing]
    assert b"powered off: " + lapsing.encode() + b" (lease expired)" in err
