"""EC2 takes at most 16 KB of user data: the agent's code is fetched from the tool at first boot instead, checked
against the SHA-256 the user data was rendered with, and an instance that cannot get its agent powers off."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path

from werkzeug.serving import make_server

from provisioning.userdata import (
    AGENT_FILES,
    AGENT_HOME,
    AGENT_SOURCE,
    DEBUG_FILES,
    USER_DATA_LIMIT,
    UserDataInput,
    agent_bundle_sha256,
    render_user_data,
)
from tests.support.serving import serve_in_thread

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "k" * 43


def _user_data(url: str = "https://classroom.tool.university.edu/api/agent/heartbeat", keys: int = 5) -> str:
    return render_user_data(UserDataInput(
        workspace_id=1234567, agent_url=url, agent_token="t" * 43, os_user="ubuntu",
        ssh_public_keys=tuple(f"{KEY} emily-laptop-{n}" for n in range(keys)), course_slug="cs229-fall-2026",
        region="us-east-1", file_system_id="fs-0123456789abcdef0", access_point_id="fsap-0123456789abcdef0",
        ca_public_key=f"{KEY} cwc-course-12-ca",
    ))  # fmt: skip


def test_user_data_fits_ec2s_limit_with_keys_and_the_course_ca():
    text = _user_data(keys=10)
    assert len(text.encode()) < USER_DATA_LIMIT, len(text.encode())
    assert "base64 -d" not in text  # the agent is no longer inlined


def test_an_instance_without_its_agent_powers_off_after_the_boot_grace():
    text = _user_data()
    shutdown = text.index('shutdown -P +15 "cwc: no agent lease yet"')
    assert shutdown < text.index("curl -fsS") < text.index("systemctl daemon-reload")
    assert text.index("set -euo pipefail") < shutdown


def test_the_tool_serves_the_bundle_the_user_data_checks(client):
    resp = client.get("/api/agent/bundle.tar.gz")
    assert resp.status_code == 200 and resp.mimetype == "application/gzip"
    assert hashlib.sha256(resp.data).hexdigest() == agent_bundle_sha256() == resp.headers["X-Content-SHA256"]
    assert agent_bundle_sha256() in _user_data()
    with tarfile.open(fileobj=io.BytesIO(resp.data), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == sorted(AGENT_FILES + DEBUG_FILES)
        for name in AGENT_FILES + DEBUG_FILES:
            assert tar.extractfile(name).read() == (AGENT_SOURCE.parent / name).read_bytes()  # type: ignore[union-attr]


def _fetch_script(text: str, target: Path) -> str:
    """The user data's own fetch-check-unpack lines, unpacking into `target` (the rest needs a real instance)."""
    start = text.index(f"install -d -m 755 {AGENT_HOME}\n")
    last = "rm -f /tmp/cwc-agent.tgz\n"
    end = text.index(last, text.index("tar -xzf /tmp/cwc-agent.tgz")) + len(last)
    body = text[start:end].replace(AGENT_HOME, str(target)).replace("sleep 10", "sleep 0")
    return "set -euo pipefail\n" + re.sub(r"seq 1 30", "seq 1 2", body)


def test_the_user_datas_own_commands_fetch_check_and_unpack_the_agent(app, tmp_path):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/agent/heartbeat"
        script = _fetch_script(_user_data(url), tmp_path / "agent")
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "agent" / "cwc_agent.py").read_bytes() == AGENT_SOURCE.read_bytes()
        tampered = script.replace(agent_bundle_sha256(), "0" * 64)  # a bundle that is not the one rendered
        refused = subprocess.run(["bash", "-c", tampered.replace(str(tmp_path / "agent"), str(tmp_path / "b"))],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert refused.returncode != 0 and not (tmp_path / "b" / "cwc_agent.py").exists()
    finally:
        server.shutdown()
        thread.join(10)
