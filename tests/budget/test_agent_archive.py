"""Disks that end on real EC2 too: the home archive is made by the workspace's own agent (a presigned S3 PUT asked
for in the heartbeat answer), verified in S3, and only then is the instance stopped and, after the grace, its disk
deleted. The "EC2-like" path runs on moto with the played agent (the real agent's archive function) answering
through the web app; PostgreSQL, Redis and moto are real."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from classroom.models import AuditEvent, Notification, Workspace, WorkspaceArchive
from classroom.workspaces.archive_rules import MAX_ARCHIVE_TRIES
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.agent.cwc_agent import archive_home
from provisioning.agent_archive import ARCHIVE_BOUND, ArchiveStep, Intent, archive_key, archive_step
from provisioning.agent_service import parse_report
from provisioning.jobs.workspace import stop_workspace
from provisioning.retire import request_retire, retire_workspace
from provisioning.sim_host import SimHost
from tests.budget.test_disks_end import _running, _volumes, cloud  # noqa: F401 - `cloud` is a fixture
from tests.support.outage import flask_post

S = WorkspaceState
GRACE = timedelta(days=14)


@pytest.fixture
def agent_host(settings, aws_env, backend):  # type: ignore[no-untyped-def]
    """The web app on the simulated account (it signs the upload URLs) and the played agents posting into it;
    the backend takes the agent's path, as on real EC2."""
    from lti_app import create_app

    app = create_app(replace(settings, aws_endpoint_url=aws_env, aws_bucket=backend.bucket))
    backend.agent_archives = True
    yield SimHost(backend, post=flask_post(app.test_client(), lambda: True))
    app.extensions["cwc"].engine.dispose()


def _count(session, what) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(what)) or 0


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def _retiring_with_report(session, course, emily, host) -> Workspace:  # type: ignore[no-untyped-def]
    """Emily's running workspace is removed: the retire flow asks its agent, which uploads and then reports."""
    ws = _running(session, course, emily)
    request_retire(session, ws, actor_person_id=emily.id, actor="student", reason="done", after=ws.created_at + GRACE)
    session.commit()
    assert retire_workspace(ws.id) == "request-archive"
    assert host.tick().beats == 1  # the answer carries the presigned PUT: the agent archives and uploads
    assert retire_workspace(ws.id) == "await-archive"  # uploaded, not reported yet: nothing recorded
    assert _count(session, WorkspaceArchive) == 0
    host.tick()  # the next heartbeat reports {key, sha256, bytes}
    session.expire_all()
    ws = session.get(Workspace, ws.id)
    assert ws.state is S.RUNNING and ws.archive_reported_sha256 is not None
    return ws


def test_the_agents_archive_is_verified_then_stop_grace_terminate(cloud, agent_host, session, backend):  # noqa: F811
    course, emily, clock = cloud
    ws = _retiring_with_report(session, course, emily, agent_host)
    assert retire_workspace(ws.id) == "stop"  # verified in S3 and recorded, then the stop is asked
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))
    body = backend.s3.get_object(Bucket=backend.bucket, Key=archive.s3_key)["Body"].read()
    assert archive.s3_key == archive_key(ws) and archive.size_bytes == len(body)
    assert hashlib.sha256(body).hexdigest() == archive.sha256 == ws.archive_reported_sha256
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert "ubuntu/SIMULATED.txt" in tar.getnames()
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.STOPPED and _volumes(backend, ws.id)  # kept for the grace
    assert retire_workspace(ws.id) == "wait-grace"
    clock.move_to(ws.created_at + GRACE + timedelta(hours=1))
    retire_workspace(ws.id)
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.TERMINATED and _volumes(backend, ws.id) == []
    assert _audits(session, "workspace.archived") == 1 and _audits(session, "workspace.archive_failed") == 0


def test_a_checksum_mismatch_is_refused_the_disk_kept_and_staff_told(cloud, agent_host, session, backend):  # noqa: F811
    course, emily, clock = cloud
    ws = _retiring_with_report(session, course, emily, agent_host)
    session.execute(update(Workspace).where(Workspace.id == ws.id).values(archive_tries=MAX_ARCHIVE_TRIES - 1))
    session.commit()  # its last try (the earlier ones: tests/budget/test_archive_retries.py)
    backend.s3.put_object(Bucket=backend.bucket, Key=archive_key(ws), Body=b"not the home that was reported")
    assert retire_workspace(ws.id) == "verify-archive"
    session.expire_all()
    assert _count(session, WorkspaceArchive) == 0 and session.get(Workspace, ws.id).archive_failed_at is not None
    assert _audits(session, "workspace.archive_failed") == 1
    told = session.scalars(select(Notification.subject).where(Notification.course_id == course.id)).all()
    assert any("disk was kept" in s for s in told)
    stop_workspace(ws.id) if retire_workspace(ws.id) == "stop" else pytest.fail("the retire flow should stop")
    retire_workspace(ws.id)
    clock.move_to(ws.created_at + GRACE + timedelta(days=1))
    assert retire_workspace(ws.id) == "nothing"  # past the grace: still nothing deleted without an archive
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.STOPPED and _volumes(backend, ws.id)
    assert _audits(session, "workspace.removed") == 0 and _audits(session, "workspace.archive_failed") == 1


