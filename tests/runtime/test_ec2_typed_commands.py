"""Typed commands on EC2: the heartbeat tells the agent whether the course records them; the agent installs the
hook in /etc/profile.d and /etc/bash.bashrc only then; an interactive bash through a real sshd (its
SSH_CONNECTION, its log lines) gives `command` events matched to the sshd login they were typed in."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from classroom.models import IntegritySettings
from provisioning.agent import cwc_commands
from provisioning.agent.cwc_agent import event
from provisioning.agent.cwc_commands import (
    BASHRC_MARK,
    arm_command_log,
    command_events,
    install_hook,
    scan_commands,
)
from provisioning.agent.cwc_sshlog import SshLog
from provisioning.userdata import AGENT_FILES
from tests.runtime.test_activity import _with_token
from tests.runtime.test_ec2_sources import OPTS, _keygen, folder  # noqa: F401 - folder is a fixture
from tests.support.budget import make_policy
from tests.support.ec2_sshd import free_port, spawn_sshd, wait_for_logouts

HOOK = Path(cwc_commands.__file__).with_name("cwc_commands.sh")


def test_the_agent_installs_the_hook_and_its_log_only_while_on(folder):  # noqa: F811
    profile_d, bashrc, log = folder / "profile.d" / "cwc-commands.sh", folder / "bash.bashrc", folder / "log" / "c"
    bashrc.write_text("# the image's own\n")
    for _ in range(2):  # idempotent: one line in bash.bashrc however often the answer says so
        install_hook(True, "/usr/local/lib/cwc-agent", str(profile_d), str(bashrc))
        arm_command_log(True, str(log))
    assert profile_d.read_text() == ". /usr/local/lib/cwc-agent/cwc_commands.sh\n"
    written = profile_d.stat().st_mtime_ns
    install_hook(True, "/usr/local/lib/cwc-agent", str(profile_d), str(bashrc))
    assert profile_d.stat().st_mtime_ns == written  # unchanged: not rewritten each minute
    assert bashrc.read_text().count(BASHRC_MARK) == 1 and bashrc.read_text().startswith("# the image's own\n")
    assert oct(log.stat().st_mode & 0o777) == "0o622"  # the student appends, cannot read
    install_hook(False, "/usr/local/lib/cwc-agent", str(profile_d), str(bashrc))
    arm_command_log(False, str(log))
    assert not profile_d.exists() and not log.exists() and bashrc.read_text() == "# the image's own\n"
    assert "cwc_commands.sh" in AGENT_FILES and "cwc_commands.py" in AGENT_FILES  # in the bundle EC2 downloads


def test_heartbeat_says_whether_the_course_records_commands(client, make_workspace, session, course):
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)

    def answer() -> dict[str, object]:
        resp = client.post("/api/agent/heartbeat", json={"workspace_id": emily.workspace.id, "ssh_sessions": 1},
                           headers={"Authorization": f"Bearer tok-{emily.workspace.id}"})  # fmt: skip
        assert resp.status_code == 200
        return resp.get_json()  # type: ignore[no-any-return]

    assert answer()["record_commands"] is False  # collecting, but not commands
    session.add(IntegritySettings(course_id=course.id, campus_ranges=[], record_commands=True,
                                  snapshot_path="homework/{assignment}", similarity_threshold=60))  # fmt: skip
    session.commit()
    assert answer()["record_commands"] is True
    session.get(IntegritySettings, course.id).record_commands = False
    session.commit()
    assert answer()["record_commands"] is False


def test_commands_typed_through_real_sshd_name_their_login(folder):  # noqa: F811
    """sshd logs the login; the shell it starts (a terminal, as `ssh -tt`) sources the hook the agent installed
    (here through --rcfile: this machine's /etc is not a workspace's) and writes to a log in the test folder."""
    agent, log = folder / "agent", folder / "commands.jsonl"
    agent.mkdir()
    (agent / "cwc_commands.sh").write_text(HOOK.read_text().replace("/var/log/cwc/commands.jsonl", str(log)))
    install_hook(True, str(agent), str(folder / "cwc-commands.sh"), str(folder / "bash.bashrc"))
    arm_command_log(True, str(log))
    for name in ("host", "student"):
        _keygen(folder / name)
    (folder / "authorized_keys").write_text((folder / "student.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text(
        f"AuthorizedKeysFile {folder}/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"LogLevel VERBOSE\nListenAddress 127.0.0.1\nPort {port}\nHostKey {folder}/host\nUsePAM no\nPidFile none\n"
    )  # fmt: skip
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd_log = folder / "sshd.log"
    sshd = spawn_sshd(["/usr/sbin/sshd", "-D", "-f", str(folder / "sshd_config"), "-E", str(sshd_log)], log=sshd_log)
    try:
        remote = f"HISTFILE={folder}/history bash --rcfile {folder}/cwc-commands.sh -i"
        typed = "cd /tmp\necho hello > /dev/null\nexport API_KEY=abc123 && true\nexit\n"
        done = subprocess.run(["ssh", "-tt", "-p", str(port), "-i", str(folder / "student"), *OPTS, "root@127.0.0.1",
                               remote], input=typed, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for_logouts(sshd_log, 1)
    finally:
        sshd.terminate()
        sshd.wait(10)
    state: dict[str, object] = {}
    reader = SshLog(state, "/root", event)
    logins = [e for n, line in enumerate(sshd_log.read_text().splitlines())
              for e in reader.line(1_800_000_000 + n, "100", line)]  # fmt: skip
    assert [e["kind"] for e in logins] == ["ssh_login", "ssh_logout"], sshd_log.read_text()
    sessions = {**state["closed"], **state["open"]}  # type: ignore[dict-item]
    commands = scan_commands({}, sessions, event, time.time(), str(log))
    assert [c["details"]["line"] for c in commands] == ["cd /tmp", "echo hello > /dev/null",
                                                         "export API_KEY=[redacted] && true"]  # fmt: skip
    login = logins[0]["details"]
    assert {(c["details"]["session"], c["details"]["who"]) for c in commands} == {(login["session"], login["who"])}
    assert [c["details"]["cwd"] for c in commands] == ["/tmp"] * 3
    assert "abc123" in log.read_text() and all("abc123" not in str(c) for c in commands)  # redacted when sent


def test_lines_typed_in_a_staff_certificate_session_are_not_sent():
    sessions = {
        "10.0.0.5 4001": {"who": "student key SHA256:abc", "session": "4001-1800000000"},
        "10.0.0.9 4002": {"who": "staff certificate 'staff:3:Alex Rivera session:7'", "session": "4002-1800000001"},
    }
    records = [{"line": "ls", "ssh": f"{addr} 10.0.0.1 22", "at": 1_800_000_010} for addr in sessions]
    (only,) = command_events(records, sessions, event, 1_800_000_020)
    assert only["details"] == {"line": "ls", "cwd": "", "session": "4001-1800000000", "who": "student key SHA256:abc"}
