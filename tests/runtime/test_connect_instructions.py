"""The student's page shows the command that works: locally the runtime's port and the workspace's login."""

from __future__ import annotations

from sqlalchemy import select

from classroom.models import Workspace
from classroom.workspaces.lifecycle import WorkspaceState
from lti_app.workspaces.presenter import status
from tests.runtime.conftest import ssh_run


def test_local_connect_command_is_the_runtime_port_and_login(runtime, make_workspace, tmp_path, session):
    import subprocess

    from config.catalog import load_catalog

    emily = make_workspace()
    ws = session.scalar(select(Workspace).where(Workspace.id == emily.workspace.id))
    data = status(ws, load_catalog().get(ws.template_id), "CS 229", local_ssh_port=runtime.rt.port)
    assert data["ssh_command"] == f"ssh -p {runtime.rt.port} -i ~/.ssh/cwc_cs229 {emily.login}@127.0.0.1"
    assert "jupyter_tunnel" not in data
    key = tmp_path / "cwc_cs229"
    key.write_text(emily.private_key)
    key.chmod(0o600)
    argv = str(data["ssh_command"]).replace("~/.ssh/cwc_cs229", str(key)).split()
    argv[1:1] = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    done = subprocess.run([*argv, "ls", "-d", str(data["materials"])], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "/mnt/cs229-materials\n"), done.stderr
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "true")[0] == 0


def test_ec2_connect_command_is_the_instance_address(make_workspace, session):
    from config.catalog import load_catalog

    emily = make_workspace()
    ws = session.scalar(select(Workspace).where(Workspace.id == emily.workspace.id))
    ws.state, ws.public_ip = WorkspaceState.RUNNING, "203.0.113.10"
    data = status(ws, load_catalog().get(ws.template_id), "CS 229")
    assert data["ssh_command"] == "ssh -i ~/.ssh/cwc_cs229 ubuntu@203.0.113.10"
