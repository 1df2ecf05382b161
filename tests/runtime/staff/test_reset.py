"""Workspace reset through the runtime with real SSH: Sophie breaks her environment, Alex resets, her homework and
notebooks are byte-identical afterwards and the environment works; faults leave her the old workspace."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.queue import make_worker
from classroom.models import AuditEvent, Notification, OutboxEmail, Workspace, WorkspaceBackup, WorkspaceReset
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.aws import AwsBackend
from provisioning.backend import CloudError
from tests.runtime.conftest import ssh_run
from tests.runtime.staff.support import post, set_up_course

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
KEPT = ("homework/hw1/train.py", "notes/analysis.ipynb", "homework/hw1/data.bin")


@pytest.fixture
def cast(client, canvas, session, backend, runtime):  # type: ignore[no-untyped-def]
    c = set_up_course(client, canvas, session, backend, runtime)
    make = (
        "python3 -m venv --without-pip .venv && echo 'source ~/.venv/bin/activate' >> .bashrc && mkdir -p notes && "
        f"printf '%s' '{NOTEBOOK}' > notes/analysis.ipynb && head -c 200000 /dev/urandom > homework/hw1/data.bin"
    )
    assert ssh_run(runtime.rt.port, f"ws{c.ws.id}", [c.sophie_key], make)[0] == 0
    return c


@pytest.fixture
def jobs(app, engine, redis, backend):  # type: ignore[no-untyped-def]
    """Run queued jobs in-process with the app's settings (its data folder) and the given backend."""

    def run(with_backend: AwsBackend = backend) -> None:
        settings = app.extensions["cwc"].settings
        use_context(JobContext(settings, make_session_factory(engine), redis, with_backend))
        try:
            make_worker(redis, simple=True).work(burst=True)
        finally:
            use_context(None)

    return run


def _digests(runtime, c) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = ssh_run(runtime.rt.port, f"ws{c.ws.id}", [c.sophie_key], "sha256sum " + " ".join(KEPT))[1]
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def _reset(app, client, c, reason="her virtualenv is broken"):  # type: ignore[no-untyped-def]
    return post(app, client, f"/app/students/{c.sophie.id}/reset", c.tokens["head_ta"], reason=reason, ws=str(c.ws.id))


def test_sophie_breaks_her_environment_and_alex_resets_it(app, client, cast, session, backend, runtime, jobs):  # type: ignore[no-untyped-def]
    before = _digests(runtime, cast)
    port, login, key = runtime.rt.port, f"ws{cast.ws.id}", [cast.sophie_key]
    assert ssh_run(port, login, key, "rm -rf .venv .bashrc && test ! -e .venv")[0] == 0
    assert ssh_run(port, login, key, "bash -ic 'python3 -c 1' ; ls .venv/bin/python")[0] != 0  # broken
    old = cast.ws.instance_id
    confirm = client.get(f"/app/students/{cast.sophie.id}/reset", query_string={"t": cast.tokens["head_ta"]})
    assert (
        confirm.status_code == 200
        and "homework/" in confirm.get_data(as_text=True)
        and "How long" in confirm.get_data(as_text=True)
    )
    resp = _reset(app, client, cast)
    assert resp.status_code == 303 and "/app/resets/" in resp.headers["Location"]
    jobs()
    session.expire_all()
    row = session.scalar(select(WorkspaceReset))
    assert row.state == "done", row.error
    ws = session.get(Workspace, cast.ws.id)
    assert ws.instance_id == row.new_instance_id != old and ws.state is WorkspaceState.RUNNING
    assert backend.describe([old])[0].state in ("shutting-down", "terminated")
    runtime.sync()
    assert not runtime.rt.home(old).exists()
    assert _digests(runtime, cast) == before  # her own key, the same login, byte-identical homework and notebooks
    code, out, _ = ssh_run(port, login, key, "bash -ic 'python -c \"import sys; print(sys.prefix)\"' 2>/dev/null")
    assert code == 0 and out.strip().endswith("/.venv")
    backup = session.get(WorkspaceBackup, row.backup_id)
    stored = backend.get_private_object(backup.s3_key)
    assert hashlib.sha256(stored).hexdigest() == backup.sha256 and backup.files >= 4
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"workspace.reset", "workspace.backup", "workspace.reset.done"} <= actions
    told = session.scalar(select(Notification).where(Notification.person_id == cast.sophie.id,
                                                     Notification.subject == "Your workspace was reset"))  # fmt: skip
    assert told and "homework/" in told.body
    emails = select(func.count()).select_from(OutboxEmail)
    sent = emails.where(OutboxEmail.to_address == cast.sophie.email, OutboxEmail.subject == "Your workspace was reset")
    assert session.scalar(sent) == 1
    progress = client.get(f"/app/resets/{row.id}", query_string={"t": cast.tokens["head_ta"]}).get_data(as_text=True)
    assert "Done" in progress
    listing = client.get(f"/app/students/{cast.sophie.id}/backups", query_string={"t": cast.tokens["instructor"]})
    assert backup.sha256[:16] in listing.get_data(as_text=True)
    assert post(app, client, f"/app/backups/{backup.id}/restore", cast.tokens["instructor"]).status_code == 303
    jobs()
    assert ssh_run(port, login, key, f"cat restored/backup-{backup.id}/.trainrc")[1] == "lr: 0.1\n"


