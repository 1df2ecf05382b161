"""Debug sessions on EC2, against a REAL sshd on loopback configured by the user data's own lines (drop-in,
course CA, principals, the view user) and the agent bundle's recorder: a view-only certificate logs in as the view
user, sees the banner, reads the student's home and cannot write it; full control writes; an expired certificate
is refused; the student's own key does not open the view user; "End session" ends the shell through the agent;
the agent uploads the recordings through its API and the instructor's replay page shows what was typed."""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import DebugRecording, DebugSession, StaffSshCert
from classroom.services.debug_recordings import recording_key
from classroom.services.debug_sessions import end_session, open_labels, open_session, parse_request
from provisioning import userdata
from provisioning.agent import cwc_debugrec
from provisioning.agent.cwc_cast import parse_cast
from provisioning.agent.cwc_debug_shell import SPOOL, VIEW_USER
from provisioning.agent_service import issue_agent_token
from provisioning.backend import CloudError
from provisioning.ssh_ca import ensure_course_ca
from provisioning.ssh_keys import generate_key_pair
from tests.runtime.staff.support import TRAIN, Cast, post, set_up_course
from tests.support.budget import make_running
from tests.support.ec2_sshd import free_port, spawn_sshd
from tests.support.os_users import accounts_lock

# The OS accounts, homes and spool these tests share (tests/support/ec2_sshd.py, cwc-view): one worker at a time.
pytestmark = pytest.mark.xdist_group("ec2-accounts")

STUDENT = "sophie17b"  # the workspace's OS user on this "instance"
HOME = Path("/home") / STUDENT


@dataclass
class Host:
    """The sshd standing in for the workspace, and where its files are."""

    port: int
    root: Path
    cast: Cast
    student_key: Path
    spooled_before: frozenset[str]  # the shared spool's files from earlier runs (labels repeat across tests)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _heredoc(text: str, marker: str) -> str:
    match = re.search(rf"<<'{marker}'\n(.*?)\n?{marker}\n", text, re.S)
    assert match, marker
    return match.group(1) + "\n"


def _install(user_data: str, root: Path) -> Path:
    """Run the user data's debug-session lines and write its sshd files, with /etc/ssh/ moved under `root`."""
    debug = user_data[user_data.index("# Staff debug sessions") : user_data.index("# SSH: the student's keys")]
    with accounts_lock():  # its useradd/usermod of cwc-view
        subprocess.run(["bash", "-euo", "pipefail", "-c", debug.replace("/etc/ssh/", f"{root}/")], check=True)
    (root / "cwc_user_ca.pub").write_text(_heredoc(user_data, "CWC_CA"))
    (root / "cwc_banner").write_text(_heredoc(user_data, "CWC_BANNER"))
    student = re.search(r"echo '(ws\d+)' > /etc/ssh/cwc_principals/(\S+)", user_data)
    assert student and student.group(2) == STUDENT
    (root / "cwc_principals" / STUDENT).write_text(student.group(1) + "\n")
    (root / "60-cwc.conf").write_text(_heredoc(user_data, "CWC_SSHD").replace("/etc/ssh/", f"{root}/"))
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host"))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    main = root / "sshd_config"
    main.write_text(f"Include {root}/60-cwc.conf\nHostKey {root}/host\nUsePAM no\nPidFile {root}/sshd.pid\n"
                    "Subsystem sftp /usr/lib/openssh/sftp-server\n")  # fmt: skip
    return main


def _student_account(student_public: str) -> None:
    """The workspace's student: an OS user with a home holding train.py and their own key (idempotent)."""
    with accounts_lock():
        if subprocess.run(["id", STUDENT], capture_output=True).returncode != 0:
            _run("useradd", "-m", "-s", "/bin/bash", STUDENT)
        _run("usermod", "-p", "*", STUDENT)
    for name in ("train.py", "fix.txt"):
        (HOME / name).unlink(missing_ok=True)
    (HOME / "train.py").write_text(TRAIN)
    (HOME / ".ssh").mkdir(mode=0o700, exist_ok=True)
    (HOME / ".ssh" / "authorized_keys").write_text(student_public + "\n")
    _run("chown", "-R", f"{STUDENT}:{STUDENT}", str(HOME))
    HOME.chmod(0o750)


