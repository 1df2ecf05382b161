"""A workspace reset on EC2 through full LTI launches: two real sshd processes on loopback are the old and the new
machine (their own addresses, host keys, login users and homes), moto is EC2 and S3. The new machine's agent pins
its host key with the token the reset launched it with; then the kept paths are restored over SSH, read back and
checked, the workspace switches and the old instance is terminated. A wrong host key, a restored file that does
not match the backup, or a new machine that never reports leave Sophie her old workspace and tell staff why."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy import func, select

from classroom.db import make_session_factory, utcnow
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.queue import make_worker
from classroom.models import AuditEvent, Course, Enrollment, Notification, Person, Workspace, WorkspaceReset
from classroom.roles import StaffLevel
from provisioning import instance_ssh, reset_ec2
from provisioning.aws import AwsBackend
from provisioning.backend import CloudError
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import launch_spec
from provisioning.reset_jobs import reset_deadline
from provisioning.ssh_ca import ensure_course_ca
from tests.conftest import count_rows
from tests.runtime.staff.support import _user, post
from tests.support.budget import ensure_policies, make_running
from tests.support.ec2_sshd import NEW_HOST, NEW_USER, USER, Sshd, ensure_user, free_port, start_sshd, write_as
from tests.support.lti import launch, tool_token

# The OS accounts, homes and spool these tests share (tests/support/ec2_sshd.py, cwc-view): one worker at a time.
pytestmark = pytest.mark.xdist_group("ec2-accounts")

TRAIN = b"import torch\nbatch_size = 4096\n"
NOTEBOOK = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'
KEPT = {"homework/hw1/train.py": TRAIN, "homework/hw1/data.bin": bytes(range(256)) * 300,
        "homework/hw1/analysis.ipynb": NOTEBOOK, "notes/week5.ipynb": NOTEBOOK + b"\n",
        ".ssh/id_github": b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n"}  # fmt: skip
LEFT = {".trainrc": b"lr: 0.1\n", ".venv/bin/python": b"broken\n", ".ssh/authorized_keys": b"ssh-ed25519 AAAA old\n"}
TEMPLATE = {"README-template.md": b"Welcome to ML CPU\n"}  # what the fresh machine's home starts with
SSH_PORT = free_port()


class LoopbackBackend(AwsBackend):
    """moto's EC2 with each instance's public address where its stand-in sshd listens: the first (old) instance
    at 127.0.0.1, any other at NEW_HOST. Everything else is moto's answer."""

    old_instance: str = ""
    refuse_terminate: bool = False  # EC2 fails every terminate (an outage)

    def describe(self, instance_ids):  # type: ignore[no-untyped-def]
        return [dataclasses.replace(i, public_ip="127.0.0.1" if i.instance_id == self.old_instance else NEW_HOST)
                for i in super().describe(instance_ids)]  # fmt: skip

    def terminate(self, instance_ids):  # type: ignore[no-untyped-def]
        if self.refuse_terminate:
            raise CloudError("EC2 could not terminate the instance: simulated outage")
        super().terminate(instance_ids)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(workspace_ssh_port=SSH_PORT)


@dataclass
class Cast:
    tokens: dict[str, str]
    ws: Workspace
    sophie: Person
    old_agent: dict[str, str]
    old: Sshd
    new: Sshd
    backend: LoopbackBackend
    old_home: Path
    new_home: Path
    jobs: object


def _agent_token(backend: AwsBackend, instance_id: str) -> str:
    """The agent token the instance was launched with, read from its user data (as its agent reads it)."""
    raw = backend.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    text = base64.b64decode(raw["UserData"]["Value"]).decode()
    return json.loads(re.search(r"(\{\"url\".*?\})\n", text).group(1))["token"]  # type: ignore[union-attr]


