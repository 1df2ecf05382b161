"""The EC2 agent's snapshot step: it asks the tool, tars each wanted folder as the student, sends it once."""

from __future__ import annotations

import base64
import gzip
import io
import subprocess
import sys
import tarfile

from provisioning.agent.cwc_agent import send_snapshots, snapshot_argv

CFG = {"url": "https://tool/api/agent/heartbeat", "token": "tok", "workspace_id": 7}


def test_agent_sends_each_wanted_folder_and_skips_what_failed():
    calls = []

    def post(url, body, token):  # type: ignore[no-untyped-def]
        calls.append((url, body, token))
        if url.endswith("/snapshots"):
            return 200, {"snapshots": [{"id": 3, "folder": "homework/hw5"}, {"id": 4, "folder": "homework/hw6"}]}
        return 200, {}

    def make_tar(home, folder):  # type: ignore[no-untyped-def]
        return b"tar of " + folder.encode() if folder.endswith("hw5") else None

    assert send_snapshots(CFG, "/home/student", make_tar, post=post) == 1
    assert calls[0] == ("https://tool/api/agent/snapshots", {"workspace_id": 7}, "tok")
    assert calls[1][0] == "https://tool/api/agent/snapshots/3"
    assert base64.b64decode(calls[1][1]["archive"]) == b"tar of homework/hw5" and len(calls) == 2
    assert send_snapshots(CFG, "/h", make_tar, post=lambda u, b, t: (403, {})) == 0


def test_snapshot_script_takes_regular_files_of_the_folder_only(tmp_path):
    folder = tmp_path / "homework" / "hw5"
    folder.mkdir(parents=True)
    (folder / "hw5_solution.py").write_text("print(5)\n")
    (folder / "secret").symlink_to("/etc/passwd")
    (tmp_path / "homework" / "other.py").write_text("not in the folder\n")
    argv = snapshot_argv(str(tmp_path), "homework/hw5")
    out = subprocess.run([sys.executable, *argv[1:]], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out))) as tar:
        assert tar.getnames() == ["homework/hw5/hw5_solution.py"]
    assert out == subprocess.run([sys.executable, *argv[1:]], capture_output=True, check=True).stdout  # same bytes
