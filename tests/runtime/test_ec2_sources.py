"""What the agent reads on EC2: a real sshd (configured by the user data's drop-in, LogLevel VERBOSE) logs
logins with keys and staff certificates, a real sftp-server logs files, journald and auth.log are read after the
place kept, and a real process named Jupyter listening on a port is seen with `ss`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioning.agent.cwc_agent import event
from provisioning.agent.cwc_scan import jupyter_status, listening_ports, more_events
from provisioning.agent.cwc_sshlog import SshLog, journal_entries, syslog_entries
from provisioning.userdata import SFTP_LOGGING, UserDataInput, render_user_data
from tests.runtime.test_user_data_sshd import _heredoc
from tests.support.ec2_sshd import free_port, spawn_sshd, wait_for_logouts

OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]  # fmt: skip
KEY_ID = "staff:3:Alex Rivera session:7"


@pytest.fixture
def folder() -> Iterator[Path]:
    """World-traversable (sshd reads the authorized keys as the user it logs in)."""
    root = Path(tempfile.mkdtemp(prefix="cwc-sshd-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _keygen(path: Path, *extra: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path), *extra], check=True)


def _sshd_log(folder: Path) -> list[str]:
    """Run sshd with the user data's drop-in on a loopback port; log in as `nobody` three ways; its log lines."""
    for name in ("host", "student", "stranger", "ca"):
        _keygen(folder / name)
    _keygen(folder / "staff")
    subprocess.run(["ssh-keygen", "-q", "-s", str(folder / "ca"), "-I", KEY_ID, "-n", "ws42", "-z", "7",
                    "-V", "-5m:+30m", str(folder / "staff.pub")], check=True)  # fmt: skip
    user_data = render_user_data(UserDataInput(
        workspace_id=42, agent_url="https://tool/api/agent/heartbeat", agent_token="t", os_user="nobody",
        ssh_public_keys=(), course_slug="cs229", region="us-east-1", file_system_id="fs-1",
        access_point_id="fsap-1", ca_public_key=(folder / "ca.pub").read_text()))  # fmt: skip
    (folder / "cwc_user_ca.pub").write_text(_heredoc(user_data, "CWC_CA"))
    (folder / "cwc_banner").write_text(_heredoc(user_data, "CWC_BANNER"))
    (folder / "cwc_principals").mkdir()
    (folder / "cwc_principals" / "nobody").write_text("ws42\n")
    (folder / "authorized_keys").write_text((folder / "student.pub").read_text())
    port = free_port()
    (folder / "60-cwc.conf").write_text(_heredoc(user_data, "CWC_SSHD").replace("/etc/ssh/", f"{folder}/"))
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(folder / "cwc_revoked.krl")], check=True)  # as the user data
    (folder / "sshd_config").write_text(  # the first value wins: these come before the drop-in's
        f"AuthorizedKeysFile {folder}/authorized_keys\nStrictModes no\nInclude {folder}/60-cwc.conf\n"
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {folder}/host\nUsePAM no\nPidFile none\n")  # fmt: skip
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    sshd = spawn_sshd(["/usr/sbin/sshd", "-D", "-f", str(folder / "sshd_config"), "-E", str(log)], log=log)
    try:
        for key, extra in (("student", []), ("staff", ["-o", f"CertificateFile={folder}/staff-cert.pub"]),
                           ("stranger", [])):  # fmt: skip
            subprocess.run(["ssh", "-p", str(port), "-i", str(folder / key), *OPTS, *extra, "nobody@127.0.0.1",
                            "true"], capture_output=True, timeout=30)  # fmt: skip  # nobody's shell refuses: fine
        wait_for_logouts(log, 2)  # the student's and the staff member's; the stranger never logged in
    finally:
        sshd.terminate()
        sshd.wait(10)
    return log.read_text().splitlines()


def test_real_sshd_lines_give_logins_with_key_or_certificate_and_logouts(folder):
    lines = _sshd_log(folder)
    state: dict[str, object] = {}
    events = []
    for n, line in enumerate(lines):
        events += SshLog(state, "/home/ubuntu", event).line(1_800_000_000 + n, "100", line)
    kinds = [e["kind"] for e in events]
    assert kinds == ["ssh_login", "ssh_logout", "ssh_login", "ssh_logout"], lines  # the stranger: refused, no login
    student, staff = events[0]["details"], events[2]["details"]
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(folder / "student.pub")], capture_output=True,
                                 text=True, check=True).stdout.split()[1]  # fmt: skip
    assert student["who"] == f"student key {fingerprint}" and student["source_ip"] == "127.0.0.1"
    assert staff["who"] == f"staff certificate {KEY_ID!r}"
    logout = events[1]["details"]
    assert logout["who"] == student["who"] and logout["session"] == student["session"] and logout["seconds"] >= 0
    assert any("Failed publickey for nobody" in line for line in lines)  # refused and logged by sshd itself


