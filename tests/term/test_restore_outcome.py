"""EC2 restore confirmation: a restored student's fresh workspace gets, in its agent's config, a presigned S3 GET of
the archived home; the agent (its real code) fetches it, checks the SHA-256, unpacks it as GNU tar does on the
instance, keeps the outcome on disk and reports it in its heartbeats until the tool (through the heartbeat API)
records it on the restore: restored (bytes, SHA-256 matched, unpacked) or failed with the reason, audited once,
instructors told of a failure. Real moto (presigned URLs served by the moto server), PostgreSQL, Redis."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from classroom.models import AuditEvent, Notification, StudentRestore, Workspace, WorkspaceArchive
from classroom.services.restores import RestoreRequest, restore_student
from provisioning.agent.cwc_agent import heartbeat, restore_home, restore_once, restore_tar_argv
from provisioning.jobs.workspace import provision_workspace
from provisioning.restore_boot import RestoreOutcome, outcome_reason
from provisioning.userdata import agent_config_from_user_data
from tests.budget.test_restore_student import closed  # noqa: F401 - `closed` is a fixture
from tests.support.outage import flask_post

HOME_FILES = {"homework/hw1.py": b"print('regression')\n", "notes.md": b"# notes\n"}


def _agent_archive() -> bytes:
    """A home as the EC2 agent archives it (`ubuntu/...`), with an .ssh folder that must never come back."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in {**HOME_FILES, ".ssh/authorized_keys": b"ssh-ed25519 AAAA old"}.items():
            info = tarfile.TarInfo(f"ubuntu/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _untar(archive: str, home: str) -> tuple[bool, str]:
    """The agent's own tar command line, run as this user (the instance runs it through runuser as the student)."""
    done = subprocess.run(restore_tar_argv(archive, home), capture_output=True, text=True, check=False)
    return done.returncode == 0, done.stderr


class Keeper:
    def answer(self, answer, now):  # type: ignore[no-untyped-def]
        return "held"


@pytest.fixture
def restored(closed, session, backend, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    """Emily's archive (the agent's format) in S3; she is restored; the worker launches her fresh workspace."""
    course, owner, emily, _david, _clock, end = closed
    body = _agent_archive()
    archive = session.scalar(select(WorkspaceArchive))
    backend.s3.put_object(Bucket=backend.bucket, Key=archive.s3_key, Body=body)
    archive.sha256, archive.size_bytes = hashlib.sha256(body).hexdigest(), len(body)
    session.commit()
    restore, _ = restore_student(session, course, RestoreRequest(emily.id, 7, Decimal(0)), actor_id=owner.id,
                                 now=end + timedelta(days=1))  # fmt: skip
    session.commit()
    provision_workspace(restore.workspace_id)
    session.expire_all()
    ws = session.get(Workspace, restore.workspace_id)
    raw = backend.ec2.describe_instance_attribute(InstanceId=ws.instance_id, Attribute="userData")["UserData"]["Value"]
    cfg = agent_config_from_user_data(base64.b64decode(raw).decode())
    home = tmp_path / "home"
    home.mkdir()
    cfg.update(home=str(home), archive_tmp=str(tmp_path), motd=str(tmp_path / "motd"),
               restore_state=str(tmp_path / "restore.json"))  # fmt: skip
    return restore, ws, cfg, body


def _app_post(settings, aws_env, backend):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    app = create_app(replace(settings, aws_endpoint_url=aws_env, aws_bucket=backend.bucket))
    return app, flask_post(app.test_client(), lambda: True)


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def test_the_agent_restores_once_and_the_tool_records_it(restored, session, settings, aws_env, backend, tmp_path):
    restore, ws, cfg, body = restored
    assert set(cfg["restore"]) == {"url", "sha256"} and cfg["restore"]["sha256"] == hashlib.sha256(body).hexdigest()
    state = cfg["restore_state"]
    outcome = restore_once(cfg, extract=_untar)
    assert outcome == {"bytes": len(body), "sha256_ok": True, "extracted": True, "error": ""}
    home = Path(cfg["home"])
    assert {p: (home / p).read_bytes() for p in HOME_FILES} == HOME_FILES and not (home / ".ssh").exists()
    assert not list(tmp_path.glob("cwc-restore-*"))  # the download is removed
    fetches: list[str] = []
    assert restore_once(cfg, extract=_untar, opener=lambda *a, **k: fetches.append("again")) == outcome
    assert fetches == []  # a restarted agent reports what it did; it never fetches twice

    app, post = _app_post(settings, aws_env, backend)
    try:
        cfg["_restore"] = outcome
        seen: dict[str, object] = {}
        assert heartbeat(cfg, Keeper(), {"workspace_id": ws.id}, 0, post=post, write_keys=lambda *a: None,
                         make_dirs=lambda *a: None, seen=seen) == "held"  # fmt: skip
        assert seen["restore_recorded"] is True and "_restore" not in cfg
        assert json.loads(Path(state).read_text())["reported"] is True
        assert restore_once(cfg, extract=_untar) is None  # after a reboot: nothing more to report
        session.expire_all()
        row = session.get(StudentRestore, restore.id)
        assert (row.outcome, row.outcome_reason, row.restored_bytes) == ("restored", "", len(body))
        assert row.restored_at is not None and row.outcome_at is not None
        assert _audits(session, "workspace.home_restored") == 1
        details = session.scalar(select(AuditEvent.details).where(AuditEvent.action == "workspace.home_restored"))
        assert details == {"restore": restore.id, "bytes": len(body), "sha256_ok": True, "extracted": True,
                           "by": "agent"}  # fmt: skip
        # an agent that lost the answer reports again: acknowledged, nothing recorded twice
        cfg["_restore"] = outcome
        heartbeat(cfg, Keeper(), {"workspace_id": ws.id}, 0, post=post, write_keys=lambda *a: None,
                  make_dirs=lambda *a: None)  # fmt: skip
        assert "_restore" not in cfg and _audits(session, "workspace.home_restored") == 1
        plain = post(cfg["url"], {"workspace_id": ws.id}, cfg["token"])[1]
        assert "restore_recorded" not in plain  # only an answer to a report says so
    finally:
        app.extensions["cwc"].engine.dispose()


def test_a_download_that_does_not_match_is_not_unpacked_and_is_recorded_failed(
    restored, session, settings, aws_env, backend, tmp_path
):
    restore, ws, cfg, body = restored
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.id == restore.archive_id))
    backend.s3.put_object(Bucket=backend.bucket, Key=archive.s3_key, Body=body + b"tampered")
    outcome = restore_once(cfg, extract=_untar)
    assert outcome == {"bytes": len(body) + 8, "sha256_ok": False, "extracted": False,
                       "error": "the download does not match the archive's SHA-256"}  # fmt: skip
    assert list(Path(cfg["home"]).iterdir()) == []  # nothing unpacked
    app, post = _app_post(settings, aws_env, backend)
    try:
        cfg["_restore"] = outcome
        heartbeat(cfg, Keeper(), {"workspace_id": ws.id}, 0, post=post, write_keys=lambda *a: None,
                  make_dirs=lambda *a: None)  # fmt: skip
    finally:
        app.extensions["cwc"].engine.dispose()
    session.expire_all()
    row = session.get(StudentRestore, restore.id)
    assert (row.outcome, row.outcome_reason) == ("failed", "the download does not match the archive's SHA-256")
    assert row.restored_at is None and row.restored_bytes == len(body) + 8
    assert _audits(session, "workspace.restore_failed") == 1 and _audits(session, "workspace.home_restored") == 0
    told = session.scalars(select(Notification.subject).where(Notification.subject.like("%could not be restored")))
    assert list(told) == ["Emily Chen's home could not be restored"]  # the instructor


