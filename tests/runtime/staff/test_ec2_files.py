"""The debug page's files, export and a reset's backup on an "EC2" workspace through full LTI launches: a real
sshd configured by the user data on loopback, the host key pinned by the agent's heartbeat, the tool reading with
a read-only course-CA certificate. A wrong or missing pin refuses with a clear message and writes nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import pwd
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy import func, select

from classroom.db import make_session_factory, utcnow
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.queue import make_worker
from classroom.models import (
    AuditEvent,
    Course,
    Enrollment,
    Notification,
    Person,
    Workspace,
    WorkspaceBackup,
    WorkspaceReset,
)
from classroom.roles import StaffLevel
from provisioning import instance_ssh
from provisioning.agent_service import issue_agent_token
from provisioning.ssh_ca import ensure_course_ca
from tests.runtime.staff.support import _user, post
from tests.support.budget import ensure_policies, make_running
from tests.support.ec2_sshd import USER, Sshd, ensure_user, free_port, start_sshd, write_as
from tests.support.lti import launch, tool_token

# The OS accounts, homes and spool these tests share (tests/support/ec2_sshd.py, cwc-view): one worker at a time.
pytestmark = pytest.mark.xdist_group("ec2-accounts")

TRAIN = b"import torch\nbatch_size = 4096\n"
NOTEBOOK = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "id": "c1", ' \
    b'"metadata": {}, "execution_count": 2, "source": "print(batch_size)", "outputs": []}]}'  # fmt: skip
FILES = {"homework/hw1/train.py": TRAIN, "homework/hw1/analysis.ipynb": NOTEBOOK, ".trainrc": b"lr: 0.1\n"}
ROLES = ("instructor", "head_ta", "ta", "student", "other_student", "other_instructor", "anonymous")
SSH_PORT = free_port()


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(workspace_ssh_port=SSH_PORT)


@dataclass
class Cast:
    tokens: dict[str, str]
    ws: Workspace
    sophie: Person
    agent: dict[str, str]
    sshd: Sshd


@pytest.fixture
def cast(client, canvas, session, monkeypatch) -> Iterator[Cast]:  # type: ignore[no-untyped-def]
    users = {"instructor": _user("instructor-1", "Jennifer Martinez", "instructor"),
             "head_ta": _user("ta-1", "Alex Thompson", "ta"), "ta": _user("ta-2", "Priya Patel", "ta"),
             "student": _user("student-1", "Sophie Martin", "student"),
             "other_student": _user("student-2", "David Kim", "student")}  # fmt: skip
    tokens = {role: tool_token(launch(client, canvas, user)) for role, user in users.items()}
    other = _user("instructor-9", "Other Instructor", "instructor")
    tokens["other_instructor"] = tool_token(launch(client, canvas, other, context_id="cs231-fall2024"))
    session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1")).level = StaffLevel.HEAD_TA
    ensure_policies(session)
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    sophie = session.scalar(select(Person).where(Person.sub == "student-1"))
    ws = make_running(session, course.id, sophie.id, utcnow(), link="hw1")
    ws.public_ip = "127.0.0.1"  # the instance's address; the tool's SSH port is the test's sshd (settings)
    agent = {"Authorization": f"Bearer {issue_agent_token(ws)}"}
    ca = ensure_course_ca(session, course.id, settings=client.application.extensions["cwc"].settings)
    session.commit()
    write_as(USER, ensure_user(), FILES)
    monkeypatch.setattr(instance_ssh, "login_user", lambda _ws: USER)  # the templates' login user is `ubuntu`
    folder = Path(tempfile.mkdtemp(prefix="cwc-ec2-sshd-", dir="/tmp"))
    folder.chmod(0o755)
    sshd = start_sshd(folder, port=SSH_PORT, workspace_id=ws.id, ca_public_key=ca.public_key)
    try:
        yield Cast(tokens, ws, sophie, agent, sshd)
    finally:
        sshd.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _report(client, c: Cast, key: str) -> None:  # type: ignore[no-untyped-def]
    """The agent's heartbeat with the instance's host key (the first one is pinned)."""
    resp = client.post("/api/agent/heartbeat", json={"workspace_id": c.ws.id, "host_keys": [key]}, headers=c.agent)
    assert resp.status_code == 200


def _files(client, c: Cast, role: str, path: str = ""):  # type: ignore[no-untyped-def]
    return client.get(f"/app/students/{c.sophie.id}/files", query_string={"t": c.tokens[role], "path": path})


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)))


def test_staff_read_sophies_ec2_home_and_alex_exports_it(app, client, cast, session):  # type: ignore[no-untyped-def]
    _report(client, cast, cast.sshd.host_key)
    page = client.get(f"/app/students/{cast.sophie.id}/debug", query_string={"t": cast.tokens["ta"]})
    assert "Browse Sophie Martin" in page.get_data(as_text=True)
    listing = _files(client, cast, "ta", "homework/hw1").get_data(as_text=True)
    assert "train.py" in listing and "analysis.ipynb" in listing
    assert "batch_size = 4096" in _files(client, cast, "ta", "homework/hw1/train.py").get_data(as_text=True)
    notebook = _files(client, cast, "ta", "homework/hw1/analysis.ipynb")
    assert notebook.status_code == 200 and "In [2]" in notebook.get_data(as_text=True)
    assert _files(client, cast, "ta", "../../etc").status_code == 400
    url = f"/app/students/{cast.sophie.id}/export"
    for role in ROLES:  # the export route's roles, unchanged on EC2
        resp = client.post(url, data={"path": "homework"}) if role == "anonymous" else post(
            app, client, url, cast.tokens[role], path="homework")  # fmt: skip
        want = 200 if role in ("instructor", "head_ta") else 401 if role == "anonymous" else (
            404 if role == "other_instructor" else 403)  # fmt: skip
        assert resp.status_code == want, role
        if want == 200:
            zf = zipfile.ZipFile(io.BytesIO(resp.data))
            assert sorted(zf.namelist()) == ["homework/hw1/analysis.ipynb", "homework/hw1/train.py"]
            assert zf.read("homework/hw1/train.py") == TRAIN
    assert _audits(session, "debug.export") == 2
    assert any("ID tool:export:" in line and f"ws{cast.ws.id}" in line for line in cast.sshd.logins())


def test_a_wrong_host_key_refuses_files_and_export_and_reads_nothing(app, client, cast, session):  # type: ignore[no-untyped-def]
    _report(client, cast, asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())  # not sshd's
    page = _files(client, cast, "head_ta", "homework/hw1/train.py")
    body = page.get_data(as_text=True)
    assert "did not show the SSH host key pinned" in body and "batch_size" not in body
    resp = post(app, client, f"/app/students/{cast.sophie.id}/export", cast.tokens["head_ta"], path="")
    assert resp.status_code == 409 and "pinned" in resp.get_data(as_text=True)
    assert _audits(session, "debug.export") == 0 and cast.sshd.logins() == []


def test_without_a_pinned_key_the_pages_say_why_and_nothing_is_exported(app, client, cast, session):  # type: ignore[no-untyped-def]
    sophie, alex = cast.sophie.id, cast.tokens["head_ta"]
    debug = client.get(f"/app/students/{sophie}/debug", query_string={"t": alex}).get_data(as_text=True)
    assert "no pinned SSH host key" in debug and "Browse Sophie" not in debug
    assert "no pinned SSH host key" in _files(client, cast, "ta").get_data(as_text=True)
    assert post(app, client, f"/app/students/{sophie}/export", alex, path="").status_code == 409
    reset = client.get(f"/app/students/{sophie}/reset", query_string={"t": alex}).get_data(as_text=True)
    assert "no pinned SSH host key" in reset
    assert _audits(session, "debug.export") == 0 and cast.sshd.logins() == []


def test_a_reset_on_ec2_backs_up_over_ssh_then_waits_for_the_new_machine(
    app, client, cast, session, engine, redis, backend
):  # type: ignore[no-untyped-def]
    _report(client, cast, cast.sshd.host_key)
    alex = cast.tokens["head_ta"]
    confirm = client.get(f"/app/students/{cast.sophie.id}/reset", query_string={"t": alex}).get_data(as_text=True)
    assert "not built" not in confirm and "over SSH" in confirm
    resp = post(app, client, f"/app/students/{cast.sophie.id}/reset", alex, reason="broken venv", ws=str(cast.ws.id))
    assert resp.status_code == 303
    use_context(JobContext(app.extensions["cwc"].settings, make_session_factory(engine), redis, backend))
    try:
        make_worker(redis, simple=True).work(burst=True)
    finally:
        use_context(None)
    session.expire_all()
    reset = session.scalar(select(WorkspaceReset))
    assert reset.state == "restoring" and reset.new_instance_id and not reset.new_host_keys, reset.error
    backup = session.scalar(select(WorkspaceBackup))
    stored = backend.get_private_object(backup.s3_key)
    assert hashlib.sha256(stored).hexdigest() == backup.sha256 and backup.files == len(FILES)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(stored))) as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar.getmembers()} == FILES  # type: ignore[union-attr]
    ws = session.get(Workspace, cast.ws.id)
    assert ws.instance_id == cast.ws.instance_id and ws.ssh_host_keys  # the student keeps her machine meanwhile
    assert _audits(session, "workspace.backup") == 1 and _audits(session, "workspace.reset.failed") == 0
    assert any(f"ID tool:reset-R{reset.id}:" in line for line in cast.sshd.logins())


def test_a_changed_host_key_is_shown_to_staff_and_the_tool_stops_connecting(app, client, cast, session):  # type: ignore[no-untyped-def]
    _report(client, cast, cast.sshd.host_key)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", "-"], input=cast.sshd.host_key, capture_output=True,
                                 text=True, check=True).stdout.split()[1]  # fmt: skip
    debug = client.get(f"/app/students/{cast.sophie.id}/debug", query_string={"t": cast.tokens["ta"]})
    assert fingerprint in debug.get_data(as_text=True) and "Refused" not in debug.get_data(as_text=True)
    _report(client, cast, asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())  # changed
    debug = client.get(f"/app/students/{cast.sophie.id}/debug", query_string={"t": cast.tokens["ta"]})
    page = debug.get_data(as_text=True)
    assert fingerprint in page and "reported a different host key" in page and "Browse Sophie" not in page
    body = _files(client, cast, "head_ta", "homework/hw1/train.py").get_data(as_text=True)
    assert "reported a different SSH host key" in body and "batch_size" not in body
    assert (
        post(app, client, f"/app/students/{cast.sophie.id}/export", cast.tokens["head_ta"], path="").status_code == 409
    )
    assert cast.sshd.logins() == [] and _audits(session, "workspace.host_keys.refused") == 1


def test_an_ec2_backup_is_restored_over_ssh_into_a_new_folder_without_overwriting(
    app, client, cast, session, engine, redis, backend
):  # type: ignore[no-untyped-def]

    _report(client, cast, cast.sshd.host_key)
    alex, martinez = cast.tokens["head_ta"], cast.tokens["instructor"]
    post(app, client, f"/app/students/{cast.sophie.id}/reset", alex, reason="broken venv", ws=str(cast.ws.id))
    jobs = _jobs(app, engine, redis, backend)
    jobs()
    backup = session.scalar(select(WorkspaceBackup))
    assert post(app, client, f"/app/backups/{backup.id}/restore", martinez).status_code == 303
    jobs()
    home, folder = Path(pwd.getpwnam(USER).pw_dir), f"restored/backup-{backup.id}"
    for rel, data in FILES.items():
        path = home / folder / rel
        assert path.read_bytes() == data and path.stat().st_uid == pwd.getpwnam(USER).pw_uid, rel
    assert (home / "homework/hw1/train.py").read_bytes() == TRAIN  # the home itself untouched
    assert _audits(session, "workspace.backup.restored") == 1
    (home / folder / ".trainrc").write_bytes(b"changed by Sophie since\n")
    assert post(app, client, f"/app/backups/{backup.id}/restore", alex).status_code == 303
    jobs()
    session.expire_all()
    assert (home / folder / ".trainrc").read_bytes() == b"changed by Sophie since\n", "never overwritten"
    assert _audits(session, "workspace.backup.restored") == 1
    told = session.scalar(select(Notification).where(Notification.subject == f"Restore of backup B{backup.id} failed"))
    assert told is not None and "already exists" in told.body


def _jobs(app, engine, redis, backend):  # type: ignore[no-untyped-def]
    def run() -> None:
        use_context(JobContext(app.extensions["cwc"].settings, make_session_factory(engine), redis, backend))
        try:
            make_worker(redis, simple=True).work(burst=True)
        finally:
            use_context(None)

    return run