@pytest.fixture
def cast(app, client, canvas, session, backend, engine, redis, monkeypatch) -> Iterator[Cast]:  # type: ignore[no-untyped-def]
    users = {"instructor": _user("instructor-1", "Jennifer Martinez", "instructor"),
             "head_ta": _user("ta-1", "Alex Thompson", "ta"), "ta": _user("ta-2", "Priya Patel", "ta"),
             "student": _user("student-1", "Sophie Martin", "student")}  # fmt: skip
    tokens = {role: tool_token(launch(client, canvas, user)) for role, user in users.items()}
    session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1")).level = StaffLevel.HEAD_TA
    ensure_policies(session)
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    sophie = session.scalar(select(Person).where(Person.sub == "student-1"))
    loop = object.__new__(LoopbackBackend)
    loop.__dict__.update(backend.__dict__)
    settings = app.extensions["cwc"].settings
    ctx = JobContext(settings, make_session_factory(engine), redis, loop)
    ws = make_running(session, course.id, sophie.id, utcnow(), link="hw1")
    use_context(ctx)
    try:  # the old machine is a real moto instance launched from the template, as a start would
        ws.instance_id = loop.old_instance = loop.launch(launch_spec(session, ctx, ws)).instance_id
    finally:
        use_context(None)
    ws.public_ip = "127.0.0.1"
    old_agent = {"Authorization": f"Bearer {_agent_token(loop, ws.instance_id)}"}
    ca = ensure_course_ca(session, course.id, settings=settings)
    session.commit()
    old_home, new_home = ensure_user(USER), ensure_user(NEW_USER)
    write_as(USER, old_home, KEPT | LEFT)
    write_as(NEW_USER, new_home, TEMPLATE)
    monkeypatch.setattr(reset_ec2, "login_user", lambda _ws: NEW_USER)  # the new machine's login (EC2: `ubuntu`)
    monkeypatch.setattr(instance_ssh, "login_user", lambda w: USER if w.instance_id == loop.old_instance else NEW_USER)
    folders = [Path(tempfile.mkdtemp(prefix="cwc-ec2-sshd-", dir="/tmp")) for _ in range(2)]
    for folder in folders:
        folder.chmod(0o755)
    old = start_sshd(folders[0], port=SSH_PORT, workspace_id=ws.id, ca_public_key=ca.public_key)
    new = start_sshd(folders[1], port=SSH_PORT, workspace_id=ws.id, ca_public_key=ca.public_key, user=NEW_USER,
                     host=NEW_HOST)  # fmt: skip
    assert old.host_key != new.host_key

    def jobs() -> None:
        use_context(ctx)
        try:
            make_worker(redis, simple=True).work(burst=True)
        finally:
            use_context(None)

    try:
        yield Cast(tokens, ws, sophie, old_agent, old, new, loop, old_home, new_home, jobs)
    finally:
        old.stop()
        new.stop()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _beat(client, c: Cast, headers: dict[str, str], key: str):  # type: ignore[no-untyped-def]
    return client.post("/api/agent/heartbeat", json={"workspace_id": c.ws.id, "host_keys": [key]}, headers=headers)


def _start_reset(app, client, c: Cast, session) -> WorkspaceReset:  # type: ignore[no-untyped-def]
    """Alex asks for the reset; the job backs up over SSH, launches the new machine and waits for its agent."""
    assert _beat(client, c, c.old_agent, c.old.host_key).status_code == 200  # the old machine's pin
    resp = post(app, client, f"/app/students/{c.sophie.id}/reset", c.tokens["head_ta"], reason="broken venv",
                ws=str(c.ws.id))  # fmt: skip
    assert resp.status_code == 303
    c.jobs()  # type: ignore[operator]
    session.expire_all()
    row = session.scalar(select(WorkspaceReset))
    assert row.state == "restoring" and row.new_instance_id and row.backup_id and not row.new_host_keys, row.error
    assert session.get(Workspace, c.ws.id).instance_id == c.backend.old_instance
    return row


def _new_agent(c: Cast, row: WorkspaceReset) -> dict[str, str]:
    return {"Authorization": f"Bearer {_agent_token(c.backend, str(row.new_instance_id))}"}


def _agent_writes(session, redis) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """All an accepted heartbeat writes (provisioning/agent_service.py and its route): the workspace row (activity,
    state, pin), the reset rows (the new agent's sighting and host keys), heartbeat rows, audit events (pins) and
    the reset job it queues. A refused heartbeat must leave every one of them as it was."""
    engine = session.get_bind()  # read on connections of their own: what the request committed
    with engine.connect() as conn:
        rows = {
            t.name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
            for t in (Workspace.__table__, WorkspaceReset.__table__)
        }
    counts = {table: count_rows(engine, table) for table in ("heartbeats", "audit_events")}
    return rows | counts | {"jobs": sorted(redis.scan_iter("rq:job:*"))}


def _home(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)))


