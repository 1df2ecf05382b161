"""Every integrity route by role (instructor, head TA, read-only TA, student, nobody; another course's rows),
refusals that write nothing, the audit export verified by the CLI and the page (an edited event is found),
the agent's snapshot endpoints, and the retention purge."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from classroom.audit import verify_chain
from classroom.cli import main
from classroom.integrity.purge import expired_courses, purge_course
from classroom.models import (
    ActivityEvent,
    AuditEvent,
    AuditPurge,
    Course,
    DeadlineSnapshot,
    IntegritySettings,
    SimilarityRun,
)
from lti_app.auth import csrf_token
from tests.integrity.conftest import add_workspace, agent_events, local
from tests.support.factories import make_course

NOW = int(datetime(2024, 10, 16, 12, tzinfo=UTC).timestamp())


def _count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def world(cs229, session, backend, client):  # type: ignore[no-untyped-def]
    ws = add_workspace(session, backend, cs229, 1, local(2024, 10, 15, 14, 30))
    agent_events(
        client,
        ws,
        [
            {
                "id": "login-0000001",
                "kind": "ssh_login",
                "at": NOW,
                "details": {"session": "a", "source_ip": "128.12.1.1"},
            },
            {"id": "logout-000001", "kind": "ssh_logout", "at": NOW + 3600, "details": {"session": "a"}},
            {"id": "commit-000001", "kind": "git_commit", "at": NOW + 60, "details": {"message": "=cmd|' /C calc'!A0"}},
            {
                "id": "download-0001",
                "kind": "download",
                "at": NOW + 90,
                "details": {
                    "tool": "curl",
                    "url": "https://example.org/x.py",
                    "path": "x.py",
                    "bytes": 10,
                    "sha256": "0" * 64,
                },
            },
        ],
    )
    return cs229


def _csrf(client, token):  # type: ignore[no-untyped-def]
    with client.application.app_context():
        return csrf_token(token)


GETS = [
    ("/app/integrity", {}),
    ("/app/integrity/report", {"assignment": "hw5"}),
    ("/app/integrity/audit", {}),
    ("/app/integrity/audit/export", {}),
]


def test_pages_by_role_and_nothing_written_on_refusal(world, client, session):
    t = world.tokens
    expected = {
        "instructor": [200, 200, 200, 200],
        "head_ta": [200, 200, 403, 403],
        "ta": [403] * 4,
        "emily": [403] * 4,
    }
    for who, codes in expected.items():
        for (url, args), code in zip(GETS, codes, strict=True):
            before = _count(session, AuditEvent)
            resp = client.get(url, query_string={"t": t[who], **args})
            assert resp.status_code == code, (who, url)
            if code == 403:
                assert _count(session, AuditEvent) == before, (who, url)
    for url, args in [*GETS, ("/app/my-activity", {})]:
        assert client.get(url, query_string=args).status_code in (401, 403)
    assert client.get("/app/my-activity", query_string={"t": t["emily"]}).status_code == 200


def test_my_activity_lists_my_typed_commands_under_their_session_only_for_me(cs229, session, backend, client):
    now = int(datetime.now(UTC).timestamp())
    for n in (1, 2):
        ws = add_workspace(session, backend, cs229, n, datetime.now(UTC) - timedelta(days=1))
        login = {"session": f"s{n}", "source_ip": "127.0.0.1"}
        agent_events(client, ws, [
            {"id": f"login-{n}-00001", "kind": "ssh_login", "at": now - 600, "details": login},
            {"id": f"cmd-{n}-000001", "kind": "command", "at": now - 500,
             "details": {"line": f"python solve_{n}.py", "session": f"s{n}", "cwd": "/home/ubuntu"}},
            {"id": f"logout-{n}-0001", "kind": "ssh_logout", "at": now - 60, "details": {"session": f"s{n}"}},
        ])  # fmt: skip
    emily = client.get("/app/my-activity", query_string={"t": cs229.tokens["emily"]}).get_data(as_text=True)
    assert "commands typed:" in emily and "$ python solve_1.py" in emily and "solve_2" not in emily
    david = client.get("/app/my-activity", query_string={"t": cs229.tokens["david"]}).get_data(as_text=True)
    assert "$ python solve_2.py" in david and "solve_1" not in david


def test_report_refuses_bad_input_with_4xx_and_writes_nothing(world, client, session):
    head = world.tokens["head_ta"]
    before = _count(session, AuditEvent)
    for args in (
        {"assignment": "nope"},
        {"assignment": "hw5", "start": "yesterday"},
        {"assignment": "hw5", "student": "x"},
        {"assignment": "hw5", "student": "999999"},
        {"assignment": "hw5", "format": "docx"},
        {"assignment": "hw5", "start": "2024-10-20", "end": "2024-10-01"},
    ):
        assert client.get("/app/integrity/report", query_string={"t": head, **args}).status_code == 400, args
    assert _count(session, AuditEvent) == before
    csv = client.get(
        "/app/integrity/report",
        query_string={"t": head, "assignment": "hw5", "format": "csv", "start": "2024-10-01", "end": "2024-10-30"},
    ).get_data(as_text=True)
    assert "'=cmd" in csv and "curl https://example.org/x.py" in csv  # formulas defused; downloads cited


def test_settings_are_for_instructors_and_validated(world, client, session):
    t = world.tokens
    good = {"campus_ranges": "10.0.0.0/8", "snapshot_path": "hw/{assignment}", "similarity_threshold": "75"}
    for who in ("head_ta", "ta", "emily"):
        resp = client.post("/app/integrity/settings", data={"t": t[who], "csrf_token": _csrf(client, t[who]), **good})
        assert resp.status_code == 403
    assert client.post("/app/integrity/settings", data={"t": t["instructor"], **good}).status_code == 403  # no CSRF
    bad = client.post(
        "/app/integrity/settings",
        data={
            "t": t["instructor"],
            "csrf_token": _csrf(client, t["instructor"]),
            **good,
            "campus_ranges": "everywhere",
        },
    )
    assert bad.status_code == 400 and "not an address range" in bad.get_data(as_text=True)
    assert session.get(IntegritySettings, world.course.id).campus_ranges == ["127.0.0.0/8"]
    ok = client.post(
        "/app/integrity/settings", data={"t": t["instructor"], "csrf_token": _csrf(client, t["instructor"]), **good}
    )
    assert ok.status_code == 200
    session.expire_all()
    assert session.get(IntegritySettings, world.course.id).similarity_threshold == 75
    recorded = client.get("/app/recorded", query_string={"t": t["emily"]}).get_data(as_text=True)
    assert "Not recorded: the commands you type" in recorded and "deadline snapshot" in recorded
    assert "The commands you type in a terminal" not in recorded
    on = {**good, "record_commands": "on"}
    for who in ("head_ta", "ta", "emily"):  # only the instructor turns audit logging on
        resp = client.post("/app/integrity/settings", data={"t": t[who], "csrf_token": _csrf(client, t[who]), **on})
        assert resp.status_code == 403
    session.expire_all()
    assert session.get(IntegritySettings, world.course.id).record_commands is False
    page = client.get("/app/integrity", query_string={"t": t["instructor"]}).get_data(as_text=True)
    assert 'name="record_commands"' in page and "Audit logging: record the commands typed" in page
    ok = client.post(
        "/app/integrity/settings", data={"t": t["instructor"], "csrf_token": _csrf(client, t["instructor"]), **on}
    )
    assert ok.status_code == 200
    session.expire_all()
    assert session.get(IntegritySettings, world.course.id).record_commands is True
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "integrity.settings_saved").order_by(AuditEvent.id)
    ).all()
    assert audited[-1].details["record_commands"] is True
    recorded = client.get("/app/recorded", query_string={"t": t["emily"]}).get_data(as_text=True)
    assert "The commands you type in a terminal" in recorded and "[redacted]" in recorded
    assert "Not recorded: the commands you type" not in recorded


def test_similarity_routes_by_role_and_course(world, client, session, canvas):
    t = world.tokens
    for who in ("ta", "emily"):
        resp = client.post(
            "/app/integrity/similarity", data={"t": t[who], "csrf_token": _csrf(client, t[who]), "assignment": "hw5"}
        )
        assert resp.status_code == 403
    resp = client.post(
        "/app/integrity/similarity",
        data={"t": t["head_ta"], "csrf_token": _csrf(client, t["head_ta"]), "assignment": "other"},
    )
    assert resp.status_code == 400 and _count(session, SimilarityRun) == 0
    other = make_course(session, context_id="another-course")
    foreign = SimilarityRun(
        course_id=other.id,
        link_key="hw5",
        threshold=60,
        requested_by=1,
        status="done",
        pairs=[{"a": "1", "b": "2", "score": 99, "score_a": 99, "score_b": 99, "files": ["a.py"]}],
    )
    session.add(foreign)
    session.commit()
    for url in (f"/app/integrity/similarity/{foreign.id}", f"/app/integrity/similarity/{foreign.id}/pair"):
        assert client.get(url, query_string={"t": t["head_ta"], "a": "1", "b": "2"}).status_code == 404
        assert client.get(url, query_string={"t": t["ta"], "a": "1", "b": "2"}).status_code == 403


def test_export_and_verify_find_an_edited_event(world, client, session, database_url, monkeypatch, engine):
    t = world.tokens["instructor"]
    export = client.get("/app/integrity/audit/export", query_string={"t": t}).get_data(as_text=True)
    records = [json.loads(line) for line in export.splitlines()]
    assert sum(1 for r in records if r["action"] == "activity.recorded") == 4
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    args = ["audit", "export", "--course", str(world.course.id), "--from", "2000-01-01", "--to", "2100-01-01"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    path = "/tmp/cwc-int19-export.jsonl"
    with open(path, "w") as f:
        f.write(out.output)
    ok = CliRunner().invoke(main, ["audit", "verify-export", path])
    assert ok.exit_code == 0 and "export ok" in ok.output

    page = client.post(
        "/app/integrity/audit/verify",
        data={"t": t, "csrf_token": _csrf(client, t), "export": (io.BytesIO(export.encode()), "a.jsonl")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 200 and "match the hash chain" in page.get_data(as_text=True)
    garbage = client.post(
        "/app/integrity/audit/verify",
        data={"t": t, "csrf_token": _csrf(client, t), "export": (io.BytesIO(b"{nope"), "a.jsonl")},
        content_type="multipart/form-data",
    )
    assert garbage.status_code == 400

    # Someone with database access edits David's... here Emily's download event, and then its chained copy.
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE activity_events DISABLE TRIGGER activity_events_no_update_delete"))
        conn.execute(text("UPDATE activity_events SET details = '{\"tool\": \"pip\"}' WHERE kind = 'download'"))
        conn.execute(text("ALTER TABLE activity_events ENABLE TRIGGER activity_events_no_update_delete"))
    bad = CliRunner().invoke(main, ["audit", "verify-export", path])
    assert bad.exit_code == 1 and "differs from its chained record" in bad.output
    edited_id = next(
        r["id"] for r in records if r["action"] == "activity.recorded" and r["details"]["kind"] == "download"
    )
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
        conn.execute(
            text("UPDATE audit_events SET details = jsonb_set(details, '{kind}', '\"pip\"') WHERE id = :i"),
            {"i": edited_id},
        )
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    worse = CliRunner().invoke(main, ["audit", "verify-export", path])
    assert worse.exit_code == 1 and f"event {edited_id}: the database's copy differs" in worse.output
    page = client.post(
        "/app/integrity/audit/verify",
        data={"t": t, "csrf_token": _csrf(client, t), "export": (io.BytesIO(export.encode()), "a.jsonl")},
        content_type="multipart/form-data",
    )
    assert f"event {edited_id}" in page.get_data(as_text=True)


def test_agent_snapshot_endpoints_take_only_the_wanted_folder(world, client, session):
    ws = world.spaces[1]
    assert client.post("/api/agent/snapshots", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 403
    auth = {"Authorization": f"Bearer tok-{ws.id}"}
    assert client.post("/api/agent/snapshots", json={}, headers=auth).get_json() == {"snapshots": []}
    shot = DeadlineSnapshot(
        course_id=world.course.id,
        workspace_id=ws.id,
        person_id=ws.person_id,
        link_key="hw5",
        folder="homework/hw5",
        due_at=datetime.now(UTC),
    )
    session.add(shot)
    session.commit()
    assert (
        client.post("/api/agent/snapshots", json={}, headers=auth).get_json()["snapshots"][0]["folder"]
        == "homework/hw5"
    )
    import base64

    from tests.integrity.test_pure import _tar

    outside = base64.b64encode(_tar({".ssh/id_ed25519": b"secret"})).decode()
    for body in ({"archive": outside}, {"archive": "%%%"}, {}):
        assert client.post(f"/api/agent/snapshots/{shot.id}", json=body, headers=auth).status_code == 400
    session.expire_all()
    assert session.get(DeadlineSnapshot, shot.id).sha256 is None


def test_purge_after_a_year_removes_the_chain_and_records_what(world, session, engine):
    course = session.get(Course, world.course.id)
    assert expired_courses(session, date.today()) == []
    course.term_end = date.today() - timedelta(days=400)
    course.term_start = course.term_end - timedelta(days=100)
    session.commit()
    assert expired_courses(session, date.today()) == [course.id]
    events = session.scalar(select(func.count()).where(AuditEvent.course_id == course.id))
    record, keys = purge_course(session, course.id)
    session.commit()
    assert record.audit_events == events and record.activity_events == 4 and keys == []
    assert _count(session, ActivityEvent) == 0
    assert session.scalar(select(func.count()).where(AuditEvent.course_id == course.id)) == 0
    (purge,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.purged"))
    assert purge.course_id is None and purge.details["audit_events"] == events
    assert _count(session, AuditPurge) == 1 and verify_chain(session).ok
    with pytest.raises(Exception, match="append-only"):
        session.execute(text("DELETE FROM audit_events"))
    session.rollback()


def test_purge_job_keeps_a_snapshot_another_course_still_holds(world, session, backend, monkeypatch, database_url,
                                                               redis_url):  # fmt: skip
    from classroom.integrity.store import snapshot_key
    from classroom.jobs.context import forget_env_contexts
    from provisioning.aws_evidence import store_for
    from provisioning.integrity_jobs import purge_expired_evidence

    store = store_for(backend)
    shared, own = store.put(b"same bytes"), store.put(b"only this course")
    other = make_course(session, context_id="another-course")
    ws = world.spaces[1]
    for course_id, key in ((world.course.id, shared), (world.course.id, own), (other.id, shared)):
        session.add(DeadlineSnapshot(course_id=course_id, workspace_id=ws.id if course_id == world.course.id else 0,
                                     person_id=ws.person_id, link_key=key[-20:], folder="homework/hw5",
                                     due_at=datetime.now(UTC), sha256=key[-71:-7], s3_key=key))  # fmt: skip
    session.get(Course, world.course.id).term_end = date.today() - timedelta(days=400)
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)  # the job context's (a worker always has both)
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    forget_env_contexts()  # build the jobs' context from this test's environment
    try:
        assert purge_expired_evidence(store) == 1
    finally:
        forget_env_contexts()  # close its connections before the test database is emptied
    assert store.get(shared) == b"same bytes" and snapshot_key(b"same bytes") == shared
    with pytest.raises(Exception, match="could not read"):
        store.get(own)
