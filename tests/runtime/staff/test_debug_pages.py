"""The debug page, files, export and recordings through full LTI launches: every role on every route, the files
are read from the runtime's home, path traversal is refused, and refusals write nothing but their audit."""

from __future__ import annotations

import io
import json
import re
import zipfile
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from classroom.db import utcnow
from classroom.models import ActivityEvent, AuditEvent, DebugSession, Heartbeat, StaffSshCert
from provisioning.ssh_keys import generate_key_pair
from tests.runtime.staff.support import TRAIN, post, set_up_course

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [
        {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": "# Homework 1 <script>alert(1)</script>"},
        {"cell_type": "code", "id": "a2", "metadata": {}, "execution_count": 3, "source": "print(batch_size)",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "4096\n"}]},
    ],
}  # fmt: skip
ROLES = ("instructor", "head_ta", "ta", "student", "other_student", "other_instructor", "anonymous")


@pytest.fixture
def cast(client, canvas, session, backend, runtime):  # type: ignore[no-untyped-def]
    c = set_up_course(client, canvas, session, backend, runtime)
    home = runtime.rt.home(c.ws.instance_id)
    (home / "homework/hw1/analysis.ipynb").write_text(json.dumps(NOTEBOOK))
    return c


def _get(client, url, cast, role):  # type: ignore[no-untyped-def]
    path, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return client.get(path, query_string=params if role == "anonymous" else {**params, "t": cast.tokens[role]})


def _expected(role: str, allowed: tuple[str, ...]) -> int:
    if role == "anonymous":
        return 401
    if role in allowed:
        return 200
    return 404 if role == "other_instructor" else 403


def test_every_role_on_the_read_routes(client, cast):  # type: ignore[no-untyped-def]
    sophie = cast.sophie.id
    for url in (f"/app/students/{sophie}/debug", f"/app/students/{sophie}/files",
                f"/app/students/{sophie}/files?path=homework/hw1/train.py"):  # fmt: skip
        for role in ROLES:
            assert _get(client, url, cast, role).status_code == _expected(role, ("instructor", "head_ta", "ta")), (
                url, role)  # fmt: skip


def test_read_only_ta_sees_status_files_and_notebooks(client, cast, session):  # type: ignore[no-untyped-def]
    sophie, ta = cast.sophie.id, cast.tokens["ta"]
    session.add(Heartbeat(workspace_id=cast.ws.id, cpu_pct=Decimal("87.5"), mem_pct=Decimal("91.25"),
                          disk_pct=Decimal("40"), ssh_sessions=1))  # fmt: skip
    session.add(ActivityEvent(workspace_id=cast.ws.id, event_id="e1", kind="file_change", at=utcnow(),
                              details={"path": "homework/hw1/train.py"}))  # fmt: skip
    session.commit()
    page = client.get(f"/app/students/{sophie}/debug", query_string={"t": ta}).get_data(as_text=True)
    assert "running" in page and "read-only access" in page and "Open debug session" not in page
    assert "CPU 87.50 %" in page and "memory 91.25 %" in page and "disk 40.00 %" in page
    assert "file_change" in page and "homework/hw1/train.py" in page
    listing = client.get(f"/app/students/{sophie}/files", query_string={"t": ta, "path": "homework/hw1"})
    assert "train.py" in listing.get_data(as_text=True) and "analysis.ipynb" in listing.get_data(as_text=True)
    text = client.get(f"/app/students/{sophie}/files", query_string={"t": ta, "path": "homework/hw1/train.py"})
    assert "batch_size = 4096" in text.get_data(as_text=True)
    nb = client.get(f"/app/students/{sophie}/files", query_string={"t": ta, "path": "homework/hw1/analysis.ipynb"})
    body = nb.get_data(as_text=True)
    assert nb.status_code == 200 and "4096" in body and "In [3]" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


@pytest.mark.parametrize("path", ["../", "homework/../../etc", "/etc/passwd", "homework/hw1/../../..", "a\x00b"])
def test_paths_outside_the_home_are_refused(client, cast, path):  # type: ignore[no-untyped-def]
    resp = client.get(f"/app/students/{cast.sophie.id}/files", query_string={"t": cast.tokens["ta"], "path": path})
    assert resp.status_code == 400 and "root:" not in resp.get_data(as_text=True)


def test_symlink_out_of_the_home_is_not_followed(client, cast, runtime):  # type: ignore[no-untyped-def]
    (runtime.rt.home(cast.ws.instance_id) / "escape").symlink_to("/etc")
    resp = client.get(f"/app/students/{cast.sophie.id}/files",
                      query_string={"t": cast.tokens["ta"], "path": "escape/passwd"})  # fmt: skip
    assert resp.status_code == 400 and "root:" not in resp.get_data(as_text=True)


def test_export_is_for_head_ta_and_instructor_and_audited(app, client, cast, session):  # type: ignore[no-untyped-def]
    url = f"/app/students/{cast.sophie.id}/export"
    resp = post(app, client, url, cast.tokens["head_ta"], path="homework")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(resp.data)).namelist()
    assert "homework/hw1/train.py" in names and zipfile.ZipFile(io.BytesIO(resp.data)).read(
        "homework/hw1/train.py").decode() == TRAIN  # fmt: skip
    whole = post(app, client, url, cast.tokens["instructor"], path="")
    assert ".trainrc" in zipfile.ZipFile(io.BytesIO(whole.data)).namelist()
    assert post(app, client, url, cast.tokens["ta"], path="").status_code == 403
    assert post(app, client, url, cast.tokens["student"], path="").status_code == 403
    assert post(app, client, url, cast.tokens["other_instructor"], path="").status_code == 404
    assert client.post(url, data={"path": ""}).status_code == 401
    assert post(app, client, url, cast.tokens["head_ta"], path="../..").status_code == 400
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.in_(("debug.export", "staff.refused"))))
    assert sorted(actions) == ["debug.export", "debug.export", "staff.refused"]


