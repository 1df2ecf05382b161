"""`python -m provisioning.runtime` (what make run starts): serves logins; refuses to start without bubblewrap."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from dev.services import free_port
from tests.runtime.conftest import ssh_run


def _env(database_url: str, backend, data_dir, port: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**os.environ, "CWC_ENV": "development", "CWC_SECRET_KEY": "x" * 40, "DATABASE_URL": database_url,
            "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url, "CWC_DATA_DIR": str(data_dir),
            "CWC_RUNTIME_SSH_PORT": str(port)}  # fmt: skip


def test_runtime_process_serves_a_workspace(database_url, backend, runtime_root, make_workspace):
    emily = make_workspace()
    port = free_port(0)
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.runtime"],
                            env=_env(database_url, backend, runtime_root, port), stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        assert ssh_run(port, emily.login, [emily.key], "echo $USER")[1] == "ubuntu\n"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"ssh -p {port}" in err.decode()
    assert "login ws" in err.decode() and emily.private_key.splitlines()[1] not in err.decode()


def test_runtime_refuses_to_start_without_bubblewrap(database_url, backend, runtime_root):
    env = {**_env(database_url, backend, runtime_root, free_port(0)), "PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "provisioning.runtime"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "refuses to start: workspaces would run unconfined: bubblewrap is not installed" in done.stderr