def test_refusals_write_nothing(app, client, cast, session):  # type: ignore[no-untyped-def]
    url = f"/app/students/{cast.sophie.id}/reset"
    assert _reset(app, client, cast, reason="").status_code == 400
    assert post(app, client, url, cast.tokens["ta"], reason="broken env").status_code == 403
    assert post(app, client, url, cast.tokens["student"], reason="broken env").status_code == 403
    assert post(app, client, url, cast.tokens["other_instructor"], reason="broken env").status_code == 404
    assert client.post(url, data={"reason": "broken env"}).status_code == 401
    for role in ("ta", "student", "other_student"):
        assert client.get(url, query_string={"t": cast.tokens[role]}).status_code == 403
    assert session.scalar(select(func.count()).select_from(WorkspaceReset)) == 0
    ws = session.get(Workspace, cast.ws.id)
    ws.state = WorkspaceState.STOPPED
    session.commit()
    stopped = _reset(app, client, cast)
    assert stopped.status_code == 409 and "start it first" in stopped.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(WorkspaceReset)) == 0


def test_a_second_click_is_told_a_reset_is_running(app, client, cast, session):  # type: ignore[no-untyped-def]
    assert _reset(app, client, cast).status_code == 303
    again = _reset(app, client, cast)
    assert again.status_code == 409 and "already running" in again.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(WorkspaceReset)) == 1


class CorruptingBackend(AwsBackend):
    """S3 stores something else than what was sent (a corrupted upload): the verification must catch it."""

    def put_private_object(self, key, body, **kw):  # type: ignore[no-untyped-def]
        result = super().put_private_object(key, body, **kw)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
        return result


class FailingReadBackend(AwsBackend):
    """S3 fails midway: after the backup and the new instance, reading the backup back fails."""

    def get_private_object(self, key):  # type: ignore[no-untyped-def]
        raise CloudError("S3 could not read the backup: simulated outage")


def _as(cls, backend):  # type: ignore[no-untyped-def]
    b = object.__new__(cls)
    b.__dict__.update(backend.__dict__)
    return b