def test_real_sftp_server_lines_give_one_transfer_per_file(folder):
    home = folder / "home"
    home.mkdir()
    (folder / "up.txt").write_text("hello\n")
    batch = f"put {folder}/up.txt up.txt\nget up.txt {folder}/down.txt\nls\n"
    done = subprocess.run(["sftp", "-D", "/usr/lib/openssh/sftp-server -e -l INFO", "-b", "-"], input=batch,
                          capture_output=True, text=True, cwd=home, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = SshLog({}, str(home), event)
    events = [e for line in done.stderr.splitlines() for e in log.line(1_800_000_000, "200", line)]
    assert [(e["details"]["direction"], e["details"]["path"], e["details"]["bytes"]) for e in events] == [
        ("upload", "up.txt", 6), ("download", "up.txt", 6)]  # fmt: skip
    assert all(e["kind"] == "transfer" and e["details"]["protocol"] == "sftp" for e in events)


def test_journald_is_read_after_the_cursor_and_not_before_collection_started():
    entries = [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": "1800000000000000", "_PID": "9", "SYSLOG_IDENTIFIER": "sshd",
         "MESSAGE": "Accepted publickey for ubuntu from 203.0.113.5 port 50000 ssh2: ED25519 SHA256:abc"},
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": "1800000090000000", "_PID": "9", "SYSLOG_IDENTIFIER": "sshd",
         "MESSAGE": "Disconnected from user ubuntu 203.0.113.5 port 50000"},
        {"__CURSOR": "c3", "__REALTIME_TIMESTAMP": "1800000095000000", "_PID": "77", "SYSLOG_IDENTIFIER": "sshd",
         "_UID": "1000", "MESSAGE": "Accepted publickey for ubuntu from 6.6.6.6 port 1 ssh2: ED25519 SHA256:forged"},
    ]  # fmt: skip
    for entry in entries[:2]:
        entry["_UID"] = "0"  # sshd logs as root
    calls = []

    def run(argv, **kw):  # type: ignore[no-untyped-def]  # journalctl's answer to --since or --after-cursor
        calls.append(argv)
        if "--since" in argv:
            since = int(argv[argv.index("--since") + 1].lstrip("@"))
            shown = [e for e in entries if int(e["__REALTIME_TIMESTAMP"]) >= since * 1_000_000]
        else:
            after = argv[argv.index("--after-cursor") + 1]
            shown = entries[next((i + 1 for i, e in enumerate(entries) if e["__CURSOR"] == after), 0) :]
        return SimpleNamespace(returncode=0, stdout="".join(json.dumps(e) + "\n" for e in shown))

    assert journal_entries("", 1_800_000_100, run) == ([], "")  # collection started after both: nothing
    assert "-t" in calls[0] and "sshd-session" in calls[0] and "sftp-server" in calls[0]
    late, cursor = journal_entries("", 1_800_000_050, run)  # type: ignore[misc]
    assert [msg.split()[0] for _, _, msg in late] == ["Disconnected"] and cursor == "c3"
    assert journal_entries("c3", 0, run) == ([], "c3")  # nothing new after the cursor
    got, cursor = journal_entries("c0", 0, run)  # type: ignore[misc]  # the student's `logger -t sshd`: skipped
    assert cursor == "c3" and [(at, pid) for at, pid, _ in got] == [(1_800_000_000.0, "9"), (1_800_000_090.0, "9")]
    log = SshLog({}, "/home/ubuntu", event)
    events = [e for at, pid, msg in got for e in log.line(at, pid, msg)]
    assert [e["details"].get("seconds") for e in events] == [None, 90]
    assert events[1]["details"]["who"] == "student key SHA256:abc"
    assert journal_entries("c0", 0, lambda *a, **k: SimpleNamespace(returncode=127, stdout="")) is None


def test_auth_log_is_read_from_the_end_then_line_by_line(folder):
    log = folder / "auth.log"
    log.write_text("2026-12-05T10:00:00.000000+00:00 ip-10-0-0-5 sshd[7]: Accepted publickey for ubuntu from "
                   "198.51.100.1 port 4000 ssh2: ED25519 SHA256:old\n")  # fmt: skip
    state: dict[str, object] = {}
    assert syslog_entries(str(log), state, 0.0) == []  # before collection started: not reported
    with log.open("a") as f:
        f.write("2026-12-05T10:05:00.000000+00:00 ip-10-0-0-5 sshd[8]: Accepted publickey for ubuntu from "
                "198.51.100.2 port 4001 ssh2: ED25519 SHA256:new\n"
                "2026-12-05T10:05:01.000000+00:00 ip-10-0-0-5 CRON[9]: pam_unix(cron:session): session opened\n"
                "2026-12-05T10:05:02.000000+00:00 ip-10-0-0-5 sshd[8]: Disconnected from")  # fmt: skip
    got = syslog_entries(str(log), state, 0.0)
    assert [(pid, msg.split(" from ")[1][:12]) for _, pid, msg in got] == [("8", "198.51.100.2")]
    assert got[0][0] == 1796465100.0  # 2026-12-05T10:05:00Z; the half-written line waits for the next read