def test_ssh_session_form_roles_reason_and_end(app, client, cast, session):  # type: ignore[no-untyped-def]
    url = f"/app/students/{cast.sophie.id}/debug/ssh"
    public = generate_key_pair("alex")[1]
    assert post(app, client, url, cast.tokens["ta"], reason="look", public_key=public).status_code == 403
    assert post(app, client, url, cast.tokens["student"], reason="look", public_key=public).status_code == 403
    assert post(app, client, url, cast.tokens["other_instructor"], reason="look", public_key=public).status_code == 404
    missing = post(app, client, url, cast.tokens["head_ta"], reason="", public_key=public)
    assert missing.status_code == 400 and "Say why" in missing.get_data(as_text=True)
    full = post(app, client, url, cast.tokens["head_ta"], reason="crash", mode="full", public_key=public)
    assert full.status_code == 400 and "Full control needs its own reason" in full.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 0
    assert session.scalar(select(func.count()).select_from(DebugSession)) == 0
    ok = post(app, client, url, cast.tokens["head_ta"], reason="training crashes", public_key=public)
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "ssh-ed25519-cert-v01@openssh.com" in body and "is open until" in body
    ds = session.scalar(select(DebugSession))
    cert = session.get(StaffSshCert, ds.cert_id)
    assert cert.key_id.startswith(f"staff:{cast.people['head_ta'].id}:Alex Thompson session:D{ds.id}")
    end = f"/app/debug-sessions/{ds.id}/end"
    assert post(app, client, end, cast.tokens["ta"]).status_code == 403
    assert post(app, client, end, cast.tokens["other_instructor"]).status_code == 404
    assert post(app, client, end, cast.tokens["head_ta"]).status_code == 303
    session.expire_all()
    assert session.get(DebugSession, ds.id).ended_at is not None and session.get(StaffSshCert, ds.cert_id).revoked_at


def test_instructor_replays_the_recording(app, client, cast, session, runtime):  # type: ignore[no-untyped-def]
    import asyncssh

    from tests.runtime.conftest import ssh_run

    private, public = generate_key_pair("alex")
    resp = post(app, client, f"/app/students/{cast.sophie.id}/debug/ssh", cast.tokens["head_ta"],
                reason="training crashes", public_key=public)  # fmt: skip
    line = resp.get_data(as_text=True).split('<code id="ssh-cert">', 1)[1].split("</code>", 1)[0]
    creds = (asyncssh.import_private_key(private), asyncssh.import_certificate(line))
    assert "4096" in ssh_run(runtime.rt.port, f"ws{cast.ws.id}", [creds], "grep batch_size homework/hw1/train.py")[1]
    ds = session.scalar(select(DebugSession))
    listing = f"/app/debug-sessions/{ds.id}/recordings"
    for role in ROLES:
        want = _expected(role, ("instructor",))
        assert _get(client, listing, cast, role).status_code == want, role
    page = client.get(listing, query_string={"t": cast.tokens["instructor"]}).get_data(as_text=True)
    rec_url = re.search(r'href="([^"]*/recordings/\d+\?[^"]*)"', page).group(1).replace("&amp;", "&")
    replay = client.get(rec_url).get_data(as_text=True)
    assert "grep batch_size homework/hw1/train.py" in replay and "asciinema-player.min.js" in replay
    cast_resp = client.get(rec_url.replace("?", "/cast?"))
    assert cast_resp.status_code == 200 and json.loads(cast_resp.data.splitlines()[0])["version"] == 2


def test_every_role_on_the_acting_routes(app, client, cast, session, runtime):  # type: ignore[no-untyped-def]
    public = generate_key_pair("staff")[1]
    sophie = cast.sophie.id

    def status(role: str, url: str, **form: str) -> int:
        if role == "anonymous":
            return client.post(url, data=form).status_code
        return post(app, client, url, cast.tokens[role], **form).status_code

    acting = ("instructor", "head_ta")
    for role in ROLES:
        want = 200 if role in acting else 401 if role == "anonymous" else 404 if role == "other_instructor" else 403
        got = status(role, f"/app/students/{sophie}/debug/ssh", reason="help her", public_key=public)
        assert got == want, ("ssh", role, got)
        assert status(role, f"/app/students/{sophie}/export", path="homework") == want, ("export", role)
    sessions = session.scalars(select(DebugSession).order_by(DebugSession.id)).all()
    assert len(sessions) == 2
    for role in ROLES:
        want = 303 if role in acting else 401 if role == "anonymous" else 404 if role == "other_instructor" else 403
        target = sessions[0] if role != "head_ta" else sessions[1]
        assert status(role, f"/app/debug-sessions/{target.id}/end") == want, ("end", role)
    recording = f"/app/debug-sessions/{sessions[0].id}/recordings/999"
    for role in ROLES:
        got = _get(client, recording, cast, role).status_code
        want = 404 if role in ("instructor", "other_instructor") else 401 if role == "anonymous" else 403
        assert got == want, ("replay", role, got)
        assert _get(client, recording + "/cast", cast, role).status_code == want