def _agent_home(root: Path) -> Path:
    """The agent bundle, unpacked as the user data does (readable by the session users)."""
    home = root / "agent"
    home.mkdir(mode=0o755)
    with tarfile.open(fileobj=io.BytesIO(userdata.agent_bundle()), mode="r:gz") as tar:
        tar.extractall(home, filter="data")
    for path in home.iterdir():
        path.chmod(0o755)
    return home


@pytest.fixture
def host(app, client, canvas, session, backend, runtime, settings, monkeypatch) -> Iterator[Host]:  # type: ignore[no-untyped-def]
    cast = set_up_course(client, canvas, session, backend, runtime)
    ca = ensure_course_ca(session, cast.ws.course_id, settings=settings)
    session.commit()
    root = Path(tempfile.mkdtemp(prefix="cwc-h17b-", dir="/run"))  # sshd's StrictModes: root-owned, not /tmp
    root.chmod(0o755)
    student_private, student_public = generate_key_pair("sophie-laptop")
    _student_account(student_public)
    monkeypatch.setattr(userdata, "AGENT_HOME", str(_agent_home(root)))  # the certificates' forced command
    text = userdata.render_user_data(userdata.UserDataInput(
        workspace_id=cast.ws.id, agent_url="https://tool/api/agent/heartbeat", agent_token="t", os_user=STUDENT,
        ssh_public_keys=(student_public,), course_slug="cs229", region="us-east-1", file_system_id="fs-1",
        access_point_id="fsap-1", ca_public_key=ca.public_key))  # fmt: skip
    config = _install(text, root)
    assert cwc_debugrec.ensure_view_mount(str(HOME), STUDENT) in ("mounted", "already")
    key = root / "student_key"
    key.write_text(student_private)
    key.chmod(0o600)
    port = free_port()
    log = root / "sshd.log"  # read by spawn_sshd's failure message; a pipe nobody read could fill and block sshd
    sshd = spawn_sshd(["/usr/sbin/sshd", "-D", "-E", str(log), "-f", str(config),
                       "-o", f"ListenAddress=127.0.0.1:{port}"], log=log)  # fmt: skip
    before = frozenset(os.listdir(SPOOL))
    try:
        yield Host(port, root, cast, key, before)
    finally:
        sshd.terminate()
        sshd.wait(10)
        _end_our_recorders(root)
        for name in set(os.listdir(SPOOL)) - before:
            Path(SPOOL, name).unlink(missing_ok=True)
        subprocess.run(["umount", "-l", f"/home/{VIEW_USER}"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _end_our_recorders(root: Path) -> None:
    """Sessions outlive sshd's listener: end the recorders this test's agent folder started (by pid)."""
    for pid, _ in cwc_debugrec.recorders():
        try:
            if str(root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def _open(app, client, host: Host, mode: str = "view") -> tuple[str, Path, Path]:  # type: ignore[no-untyped-def]
    """Alex (head TA) opens a session through the debug page; his key and the certificate it shows."""
    private, public = generate_key_pair("alex")
    form = {"reason": "training crashes", "public_key": public, "mode": mode, "where": "ssh"}
    if mode == "full":
        form["full_reason"] = "fix the batch size"
    resp = post(app, client, f"/app/students/{host.cast.sophie.id}/debug/ssh", host.cast.tokens["head_ta"], **form)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    page = resp.get_data(as_text=True)
    cert = page.split('<code id="ssh-cert">', 1)[1].split("</code>", 1)[0]
    label = re.search(r'id="session-opened">Debug session (D\d+)', page)
    assert label
    return _credentials(host, private, cert, label.group(1))


def _credentials(host: Host, private: str, cert: str, label: str) -> tuple[str, Path, Path]:
    """Alex's key and certificate as files, as he saves them."""
    key = host.root / f"alex-{label}"
    key.write_text(private)
    key.chmod(0o600)
    (host.root / f"alex-{label}-cert.pub").write_text(cert.strip() + "\n")
    return label, key, host.root / f"alex-{label}-cert.pub"


def _ssh(host: Host, user: str, key: Path, cert: Path | None, command: str = "", *, tty_input: str = "",
         subsystem: bool = False, extra: list[str] | None = None, timeout: float = 60
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    argv = ["ssh", "-F", "/dev/null", "-p", str(host.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR"]  # fmt: skip
    if cert is not None:
        argv += ["-o", f"CertificateFile={cert}"]
    if tty_input:
        argv.append("-tt")
    if subsystem:
        argv.append("-s")
    argv += extra or []
    argv += [f"{user}@127.0.0.1", *([command] if command else [])]
    return subprocess.run(argv, input=tty_input, capture_output=True, text=True, timeout=timeout)


def _spooled(host: Host, label: str) -> list[Path]:
    """Move this test's finished recordings of the session out of the shared spool into the test's own."""
    into = host.root / "spool"
    into.mkdir(exist_ok=True)
    moved = []
    for name in sorted(set(os.listdir(SPOOL)) - host.spooled_before):
        if name.startswith(label + ".") and name.endswith(".cast"):
            moved.append(Path(shutil.move(os.path.join(SPOOL, name), into / name)))
    return moved


def _agent_post(client):  # type: ignore[no-untyped-def]
    def post_cast(url: str, data: bytes, token: str) -> int:
        path = url.split("//", 1)[1].split("/", 1)[1]
        resp = client.post("/" + path, data=data, headers={"Authorization": f"Bearer {token}",
                                                           "Content-Type": "application/x-asciicast"})  # fmt: skip
        return int(resp.status_code)

    return post_cast


def test_view_only_reads_cannot_write_and_the_uploaded_recordings_replay(app, client, session, backend, host):  # type: ignore[no-untyped-def]
    label, key, cert = _open(app, client, host)
    read = _ssh(host, VIEW_USER, key, cert, "cat train.py && id -un")
    assert read.returncode == 0, read.stderr
    assert "batch_size = 4096" in read.stdout and VIEW_USER in read.stdout
    assert f"Debug session {label} on Sophie Martin's workspace" in read.stderr
    assert "VIEW-ONLY" in read.stderr and "Everything typed and shown in this session is recorded" in read.stderr
    write = _ssh(host, VIEW_USER, key, cert, "echo broken >> train.py")
    assert write.returncode != 0 and "Read-only file system" in write.stderr
    assert (HOME / "train.py").read_text() == TRAIN
    shell = _ssh(host, VIEW_USER, key, cert, tty_input="grep batch_size train.py\nexit\n")
    assert shell.returncode == 0 and "4096" in shell.stdout and "VIEW-ONLY" in shell.stdout
    assert _ssh(host, STUDENT, key, cert, "true").returncode == 255  # the view principal never opens the student
    sftp = _ssh(host, VIEW_USER, key, cert, "sftp", subsystem=True)  # what sftp and scp (OpenSSH 9) ask for
    assert sftp.returncode == 1 and sftp.stdout == ""  # refused by the recorder (sshd drops a subsystem's stderr)

    ws = host.cast.ws
    session.refresh(ws)
    token = issue_agent_token(ws)
    session.commit()
    files = _spooled(host, label)
    assert len(files) == 3 and all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)
    cfg = {"url": "https://tool/api/agent/heartbeat", "token": token, "user": STUDENT}
    assert cwc_debugrec.upload_recordings(cfg, spool=str(host.root / "spool"), post=_agent_post(client)) == 3
    assert not list((host.root / "spool").glob("*.cast"))  # taken by the tool: removed
    ds = session.get(DebugSession, int(label[1:]))
    rows = session.scalars(select(DebugRecording).where(DebugRecording.debug_session_id == ds.id)).all()
    casts = [parse_cast(backend.get_private_object(r.s3_key)) for r in rows]
    typed = [c.typed() for c in casts]
    assert any("cat train.py" in t for t in typed) and any("echo broken >> train.py" in t for t in typed)
    assert any("grep batch_size train.py" in t for t in typed)
    assert all(r.s3_key.startswith("courses/") and f"/archives/debug/{label}/" in r.s3_key for r in rows)
    listing = client.get(f"/app/debug-sessions/{ds.id}/recordings", query_string={"t": host.cast.tokens["instructor"]})
    urls = re.findall(r'href="([^"]*/recordings/\d+\?[^"]*)"', listing.get_data(as_text=True))
    replays = [client.get(u.replace("&amp;", "&")).get_data(as_text=True) for u in urls]
    assert len(replays) == 3 and any("grep batch_size train.py" in r for r in replays)


def test_full_control_writes_and_expired_certificates_are_refused(app, client, session, settings, host):  # type: ignore[no-untyped-def]
    label, key, cert = _open(app, client, host, mode="full")
    done = _ssh(host, STUDENT, key, cert, "echo 'batch_size = 64' > fix.txt && id -un")
    assert done.returncode == 0, done.stderr
    assert "FULL CONTROL" in done.stderr and STUDENT in done.stdout
    assert (HOME / "fix.txt").read_text() == "batch_size = 64\n" and (HOME / "fix.txt").owner() == STUDENT
    assert _ssh(host, VIEW_USER, key, cert, "true").returncode == 255  # a full-control certificate is not a view one
    staff = host.cast.people["head_ta"]
    for mode in ("view", "full"):
        private, public = generate_key_pair("alex-late")
        req = parse_request("still broken", mode, "fix it" if mode == "full" else "", "1")
        line, ds = open_session(session, settings=settings, ws=host.cast.ws, staff=staff, public_key=public, req=req,
                                now=utcnow() - timedelta(minutes=3))  # fmt: skip
        session.commit()
        _, old_key, old_cert = _credentials(host, private, line, f"D{ds.id}")
        refused = _ssh(host, VIEW_USER if mode == "view" else STUDENT, old_key, old_cert, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, mode


def test_the_students_own_key_does_not_open_the_view_user(host):  # type: ignore[no-untyped-def]
    own = _ssh(host, STUDENT, host.student_key, None, "id -un")
    assert own.returncode == 0 and own.stdout.strip() == STUDENT
    view = _ssh(host, VIEW_USER, host.student_key, None, "id -un")
    assert view.returncode == 255 and "Permission denied" in view.stderr


def _processes() -> str:
    return subprocess.run(["ps", "-eo", "pid,ppid,sid,user,args"], capture_output=True, text=True).stdout


def test_end_session_ends_the_shell_and_revokes_the_certificate_through_the_agent(app, client, session, host):  # type: ignore[no-untyped-def]
    label, key, cert = _open(app, client, host)
    argv = ["ssh", "-F", "/dev/null", "-p", str(host.port), "-i", str(key), "-o", f"CertificateFile={cert}",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-tt", f"{VIEW_USER}@127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"sleep 600\n")
    proc.stdin.flush()
    for _ in range(100):  # the recorder and its shell are up
        if any(lbl == label for _, lbl in cwc_debugrec.recorders()):
            break
        time.sleep(0.1)
    time.sleep(1)
    ds = session.get(DebugSession, int(label[1:]))
    ws = host.cast.ws
    session.refresh(ws)
    token = issue_agent_token(ws)
    session.commit()

    def heartbeat() -> dict[str, list[object]]:  # what the tool answers the agent
        resp = client.post(
            "/api/agent/heartbeat", json={"workspace_id": ws.id}, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 200
        return dict(resp.get_json())

    krl = {"ca_path": str(host.root / "cwc_user_ca.pub"), "krl_path": str(host.root / "cwc_revoked.krl")}
    answer = heartbeat()
    assert answer["debug_open"] == [label] and answer["revoked_serials"] == []
    assert cwc_debugrec.end_closed(answer["debug_open"]) == []  # still open: untouched
    assert cwc_debugrec.write_krl(answer["revoked_serials"], **krl)
    assert _ssh(host, VIEW_USER, key, cert, "true").returncode == 0  # the certificate still opens sessions
    assert proc.poll() is None
    end_session(session, ds, actor_person_id=host.cast.people["head_ta"].id, why="ended by Alex")
    session.commit()
    answer = heartbeat()
    assert answer["debug_open"] == [] == open_labels(session, ws.id)
    assert answer["revoked_serials"] == [session.get(StaffSshCert, ds.cert_id).serial]
    assert cwc_debugrec.end_closed(answer["debug_open"]) == [label], _processes()
    assert cwc_debugrec.write_krl(answer["revoked_serials"], **krl)
    refused = _ssh(host, VIEW_USER, key, cert, "true")  # sshd's RevokedKeys: before the certificate's expiry
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    out, _ = proc.communicate(timeout=30)
    assert b"Debug session ended: ended by the tool" in out
    assert not any(lbl == label for _, lbl in cwc_debugrec.recorders())
    files = _spooled(host, label)  # the shell that was ended, and the `true` run while the session was open
    recorded = sorted((parse_cast(f.read_bytes()) for f in files), key=lambda c: "sleep 600" in c.typed())
    assert len(recorded) == 2 and recorded[0].typed() == "true\n"
    assert "sleep 600" in recorded[1].typed() and "ended by the tool" in recorded[1].shown()


def test_the_upload_route_refuses_a_wrong_token_another_workspace_and_garbage(client, session, settings, backend, host):  # type: ignore[no-untyped-def]
    ws = host.cast.ws
    session.refresh(ws)
    token = issue_agent_token(ws)
    session.commit()
    private, public = generate_key_pair("alex")
    staff = host.cast.people["head_ta"]
    _, ds = open_session(session, settings=settings, ws=ws, staff=staff, public_key=public,
                         req=parse_request("look", "view", "", "30"))  # fmt: skip
    session.commit()
    label = f"D{ds.id}"
    body = b'{"version": 2, "width": 80, "height": 24, "timestamp": 1}\n[0.1, "i", "ls\\n"]\n'
    send = _agent_post(client)
    url = f"https://tool/api/agent/debug-recordings/{label}"
    assert send(url, body, "not-the-token") == 403
    assert send(url, b"not a cast", token) == 400
    david = make_running(session, ws.course_id, host.cast.people["other_student"].id, utcnow())
    david.instance_id = "i-david"
    _, theirs = open_session(session, settings=settings, ws=david, staff=staff, public_key=public,
                             req=parse_request("look", "view", "", "30"))  # fmt: skip
    session.commit()
    # another workspace's session, and no session at all
    for other in (f"D{theirs.id}", "D999999", "D\u00b2", "D" + "9" * 12, "D-1", "d1", "%00"):
        assert send(f"https://tool/api/agent/debug-recordings/{other}", body, token) == 404, other
    assert session.scalar(select(DebugRecording)) is None  # nothing listed ...
    key = recording_key(ws.course_id, label, f"ec2-{hashlib.sha256(body).hexdigest()[:32]}")
    with pytest.raises(CloudError):  # ... and nothing stored
        backend.get_private_object(key)
    assert send(url, body, token) == 200 and send(url, body, token) == 200  # a retry is stored once
    assert len(session.scalars(select(DebugRecording)).all()) == 1
    assert parse_cast(backend.get_private_object(key)).typed() == "ls\n"


def _drop_view_rules() -> None:
    for tool in ("iptables", "ip6tables"):
        rule = cwc_debugrec.view_firewall_rule()
        while subprocess.run([tool, "-D", *rule], capture_output=True).returncode == 0:
            pass


def test_a_view_only_session_cannot_reach_the_students_local_servers(app, client, host):  # type: ignore[no-untyped-def]
    if shutil.which("iptables") is None:
        pytest.fail("iptables is not installed: apt-get install iptables (.ci/run installs it; EC2 images have it)")
    with socket.socket() as server:  # the student's Jupyter, say
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo reached"
        try:
            label, key, cert = _open(app, client, host)
            tunnel = _ssh(host, VIEW_USER, key, cert, extra=["-W", f"127.0.0.1:{port}"])  # sshd's Match: no tunnels
            assert tunnel.returncode == 255 and "stdio forwarding failed" in tunnel.stderr
            assert cwc_debugrec.ensure_view_firewall() and cwc_debugrec.ensure_view_firewall()
            listed = subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True).stdout
            assert listed.count(f"--uid-owner {pwd.getpwnam(VIEW_USER).pw_uid}") == 1  # idempotent
            view = _ssh(host, VIEW_USER, key, cert, probe)
            assert view.returncode != 0 and "reached" not in view.stdout, view
            _, full_key, full_cert = _open(app, client, host, mode="full")
            full = _ssh(host, STUDENT, full_key, full_cert, probe)
            assert full.returncode == 0 and "reached" in full.stdout  # the rule is the view user's only
        finally:
            _drop_view_rules()


def test_killing_the_recorder_does_not_hide_the_session(app, client, session, backend, host):  # type: ignore[no-untyped-def]
    label, key, cert = _open(app, client, host)
    done = _ssh(host, VIEW_USER, key, cert, "echo before && sleep 1 && kill -9 $PPID; sleep 1")
    assert "before" in done.stdout
    orphan = [n for n in set(os.listdir(SPOOL)) - host.spooled_before if n.startswith(label + ".")]
    assert len(orphan) == 1 and orphan[0].endswith(".part")  # the recorder never finished it
    ws = host.cast.ws
    session.refresh(ws)
    token = issue_agent_token(ws)
    session.commit()
    cfg = {"url": "https://tool/api/agent/heartbeat", "token": token, "user": STUDENT}
    mine = host.root / "spool"
    mine.mkdir()
    shutil.move(os.path.join(SPOOL, orphan[0]), mine / orphan[0])
    assert cwc_debugrec.upload_recordings(cfg, spool=str(mine), post=_agent_post(client)) == 1
    row = session.scalar(select(DebugRecording).where(DebugRecording.debug_session_id == int(label[1:])))
    assert "kill -9 $PPID" in parse_cast(backend.get_private_object(row.s3_key)).typed()


def test_the_drop_in_gives_the_view_user_certificates_only_and_no_forwarding(tmp_path):  # type: ignore[no-untyped-def]
    from tests.runtime.test_user_data_sshd import _install as install_sshd_files
    from tests.runtime.test_user_data_sshd import _user_data

    config = install_sshd_files(_user_data(generate_key_pair("ca")[1]), tmp_path)
    assert subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True).returncode == 0

    def effective(user: str) -> str:
        return subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config), "-C", f"user={user},host=x,addr=127.0.0.1"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip

    view, student = effective(VIEW_USER), effective("ubuntu")
    for line in ("authorizedkeysfile none", "allowtcpforwarding no", "allowstreamlocalforwarding no",
                 "allowagentforwarding no"):  # fmt: skip
        assert line in view and line not in student, line
    assert "permittunnel no" in view and "x11forwarding no" in view
    assert f"revokedkeys {tmp_path}/cwc_revoked.krl" in view and f"revokedkeys {tmp_path}/cwc_revoked.krl" in student
    assert "authorizedkeysfile .ssh/authorized_keys" in student


def test_the_page_tells_which_user_to_connect_as_on_ec2(settings, monkeypatch):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from config.catalog import load_catalog
    from lti_app.debug import views

    on_ec2 = replace(settings, runtime_ssh_port=0)
    monkeypatch.setattr(views, "settings", lambda: on_ec2)
    catalog = load_catalog()
    template = catalog.get(catalog.default)
    assert template is not None
    ws = SimpleNamespace(id=42, template_id=template.id, public_ip="54.1.2.3")
    assert views._ssh_command(ws, "view") == f"ssh -i ~/.ssh/id_ed25519 {VIEW_USER}@54.1.2.3"  # type: ignore[arg-type]
    assert views._ssh_command(ws, "full") == f"ssh -i ~/.ssh/id_ed25519 {template.os_user}@54.1.2.3"  # type: ignore[arg-type]