def test_jupyter_is_seen_with_its_port_and_reported_when_it_starts_and_stops(folder):
    port = free_port()
    server = f"import http.server as h; h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()"
    proc = subprocess.Popen(["bash", "-c", f'exec -a jupyter-lab {sys.executable} -c "{server}"'])
    try:
        for _ in range(100):
            if jupyter_status()["ports"]:
                break
            time.sleep(0.05)
        status = jupyter_status()
        assert status["running"] is True and port in status["ports"]
        state = {"files": {}, "transfers": {}}
        no_journal = lambda argv, **kw: (SimpleNamespace(returncode=1, stdout="") if argv[0] == "journalctl"  # noqa: E731
                                         else subprocess.run(argv, **kw))  # fmt: skip
        found = more_events(str(folder), state, [], 1_800_000_000, event, True, run=no_journal, log="/nonexistent")
        assert [(e["kind"], e["details"]["running"]) for e in found] == [("jupyter", True)]
        assert more_events(str(folder), state, [], 1_800_000_060, event, True, run=no_journal, log="/x") == []
    finally:
        proc.kill()
        proc.wait()
    if not any(b"jupyter" in _cmdline(p) for p in _pids()):  # another test's may run
        later = more_events(str(folder), state, [], 1_800_000_120, event, True, run=no_journal, log="/x")
        assert [(e["kind"], e["details"]) for e in later] == [("jupyter", {"running": False, "ports": []})]


def _cmdline(pid: str) -> bytes:
    """A process's command line; empty once it has exited (it may between listing /proc and reading it)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pids() -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and (p / "cmdline").exists():
            out.append(p.name)
    return out


def test_ss_lines_name_only_the_jupyter_processes_ports():
    ss = ('LISTEN 0 128 127.0.0.1:8888 0.0.0.0:* users:(("python3",pid=4242,fd=5))\n'
          'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=600,fd=3))\n'
          'LISTEN 0 128 [::1]:8889 [::]:* users:(("python3",pid=4242,fd=6))\n')  # fmt: skip
    assert listening_ports(ss, {4242}) == [8888, 8889]
    assert listening_ports(ss, {1}) == []


def test_user_data_turns_on_sftp_file_logging_in_the_real_debian_config(folder):
    main = folder / "sshd_config"
    shutil.copy("/etc/ssh/sshd_config", main)
    command = SFTP_LOGGING.replace("/etc/ssh/sshd_config", str(main))
    for _ in range(2):  # idempotent: a second boot's run changes nothing
        subprocess.run(["bash", "-c", command], check=True)
    subsystems = [line for line in main.read_text().splitlines() if line.startswith("Subsystem")]
    assert len(subsystems) == 1 and subsystems[0].endswith("sftp-server -l INFO")
    _keygen(folder / "host")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    main.write_text(main.read_text().replace("Include /etc/ssh/sshd_config.d/*.conf", f"HostKey {folder}/host"))
    done = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(main)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "subsystem sftp /usr/lib/openssh/sftp-server -l INFO" in done.stdout


def test_forged_sftp_server_lines_in_the_journal_are_refused():
    close = 'close "/home/ubuntu/answers.py" bytes read 0 written 4096'
    base = {"__REALTIME_TIMESTAMP": "1800000000000000", "SYSLOG_IDENTIFIER": "sftp-server", "_UID": "1000",
            "MESSAGE": close}  # fmt: skip
    entries = [
        {**base, "__CURSOR": "c1", "_PID": "11", "_COMM": "logger", "_EXE": "/usr/bin/logger"},  # logger -t sftp-server
        {**base, "__CURSOR": "c2", "_PID": "12", "_COMM": "sftp-server", "_EXE": "/usr/bin/python3.12"},  # a script
        {**base, "__CURSOR": "c3", "_PID": "13", "_COMM": "sftp-server"},  # no executable: not trusted
        {
            **base,
            "__CURSOR": "c4",
            "_PID": "14",
            "SYSLOG_IDENTIFIER": "internal-sftp",
            "_COMM": "bash",
            "_EXE": "/usr/bin/bash",
        },  # fmt: skip
        {**base, "__CURSOR": "c5", "_PID": "15", "_COMM": "sftp-server", "_EXE": "/usr/lib/openssh/sftp-server"},
        {
            **base,
            "__CURSOR": "c6",
            "_PID": "16",
            "SYSLOG_IDENTIFIER": "internal-sftp",
            "_COMM": "sshd-session",
            "_EXE": "/usr/lib/openssh/sshd-session",
        },  # fmt: skip
    ]
    run = lambda argv, **kw: SimpleNamespace(returncode=0, stdout="".join(json.dumps(e) + "\n" for e in entries))  # noqa: E731
    got, cursor = journal_entries("c0", 0, run)  # type: ignore[misc]
    assert [pid for _, pid, _ in got] == ["15", "16"] and cursor == "c6"  # OpenSSH's own programs only
    log = SshLog({}, "/home/ubuntu", event)
    every = [log.line(at, pid, msg) for at, pid, msg in got]
    assert [e[0]["details"]["path"] for e in every] == ["answers.py", "answers.py"]
    forged = [(1_800_000_000.0, e["_PID"], close) for e in entries[:4]]
    assert all(SshLog({}, "/home/ubuntu", event).line(*f) for f in forged)  # each would have been a transfer