def _old_untouched(c: Cast, session, row: WorkspaceReset) -> None:  # type: ignore[no-untyped-def]
    """Sophie keeps her old machine: the workspace row, its pin and its home as before; the new one terminated."""
    ws = session.get(Workspace, c.ws.id)
    assert ws.instance_id == c.backend.old_instance and ws.ssh_host_keys_instance_id == c.backend.old_instance
    assert ws.ssh_host_keys == c.old.host_key.split()[0] + " " + c.old.host_key.split()[1]
    assert _home(c.old_home) == KEPT | LEFT
    assert c.backend.describe([c.backend.old_instance])[0].state == "running"
    assert c.backend.describe([str(row.new_instance_id)])[0].state in ("shutting-down", "terminated")
    told = session.scalar(select(Notification).where(Notification.person_id == row.staff_person_id))
    assert told is not None and f"Reset R{row.id} failed" in told.subject


def test_alex_resets_sophies_ec2_workspace_and_her_kept_files_move_byte_identical(app, client, cast, session, redis):  # type: ignore[no-untyped-def]
    confirm = client.get(f"/app/students/{cast.sophie.id}/reset", query_string={"t": cast.tokens["head_ta"]})
    assert "not built" not in confirm.get_data(as_text=True)
    row = _start_reset(app, client, cast, session)
    new_agent = _new_agent(cast, row)
    waiting = client.get(f"/app/resets/{row.id}", query_string={"t": cast.tokens["head_ta"]}).get_data(as_text=True)
    assert "Waiting for the new machine" in waiting
    before = _agent_writes(session, redis)
    other = client.post("/api/agent/heartbeat", json={"workspace_id": cast.ws.id + 1}, headers=new_agent)
    assert other.status_code == 403  # the new token speaks for its own workspace only
    assert _agent_writes(session, redis) == before  # not seen, nothing pinned, audited or queued
    answer = _beat(client, cast, new_agent, cast.new.host_key + " root@ip-10-0-0-9")  # pins on the reset row
    assert answer.status_code == 200 and answer.get_json()["stop"] is False
    session.expire_all()
    assert session.get(Workspace, cast.ws.id).ssh_host_keys_instance_id == cast.backend.old_instance  # old pin kept
    cast.jobs()  # the pinning heartbeat queued the reset again
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert row.state == "done", row.error
    assert _home(cast.new_home) == KEPT | TEMPLATE  # byte-identical; .trainrc, .venv and authorized_keys not kept
    assert _home(cast.old_home) == KEPT | LEFT  # the old home was only read
    ws = session.get(Workspace, cast.ws.id)
    assert ws.instance_id == row.new_instance_id != cast.backend.old_instance and ws.public_ip == "127.0.0.2"
    assert ws.ssh_host_keys_instance_id == row.new_instance_id and ws.ssh_host_keys == row.new_host_keys
    assert cast.backend.describe([cast.backend.old_instance])[0].state in ("shutting-down", "terminated")
    assert cast.backend.describe([ws.instance_id])[0].state == "running"
    assert row.old_end_requested_at is not None and row.kept["files"] == len(KEPT) == row.kept["verified"]
    assert row.kept["python"].startswith("3.")
    before = _agent_writes(session, redis)
    assert _beat(client, cast, cast.old_agent, cast.old.host_key).status_code == 403  # the old agent is done
    assert _agent_writes(session, redis) == before
    assert _beat(client, cast, new_agent, cast.new.host_key).status_code == 200  # now the workspace's own
    logins = cast.new.logins()
    assert len([line for line in logins if f"ID tool:reset-R{row.id}:" in line]) == 3  # restore, read back, health
    for action in ("workspace.reset.done", "workspace.reset.old_instance_end", "workspace.host_keys.pinned"):
        assert _audits(session, action) >= 1, action
    told = session.scalar(select(Notification).where(Notification.person_id == cast.sophie.id,
                                                     Notification.subject == "Your workspace was reset"))  # fmt: skip
    assert told is not None and "homework/" in told.body
    files = client.get(f"/app/students/{cast.sophie.id}/files",
                       query_string={"t": cast.tokens["ta"], "path": "homework/hw1/train.py"})  # fmt: skip
    assert "batch_size = 4096" in files.get_data(as_text=True)  # the tool reads the new machine with its pin
    progress = client.get(f"/app/resets/{row.id}", query_string={"t": cast.tokens["head_ta"]})
    assert "Done" in progress.get_data(as_text=True)


def test_a_new_machine_showing_another_host_key_fails_the_reset_and_sophie_keeps_hers(app, client, cast, session):  # type: ignore[no-untyped-def]
    row = _start_reset(app, client, cast, session)
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    assert _beat(client, cast, _new_agent(cast, row), wrong).status_code == 200  # pinned: not what sshd shows
    cast.jobs()  # type: ignore[operator]
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert row.state == "failed" and "did not show the SSH host key pinned" in row.error
    _old_untouched(cast, session, row)
    assert _home(cast.new_home) == TEMPLATE and cast.new.logins() == []  # refused before logging in
    page = client.get(f"/app/resets/{row.id}", query_string={"t": cast.tokens["head_ta"]}).get_data(as_text=True)
    assert "did not show the SSH host key pinned" in page and "keeps the old workspace" in page


