"""The recorders on EC2, installed by the user data's own lines (tests/support/ec2_recorders.py): a real
`scp -O` against a stand-in OpenSSH sshd goes through the student's shell to the `scp` recorder, and the agent's
EC2 scan turns its record and sshd's lines into `transfer` events named by the login; curl, wget, tar and unzip
run as the student give `download` and `extract` events; and the EC2 collection end to end: sshd's real lines and
the scp records, spooled, POSTed to the app, in the activity table once however often they are sent."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioning.agent.cwc_agent import Spool, collect_activity, event, run_git_as
from provisioning.agent.cwc_scan import arm_tool_log, more_events
from provisioning.agent.cwc_toolwrap import TOOLS
from provisioning.userdata import UserDataInput, render_user_data
from tests.runtime.test_activity import _events, _with_token
from tests.support.budget import make_policy
from tests.support.ec2_recorders import Recorders, install_lines, install_recorders
from tests.support.ec2_sshd import USER, ensure_user, free_port, start_sshd, wait_for_logouts, write_as
from tests.support.outage import flask_post
from tests.support.serving import serve_in_thread

pytestmark = pytest.mark.xdist_group("ec2-accounts")

OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]  # fmt: skip


@pytest.fixture
def folder() -> Iterator[Path]:
    """World-traversable (the student reaches the recorders under it; sshd reads its files)."""
    root = Path(tempfile.mkdtemp(prefix="cwc-ec2-rec-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def user_data() -> str:
    return render_user_data(UserDataInput(
        workspace_id=42, agent_url="https://tool/api/agent/heartbeat", agent_token="t", os_user=USER,
        ssh_public_keys=(), course_slug="cs229", region="us-east-1", file_system_id="fs-1",
        access_point_id="fsap-1"))  # fmt: skip


def no_journal(argv, **kw):  # type: ignore[no-untyped-def]
    """No journald on this machine's stand-in: the agent reads auth.log; other commands (ss) run."""
    if argv[0] == "journalctl":
        return SimpleNamespace(returncode=127, stdout="")
    return subprocess.run(argv, **kw)


def as_auth_log(lines: list[str], at: float) -> str:
    """sshd's own lines (its -E log) as rsyslog writes them to /var/log/auth.log, one second apart."""
    stamp = lambda n: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at + n))  # noqa: E731
    return "".join(f"{stamp(n)} ip-10-0-0-5 sshd[700]: {line}\n" for n, line in enumerate(lines))


def stand_in(folder: Path) -> tuple[Path, Path]:
    """A stand-in EC2 instance: the recorders installed by the user data, the tool log armed by the agent, the
    student's key authorized. (home, tool log as the agent reads it)."""
    home = ensure_user()
    rec = install_recorders(folder / "root", user_data())
    arm_tool_log(True, str(rec.log))  # the agent (root) does this when the course collects activity
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "student")], check=True)
    write_as(USER, home, {".ssh/authorized_keys": (folder / "student.pub").read_bytes(), "hw/.keep": b""})
    return home, rec.log


