"""The EC2 debug recorder's and agent's pure parts: the forced command's words, the banner, the read-only mount
check, the upload loop's keep-or-drop rules and the KRL's rewrite-on-change (the real sshd runs them end to end
in tests/runtime/staff/test_debug_on_ec2.py)."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioning.agent import cwc_debugrec
from provisioning.agent.cwc_debug_shell import banner, parse_args, read_only_mount
from provisioning.debug_shell import recorder_command

UNTIL = datetime(2026, 10, 1, 12, 30, tzinfo=UTC)
CAST = b'{"version": 2, "width": 80, "height": 24, "timestamp": 1}\n[0.1, "i", "ls\\n"]\n'


def test_the_forced_command_carries_the_session_and_survives_any_name() -> None:
    line = recorder_command("D12", "view", UNTIL, "Sophie 'O\"Brien'\n; rm -rf ~", "/opt/agent")
    words = shlex.split(line)
    assert words[:4] == ["/usr/bin/python3", "-s", "-E", "/opt/agent/cwc_debug_shell.py"]
    label, mode, until, student = parse_args(words[4:])
    assert (label, mode, until) == ("D12", "view", int(UNTIL.timestamp()))
    assert student == "Sophie 'O\"Brien' ; rm -rf ~"  # one printable line, one argument
    with pytest.raises(ValueError):
        recorder_command("D12; id", "view", UNTIL, "x")
    with pytest.raises(ValueError):
        recorder_command("D12", "root", UNTIL, "x")


@pytest.mark.parametrize("argv", [[], ["D1", "view", "x", "S"], ["D1", "edit", "1", "S"], ["D-1", "view", "1", "S"]])
def test_malformed_words_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_args(argv)


def test_the_banner_names_the_student_session_mode_expiry_and_recording() -> None:
    text = banner("D12", "view", int(UNTIL.timestamp()), "Sophie Martin")
    assert "Debug session D12 on Sophie Martin's workspace" in text and "VIEW-ONLY" in text
    assert "Expires 2026-10-01 12:30 UTC" in text and "Everything typed and shown" in text
    assert "FULL CONTROL" in banner("D12", "full", int(UNTIL.timestamp()), "Sophie Martin")


def test_read_only_mount_reads_the_last_mount_on_the_point(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    line = "36 35 254:0 /home/sophie /home/cwc-view {opts} shared:1 - ext4 /dev/vda rw\n"
    info.write_text(line.format(opts="ro,nosuid,nodev,idmapped"))
    assert read_only_mount("/home/cwc-view", str(info))
    assert not read_only_mount("/home/other", str(info))
    info.write_text(line.format(opts="ro,nosuid") + line.format(opts="rw,nosuid"))
    assert not read_only_mount("/home/cwc-view", str(info))


def test_uploads_keep_what_the_tool_could_not_take_and_drop_what_it_refused(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    writing = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "cwc_debug_shell.py"])
    live = f"D4.1.{writing.pid}.part"  # a recorder still writing it
    while b"cwc_debug_shell.py" not in Path(f"/proc/{writing.pid}/cmdline").read_bytes():
        time.sleep(0.01)
    for name in ("D1.1.1.cast", "D2.1.1.cast", "D3.1.1.cast", live, f"D7.1.{os.getpid()}.part"):
        (spool / name).write_bytes(CAST)
    (tmp_path / "secret").write_bytes(CAST)
    os.link(tmp_path / "secret", spool / "D5.1.1.cast")  # a hard link to another file: not sent, dropped
    (spool / "D6.1.1.cast").symlink_to(tmp_path / "secret")  # a symbolic link: never followed, left alone
    answers = {"D1": 200, "D2": 503, "D3": 403, "D7": 200}
    sent: list[str] = []

    def post(url: str, data: bytes, token: str) -> int:
        sent.append(url.rsplit("/", 1)[1])
        assert token == "tok" and data == CAST
        return answers[url.rsplit("/", 1)[1]]

    cfg = {"url": "https://tool/api/agent/heartbeat", "token": "tok", "user": pwd.getpwuid(os.getuid()).pw_name}
    try:
        assert cwc_debugrec.upload_recordings(cfg, spool=str(spool), post=post) == 2
    finally:
        writing.kill()
        writing.wait()
    assert sent == ["D1", "D2", "D3", "D7"]  # D7's pid is no recorder (its recorder was killed): sent as it is
    assert sorted(p.name for p in spool.iterdir()) == ["D2.1.1.cast", live, "D6.1.1.cast"]
    assert (tmp_path / "secret").read_bytes() == CAST


def test_the_krl_is_rewritten_only_when_the_revoked_serials_change(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "ca")], check=True)
    paths = {"ca_path": str(tmp_path / "ca.pub"), "krl_path": str(tmp_path / "krl")}
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(argv)
        return subprocess.run(argv, **kw)  # type: ignore[call-overload,no-any-return]

    assert cwc_debugrec.write_krl([], run=run, **paths) and cwc_debugrec.write_krl([], run=run, **paths)
    assert len(calls) == 1  # unchanged: not rewritten
    assert cwc_debugrec.write_krl([7, 7, 12], run=run, **paths) and len(calls) == 2
    listed = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", str(tmp_path / "krl")], capture_output=True, text=True)
    assert "serial: 7" in listed.stdout and "serial: 12" in listed.stdout
    bad = {"ca_path": str(tmp_path / "missing.pub"), "krl_path": str(tmp_path / "krl")}
    assert not cwc_debugrec.write_krl([99], run=run, **bad)  # no CA: the old KRL stays
    assert "serial: 12" in subprocess.run(["ssh-keygen", "-Q", "-l", "-f", str(tmp_path / "krl")],
                                          capture_output=True, text=True).stdout  # fmt: skip