def test_a_new_machine_that_changes_its_reported_key_fails_the_reset(app, client, cast, session):  # type: ignore[no-untyped-def]
    row = _start_reset(app, client, cast, session)
    agent = _new_agent(cast, row)
    assert _beat(client, cast, agent, cast.new.host_key).status_code == 200  # pinned (the job is queued)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    assert _beat(client, cast, agent, other).status_code == 200  # a different report: kept apart, audited
    cast.jobs()  # type: ignore[operator]
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert row.state == "failed" and "reported a different SSH host key" in row.error, row.error
    assert row.new_host_keys.split() == cast.new.host_key.split()[:2] and row.new_host_keys_refused
    assert _audits(session, "workspace.host_keys.refused") == 1
    _old_untouched(cast, session, row)
    assert _home(cast.new_home) == TEMPLATE and cast.new.logins() == []


def test_a_restored_file_that_differs_from_the_backup_fails_the_reset(app, client, cast, session):  # type: ignore[no-untyped-def]
    changed = TRAIN.replace(b"4096", b"0064")  # same size: create-only counts it as there, the SHA-256 does not
    write_as(NEW_USER, cast.new_home, {"homework/hw1/train.py": changed})
    row = _start_reset(app, client, cast, session)
    assert _beat(client, cast, _new_agent(cast, row), cast.new.host_key).status_code == 200
    cast.jobs()  # type: ignore[operator]
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert row.state == "failed" and "homework/hw1/train.py" in row.error and "SHA-256" in row.error, row.error
    _old_untouched(cast, session, row)
    assert (cast.new_home / "homework/hw1/train.py").read_bytes() == changed, "nothing overwritten"


def test_a_new_machine_that_never_reports_fails_the_reset_at_its_deadline(app, client, cast, session, engine, redis):  # type: ignore[no-untyped-def]
    row = _start_reset(app, client, cast, session)
    ctx = JobContext(app.extensions["cwc"].settings, make_session_factory(engine), redis, cast.backend)
    use_context(ctx)
    try:
        assert reset_deadline(row.id) == "restoring"  # within the wait: nothing happens
        session.get(WorkspaceReset, row.id).launched_at = utcnow() - reset_ec2.PIN_WAIT - timedelta(seconds=1)
        session.commit()
        assert reset_deadline(row.id) == "failed"
    finally:
        use_context(None)
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert "did not report its SSH host key within 15 minutes" in row.error
    _old_untouched(cast, session, row)
    before = _agent_writes(session, redis)
    assert _beat(client, cast, _new_agent(cast, row), cast.new.host_key).status_code == 403  # its token is dead
    assert _agent_writes(session, redis) == before  # the failed reset's row keeps no sighting and no key
    assert _home(cast.new_home) == TEMPLATE and cast.new.logins() == []


def test_when_ec2_fails_to_end_the_old_machine_the_reconcile_pass_ends_it(app, client, cast, session, engine, redis):  # type: ignore[no-untyped-def]
    row = _start_reset(app, client, cast, session)
    assert _beat(client, cast, _new_agent(cast, row), cast.new.host_key).status_code == 200
    cast.backend.refuse_terminate = True
    cast.jobs()  # type: ignore[operator]
    session.expire_all()
    row = session.get(WorkspaceReset, row.id)
    assert row.state == "done" and row.old_end_requested_at is not None  # switched; the end is recorded
    assert cast.backend.describe([cast.backend.old_instance])[0].state == "running"  # EC2 did not do it
    cast.backend.refuse_terminate = False
    use_context(JobContext(app.extensions["cwc"].settings, make_session_factory(engine), redis, cast.backend))
    try:
        assert reconcile_workspaces()["replaced"] == 1
        assert reconcile_workspaces()["replaced"] == 0  # ending: not asked again
    finally:
        use_context(None)
    assert cast.backend.describe([cast.backend.old_instance])[0].state in ("shutting-down", "terminated")
    assert cast.backend.describe([str(row.new_instance_id)])[0].state == "running"
    session.expire_all()
    assert session.get(Workspace, cast.ws.id).instance_id == row.new_instance_id