def test_a_link_s3_refuses_is_reported_as_a_failed_download(restored, backend, tmp_path):
    restore, _ws, cfg, _body = restored
    expired = dict(cfg["restore"], url=backend.archive_download_url("courses/nowhere/home.tar.gz", 60))
    outcome = restore_home(cfg, expired, _untar)
    assert outcome["bytes"] == 0 and not outcome["sha256_ok"] and not outcome["extracted"]
    assert outcome["error"].startswith("download failed: HTTP Error 404")
    assert restore_home(cfg, {"sha256": "0" * 64}, _untar)["error"] == "no download link in the restore request"


def test_bad_reports_are_refused_and_text_is_cleaned(restored, session, client):
    restore, ws, cfg, _body = restored
    url, token = "/api/agent/heartbeat", {"Authorization": f"Bearer {cfg['token']}"}
    for bad in ({"bytes": -1, "sha256_ok": True, "extracted": True}, {"bytes": 1, "sha256_ok": "maybe"},
                {"bytes": 1, "sha256_ok": True, "extracted": True, "error": "x" * 1001},
                {"bytes": 1, "sha256_ok": False, "extracted": False, "error": "nul\x00"}):  # fmt: skip
        resp = client.post(url, json={"workspace_id": ws.id, "restore": bad}, headers=token)
        assert resp.status_code == 400 and "restore" in resp.get_json()["message"]
    session.expire_all()
    assert session.get(StudentRestore, restore.id).outcome == ""  # nothing recorded
    odd = {"bytes": 0, "sha256_ok": False, "extracted": False, "error": "download failed:\x1b[31m <b>no</b>\n"}
    resp = client.post(url, json={"workspace_id": ws.id, "restore": odd}, headers=token)
    assert resp.status_code == 200 and resp.get_json()["restore_recorded"] is True
    session.expire_all()
    assert session.get(StudentRestore, restore.id).outcome_reason == "download failed:[31m <b>no</b>"


def test_the_pure_reason():
    assert outcome_reason(RestoreOutcome(10, True, True)) == ""
    assert outcome_reason(RestoreOutcome(10, False, False)) == "the download does not match the archive's SHA-256"
    assert outcome_reason(RestoreOutcome(10, True, False)) == "the archive could not be unpacked"
    assert outcome_reason(RestoreOutcome(0, False, False, "download failed: timed out")) == "download failed: timed out"
    assert not RestoreOutcome(10, True, True, "late error").ok