@pytest.mark.parametrize(("cls", "why"), [(CorruptingBackend, "SHA-256"), (FailingReadBackend, "simulated outage")])
def test_faults_leave_sophie_her_old_workspace(app, client, cast, session, backend, runtime, jobs, cls, why):  # type: ignore[no-untyped-def]
    before = _digests(runtime, cast)
    old = cast.ws.instance_id
    assert _reset(app, client, cast).status_code == 303
    jobs(_as(cls, backend))
    session.expire_all()
    row = session.scalar(select(WorkspaceReset))
    assert row.state == "failed" and why in row.error
    assert session.get(Workspace, cast.ws.id).instance_id == old
    assert _digests(runtime, cast) == before
    if row.new_instance_id:
        assert backend.describe([row.new_instance_id])[0].state in ("shutting-down", "terminated")
    else:
        assert cls is CorruptingBackend
    told = session.scalar(select(Notification).where(Notification.person_id == cast.people["head_ta"].id))
    assert told and "failed" in told.subject
    page = client.get(f"/app/resets/{row.id}", query_string={"t": cast.tokens["head_ta"]}).get_data(as_text=True)
    assert why in page and "keeps the old workspace" in page
    debug = client.get(f"/app/students/{cast.sophie.id}/debug", query_string={"t": cast.tokens["ta"]})
    assert "Reset failed" in debug.get_data(as_text=True)


ROLES = ("instructor", "head_ta", "ta", "student", "other_student", "other_instructor", "anonymous")


def _status(client, method, url, token, app):  # type: ignore[no-untyped-def]
    if token is None:
        return (client.get(url) if method == "GET" else client.post(url)).status_code
    if method == "GET":
        return client.get(url, query_string={"t": token}).status_code
    return post(app, client, url, token).status_code


def test_every_role_on_the_reset_routes(app, client, cast, session):  # type: ignore[no-untyped-def]
    backup = WorkspaceBackup(course_id=cast.ws.course_id, workspace_id=cast.ws.id, instance_id=cast.ws.instance_id,
                             s3_key="courses/x/archives/b.tar.gz", sha256="0" * 64, size_bytes=1, files=1)  # fmt: skip
    session.add(backup)
    session.flush()
    alex = cast.people["head_ta"].id
    row = WorkspaceReset(course_id=cast.ws.course_id, workspace_id=cast.ws.id, staff_person_id=alex,
                         reason="broken", state="failed", old_instance_id=cast.ws.instance_id, kept={})  # fmt: skip
    session.add(row)
    session.commit()
    acting = ("instructor", "head_ta")
    routes = [
        ("GET", f"/app/students/{cast.sophie.id}/reset", acting),
        ("GET", f"/app/resets/{row.id}", acting),
        ("GET", f"/app/students/{cast.sophie.id}/backups", acting),
        ("POST", f"/app/backups/{backup.id}/restore", acting),
        ("GET", "/app/course/reset-settings", ("instructor",)),
    ]
    for method, url, allowed in routes:
        for role in ROLES:
            got = _status(client, method, url, cast.tokens.get(role), app)
            if role == "anonymous":
                want = 401
            elif role in allowed:
                want = 303 if method == "POST" else 200
            elif role == "other_instructor" and "reset-settings" not in url:
                want = 404
            else:
                want = 200 if (role == "other_instructor") else 403
            assert got == want, (method, url, role, got)


def test_instructor_sets_what_a_reset_keeps(app, client, cast, session):  # type: ignore[no-untyped-def]
    url, token = "/app/course/reset-settings", cast.tokens["instructor"]
    assert post(app, client, url, token, keep_paths="homework/\n*.ipynb\ndata/*.csv").status_code == 200
    page = client.get(f"/app/students/{cast.sophie.id}/reset", query_string={"t": token}).get_data(as_text=True)
    assert "data/*.csv" in page
    bad = post(app, client, url, token, keep_paths="../secrets\n/etc")
    assert bad.status_code == 400 and "not a path inside the home" in bad.get_data(as_text=True)
    assert post(app, client, url, cast.tokens["head_ta"], keep_paths="x/").status_code == 403
    from classroom.services.resets import keep_paths

    assert keep_paths(session, cast.ws.course_id) == ["homework/", "*.ipynb", "data/*.csv"]