def scp_session(folder: Path, home: Path) -> list[str]:
    """sshd under the recorders' namespace; `scp -O` uploads a file, two into a folder, and downloads one, as the
    student. sshd's log lines."""
    (folder / "data.csv").write_text("1,2\n3,4\n")
    (folder / "model.py").write_text("print('ok')\n")
    (folder / "sshd").mkdir(mode=0o755)
    prefix = tuple(install_recorders(folder / "root", user_data()).namespace())
    sshd = start_sshd(folder / "sshd", port=free_port(), workspace_id=42, ca_public_key="", prefix=prefix)
    try:
        scp = ["scp", "-O", "-P", str(sshd.port), "-i", str(folder / "student"), *OPTS]
        for argv in ([str(folder / "data.csv"), f"{USER}@127.0.0.1:data.csv"],
                     [str(folder / "data.csv"), str(folder / "model.py"), f"{USER}@127.0.0.1:hw/"],
                     [f"{USER}@127.0.0.1:data.csv", str(folder / "back.csv")]):  # fmt: skip
            done = subprocess.run([*scp, *argv], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr + sshd.log.read_text()
        wait_for_logouts(sshd.log, 3)
    finally:
        sshd.stop()
    assert (home / "hw" / "model.py").read_text() == "print('ok')\n"
    assert (folder / "back.csv").read_text() == "1,2\n3,4\n"
    return sshd.log.read_text().splitlines()


def test_old_protocol_scp_gives_transfer_events_named_by_the_login(folder):
    home, tool_log = stand_in(folder)
    assert "scp" in TOOLS and (folder / "root" / "usr-local" / "bin" / "scp").is_symlink()
    auth_log, state, now = folder / "auth.log", {"files": {}}, time.time()
    auth_log.write_text("")
    scan = lambda: more_events(str(home), state, [], now, event, True, run=no_journal, log=str(tool_log),  # noqa: E731
                               auth_log=str(auth_log))  # fmt: skip
    assert [e for e in scan() if e["kind"] != "jupyter"] == []  # collection starts: auth.log is read from here on
    lines = scp_session(folder, home)
    auth_log.write_text(as_auth_log(lines, now))
    events = [e for e in scan() if e["kind"] != "jupyter"]
    logins = [e["details"] for e in events if e["kind"] == "ssh_login"]
    assert len(logins) == 3 and [e["kind"] for e in events].count("ssh_logout") == 3
    transfers = [e["details"] for e in events if e["kind"] == "transfer"]
    assert [(t["direction"], t["path"], t["bytes"], t["exit"]) for t in transfers] == [
        ("upload", "data.csv", 8, 0), ("upload", "hw/data.csv", 8, 0), ("upload", "hw/model.py", 12, 0),
        ("download", "data.csv", 8, 0)]  # fmt: skip
    assert all(t["protocol"] == "scp" and t["seen"] == "command" for t in transfers)
    assert [t["session"] for t in transfers] == [logins[0]["session"], logins[1]["session"], logins[1]["session"],
                                                  logins[2]["session"]]  # fmt: skip  # each run's own login
    assert all(t["who"] == logins[0]["who"] and t["who"].startswith("student key SHA256:") for t in transfers)
    assert [e for e in scan() if e["kind"] != "jupyter"] == []  # each run reported once


def test_the_user_datas_own_lines_install_recorders_that_log_the_students_downloads_and_extractions(folder):
    text = user_data()
    lines = install_lines(text)
    assert "ln -sf /usr/local/lib/cwc-agent/cwc_toolwrap.py /usr/local/bin/$tool" in lines
    home, tool_log = stand_in(folder)
    bin_ = folder / "root" / "usr-local" / "bin"
    assert sorted(p.name for p in bin_.iterdir()) == sorted(TOOLS)
    assert all(os.readlink(bin_ / t) == "/usr/local/lib/cwc-agent/cwc_toolwrap.py" for t in TOOLS)
    info = tool_log.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode), stat.S_IMODE(tool_log.parent.stat().st_mode)) == (0, 0o622, 0o755)
    site = folder / "site"
    (site / "pkg" / "sub").mkdir(parents=True)
    (site / "pkg" / "sub" / "a.txt").write_text("a\n")
    (site / "pkg" / "c.txt").write_text("c\n")
    subprocess.run("cd pkg && zip -qr ../pkg.zip . && tar czf ../pkg.tgz sub", shell=True, cwd=site, check=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    thread = serve_in_thread(server)
    cfg = {"url": "http://tool/api/agent/heartbeat", "token": "t", "workspace_id": 42, "user": USER, "home": str(home)}
    sent: list[dict[str, object]] = []
    post = lambda url, body, token: (sent.extend(body["events"]), (200, {}))[1]  # noqa: E731  # the tool's answer
    auth_log = folder / "auth.log"
    auth_log.write_text("")
    collect = lambda: collect_activity(cfg, Spool(str(folder / "spool.jsonl")), str(folder / "scan.json"),  # noqa: E731
                                       time.time(), run_git_as(USER), post=post, ec2=True, tool_log=str(tool_log),
                                       sources={"run": no_journal, "auth_log": str(auth_log)})  # fmt: skip
    try:
        collect()  # the first scan: the state every later scan compares with
        url = f"http://127.0.0.1:{server.server_port}"
        done = Recorders(folder / "root").run_as(USER, home, (
            f"curl -sS -o data.zip '{url}/pkg.zip?token=secret' && wget -q {url}/pkg.tgz && unzip -q data.zip -d"
            " unzipped && mkdir untarred && tar xzf pkg.tgz -C untarred && /usr/bin/curl -s -o direct.zip"
            f" {url}/pkg.zip && echo done"))  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr
        sent.clear()
        collect()
    finally:
        server.shutdown()
        thread.join(10)
    zipped, tgz = (home / "data.zip").read_bytes(), (home / "pkg.tgz").read_bytes()
    downloads = sorted((e["details"] for e in sent if e["kind"] == "download"), key=lambda d: d["tool"])
    assert downloads == [
        {"tool": "curl", "url": f"{url}/pkg.zip", "path": "data.zip", "bytes": len(zipped),
         "sha256": hashlib.sha256(zipped).hexdigest(), "exit": 0},
        {"tool": "wget", "url": f"{url}/pkg.tgz", "path": "pkg.tgz", "bytes": len(tgz),
         "sha256": hashlib.sha256(tgz).hexdigest(), "exit": 0},
    ]  # fmt: skip  # /usr/bin/curl by its full path: not seen (the README says so)
    extracts = sorted((e["details"] for e in sent if e["kind"] == "extract"), key=lambda d: d["tool"])
    assert extracts == [
        {"tool": "tar", "archive": "pkg.tgz", "dest": "untarred", "files": 1, "exit": 0, "seen": "command",
         "paths": ["untarred/sub/a.txt"]},
        {"tool": "unzip", "archive": "data.zip", "dest": "unzipped", "files": 2, "exit": 0, "seen": "command",
         "paths": ["unzipped/c.txt", "unzipped/sub/a.txt"]},
    ]  # fmt: skip
    assert all(json.loads(line)["cwd"] == str(home) for line in tool_log.read_text().splitlines())


def test_ec2_collection_lands_logins_logouts_and_scp_transfers_in_the_activity_table_once(
    folder, client, make_workspace, session, course
):
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    home, tool_log = stand_in(folder)
    cfg = {"url": "http://localhost/api/agent/heartbeat", "token": f"tok-{emily.workspace.id}",
           "workspace_id": emily.workspace.id, "user": USER, "home": str(home)}  # fmt: skip
    tool, batches = flask_post(client, lambda: True), []

    def post(url, body, token):  # type: ignore[no-untyped-def]  # the agent's POST into the app; batches kept
        batches.append(body)
        return tool(url, body, token)

    auth_log, spool = folder / "auth.log", Spool(str(folder / "spool.jsonl"))
    auth_log.write_text("")
    collect = lambda: collect_activity(cfg, spool, str(folder / "scan.json"), time.time(), run_git_as(USER),  # noqa: E731
                                       post=post, ec2=True, tool_log=str(tool_log),
                                       sources={"run": no_journal, "auth_log": str(auth_log)})  # fmt: skip
    collect()  # collection starts: sshd's lines are read from here on
    lines = scp_session(folder, home)
    auth_log.write_text(as_auth_log(lines, time.time()))  # as rsyslog wrote them, one second apart
    batches.clear()
    assert collect() > 0 and spool.read() == []
    rows = _events(session, emily.workspace.id)
    kinds = [r.kind for r in rows]
    assert (kinds.count("ssh_login"), kinds.count("ssh_logout"), kinds.count("transfer")) == (3, 3, 4)
    logins = {r.details["session"]: r.details for r in rows if r.kind == "ssh_login"}
    for logout in (r.details for r in rows if r.kind == "ssh_logout"):
        assert logout["session"] in logins and logout["who"] == logins[logout["session"]]["who"]
        assert isinstance(logout["seconds"], int) and logout["seconds"] > 0
    transfers = [r.details for r in rows if r.kind == "transfer"]
    assert {(t["direction"], t["path"], t["bytes"]) for t in transfers} == {
        ("upload", "data.csv", 8), ("upload", "hw/data.csv", 8), ("upload", "hw/model.py", 12),
        ("download", "data.csv", 8)}  # fmt: skip
    assert all(t["protocol"] == "scp" and t["session"] in logins for t in transfers)
    (batch,) = batches
    status, answer = tool(cfg["url"].rsplit("/", 1)[0] + "/activity", batch, cfg["token"])  # the same batch again
    assert (status, answer["stored"], answer["duplicates"]) == (200, 0, len(batch["events"]))
    spool.add(batch["events"])  # ... and from the spool, as after a lost answer
    collect()
    assert len(_events(session, emily.workspace.id)) == len(rows)