def test_no_archive_within_the_bound_keeps_the_disk(cloud, agent_host, session, backend):  # noqa: F811
    course, emily, clock = cloud
    ws = _running(session, course, emily)
    request_retire(session, ws, actor_person_id=None, actor="staff", reason="test", after=ws.created_at)
    session.commit()
    assert retire_workspace(ws.id) == "request-archive"  # its agent never answers (no tick)
    clock.move_to(ws.created_at + ARCHIVE_BOUND - timedelta(minutes=1))
    assert retire_workspace(ws.id) == "await-archive"
    clock.move_to(ws.created_at + ARCHIVE_BOUND + timedelta(minutes=1))
    assert retire_workspace(ws.id) == "keep-disk"  # a first try failed: tried again after the backoff
    assert retire_workspace(ws.id) == "stop"
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    assert retire_workspace(ws.id) == "nothing"
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.STOPPED and _volumes(backend, ws.id)
    assert _count(session, WorkspaceArchive) == 0 and _audits(session, "workspace.archive_try_failed") == 1
    assert _audits(session, "workspace.archive_failed") == 0 and session.get(Workspace, ws.id).archive_retry_at
    assert _audits(session, "workspace.removed") == 0


def test_the_archive_comes_first_and_nothing_ends_without_it():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    due, asked = now - timedelta(days=1), Intent(now - timedelta(minutes=5), reported=False, failed=False)
    none, late = Intent(None, False, False), Intent(now - ARCHIVE_BOUND, False, False)
    assert archive_step(S.RUNNING, True, due, False, none, now) is ArchiveStep.REQUEST
    assert archive_step(S.RUNNING, True, due, False, asked, now) is ArchiveStep.AWAIT
    assert archive_step(S.RUNNING, True, due, False, late, now) is ArchiveStep.GIVE_UP
    assert archive_step(S.STOPPED, True, due, False, none, now) is ArchiveStep.START  # stopped first: start it
    assert archive_step(S.STOPPED, True, due, False, Intent(None, True, False), now) is ArchiveStep.VERIFY
    assert archive_step(S.STOPPED, True, due, False, Intent(None, False, True), now) is ArchiveStep.KEPT
    assert archive_step(S.RUNNING, True, due, False, Intent(None, False, True), now) is ArchiveStep.USUAL  # stop
    assert archive_step(S.STOPPED, True, due, True, none, now) is ArchiveStep.USUAL  # archived: terminate when due
    assert archive_step(S.STOPPED, True, None, False, none, now) is ArchiveStep.USUAL  # not retiring


def test_a_malformed_archive_report_is_refused():
    body = {"workspace_id": 1, "archived": {"key": "k", "sha256": "not-hex", "bytes": 3}}
    with pytest.raises(ValueError, match="archived.sha256"):
        parse_report(body)
    good = {**body, "archived": {"key": "k", "sha256": "a" * 64, "bytes": 3}}
    assert parse_report(good).archived == ("k", "a" * 64, 3)


def test_the_real_agents_archive_function_tars_the_home_and_uploads_it(tmp_path, backend):
    home = tmp_path / "home" / "emily"
    (home / "homework" / "hw1").mkdir(parents=True)
    (home / "homework" / "hw1" / "fit.py").write_text("import numpy as np\n")
    (home / "notes.md").write_bytes(b"# notes\n" * 1000)
    key = "courses/c1/archives/ws1/home.tar.gz"
    request = {"put_url": backend.archive_upload_url(key, 600), "key": key, "max_bytes": 10_000_000}
    report = archive_home({"home": str(home), "archive_tmp": str(tmp_path)}, request)
    body = backend.s3.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    assert report == {"key": key, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    assert backend.verify_archive(key, report["sha256"], report["bytes"])
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert tar.extractfile("emily/homework/hw1/fit.py").read() == b"import numpy as np\n"
        assert tar.extractfile("emily/notes.md").read() == b"# notes\n" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # the temporary tar.gz is gone


def test_the_agent_refuses_a_home_bigger_than_allowed(tmp_path, backend):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "big.bin").write_bytes(bytes(range(256)) * 64)
    key = "courses/c1/archives/ws2/home.tar.gz"
    request = {"put_url": backend.archive_upload_url(key, 600), "key": key, "max_bytes": 100}
    assert archive_home({"home": str(tmp_path / "home"), "archive_tmp": str(tmp_path)}, request) is None
    assert not backend.verify_archive(key, "0" * 64, 0)  # nothing was uploaded
