"""The real OpenSSH client (ssh, scp, sftp) and asyncssh's scp and SFTP reach the sandbox; transfers land in the
home and never in the materials."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncssh

from tests.runtime.conftest import ssh_run

OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]  # fmt: skip


def _key_file(tmp_path: Path, private: str) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_text(private)
    path.chmod(0o600)
    return path


def test_openssh_client_logs_in_and_scp_uploads(runtime, make_workspace, tmp_path):
    emily = make_workspace()
    key, port = _key_file(tmp_path, emily.private_key), str(runtime.rt.port)
    done = subprocess.run(["ssh", "-p", port, "-i", str(key), *OPTS, f"{emily.login}@127.0.0.1", "echo hi from $USER"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "hi from ubuntu\n"), done.stderr
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    upload = ["scp", "-P", port, "-i", str(key), *OPTS, str(tmp_path / "data.csv")]
    done = subprocess.run([*upload, f"{emily.login}@127.0.0.1:data.csv"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "cat ~/data.csv")[1] == "a,b\n1,2\n"
    done = subprocess.run(["scp", "-P", port, "-i", str(key), *OPTS, str(tmp_path / "data.csv"),
                           f"{emily.login}@127.0.0.1:/mnt/cs229-materials/x.csv"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode != 0


def test_openssh_client_with_a_wrong_key_is_refused(runtime, make_workspace, tmp_path):
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    key = _key_file(tmp_path, david.private_key)
    argv = ["ssh", "-p", str(runtime.rt.port), "-i", str(key), *OPTS, f"{emily.login}@127.0.0.1", "true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 255 and "Permission denied" in done.stderr


def test_asyncssh_sftp_and_legacy_scp_upload_into_the_home(runtime, make_workspace, tmp_path):
    emily = make_workspace()
    (tmp_path / "model.py").write_text("print('ok')\n")

    async def transfer() -> list[str]:
        async with asyncssh.connect("127.0.0.1", runtime.rt.port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            await asyncssh.scp(str(tmp_path / "model.py"), (conn, "model_scp.py"))
            async with conn.start_sftp_client() as sftp:
                await sftp.put(str(tmp_path / "model.py"), "model_sftp.py")
                names = sorted(n for n in await sftp.listdir(".") if n.startswith("model"))
                try:
                    await sftp.put(str(tmp_path / "model.py"), "/mnt/cs229-materials/model.py")
                except asyncssh.SFTPError as exc:
                    names.append(f"materials refused: {type(exc).__name__}")
                return names

    assert asyncio.run(transfer()) == ["model_scp.py", "model_sftp.py", "materials refused: SFTPFailure"]
    home = runtime.rt.home(emily.workspace.instance_id)
    assert (home / "model_sftp.py").read_text() == (home / "model_scp.py").read_text() == "print('ok')\n"
