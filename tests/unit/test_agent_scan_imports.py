"""The activity scan runs as a process per scan in every local workspace: importing the agent must not load the HTTP
stack (urllib.request pulls in http.client, email and ssl, about 3 MB of the idle workspace's memory figure in
bench/runtime.py). Only the agent's HTTP calls import it, when they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import provisioning.agent

AGENT = Path(provisioning.agent.__file__).parent


def test_importing_the_agent_loads_no_http_stack() -> None:
    probe = (
        "import sys, cwc_agent; print(sorted(m for m in ('urllib.request', 'http.client', 'ssl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-s", "-E", "-c", probe], cwd=AGENT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_the_http_calls_still_import_it_when_they_run() -> None:
    probe = (
        "import sys, cwc_agent\n"
        "try:\n    cwc_agent.post_json('http://127.0.0.1:9/', {}, 't', timeout=1)\n"
        "except OSError:\n    pass\n"
        "print('urllib.request' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-s", "-E", "-c", probe], cwd=AGENT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "True"
