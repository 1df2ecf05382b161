"""The "Restore a student" page over real signed launches: instructors restore; TAs, students and anonymous are
refused with nothing written; a student without an archive gets a clear message and nothing is created."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Course, CoursePolicy, Enrollment, Person, StudentRestore, Workspace, WorkspaceArchive
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from lti_app.auth import csrf_token
from provisioning.agent_service import issue_agent_token
from tests.conftest import count_rows
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token

TABLES = ("student_restores", "workspaces", "budget_grants", "audit_events")


def _closed_course(client, canvas, session):  # type: ignore[no-untyped-def]
    """Dr. Martinez and Emily launch; the term has closed and Emily's home was archived."""
    owner = tool_token(launch(client, canvas, canvas.user("instructor")))
    student = tool_token(launch(client, canvas, canvas.user("student")))
    ensure_policies(session)
    course = session.scalar(select(Course))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    past = utcnow() - timedelta(days=2)
    old = Workspace(course_id=course.id, person_id=emily.id, link_key="hw1", template_id="ml-cpu-student",
                    instance_type="t3.medium", volume_gb=30, region="us-east-1", state=WorkspaceState.TERMINATED,
                    instance_id="i-0emily", created_at=past, state_changed_at=past)  # fmt: skip
    session.add(old)
    session.flush()
    key = f"courses/c{course.id}/archives/ws{old.id}/home.tar.gz"
    session.add(WorkspaceArchive(workspace_id=old.id, course_id=course.id, s3_key=key, sha256="0" * 64, size_bytes=10,
                                 retain_days=365))  # fmt: skip
    session.get(CoursePolicy, course.id).closed_at = past
    session.commit()
    return owner, student, emily


def _rows(engine) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return tuple(count_rows(engine, t) for t in TABLES)


def test_the_instructor_restores_emily_once_and_sees_it_listed(client, canvas, session, engine):
    owner, _student, emily = _closed_course(client, canvas, session)
    page = client.get("/app/restore", query_string={"t": owner})
    assert page.status_code == 200 and "Emily" in page.get_data(as_text=True)
    form = {**hidden_fields(page.get_data(as_text=True)), "person_id": str(emily.id), "days": "7", "top_up": "10"}
    resp = client.post("/app/restore", data=form)
    assert resp.status_code == 303
    again = client.post("/app/restore", data=form)  # a double click
    assert again.status_code == 303
    restores = session.scalars(select(StudentRestore)).all()
    assert len(restores) == 1 and restores[0].days == 7
    listed = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'id="restore-{restores[0].id}"' in listed and "workspace on its way" in listed
    assert "not reported yet" in listed


def test_the_page_shows_what_the_restored_workspace_reported(client, canvas, session):
    """On EC2 the workspace's agent reports the restore in its heartbeat (tests/term/test_restore_outcome.py)."""
    owner, _student, emily = _closed_course(client, canvas, session)
    page = client.get("/app/restore", query_string={"t": owner})
    form = {**hidden_fields(page.get_data(as_text=True)), "person_id": str(emily.id), "days": "7"}
    assert client.post("/app/restore", data=form).status_code == 303
    restore = session.scalar(select(StudentRestore))
    ws = session.get(Workspace, restore.workspace_id)
    token = issue_agent_token(ws)
    session.commit()
    report = {"bytes": 2048, "sha256_ok": False, "extracted": False, "error": ""}
    beat = client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "restore": report},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert beat.status_code == 200 and beat.get_json()["restore_recorded"] is True
    listed = client.get("/app/restore", query_string={"t": owner}).get_data(as_text=True)
    row = listed[listed.index(f'id="restore-{restore.id}"') :]
    assert "<strong>failed</strong>: the download does not match the archive&#39;s SHA-256" in row


def test_a_student_without_an_archive_gets_a_message_and_nothing_is_written(client, canvas, session, engine):
    owner, _student, _emily = _closed_course(client, canvas, session)
    tool_token(launch(client, canvas, canvas.user("student", 2)))
    david = session.scalar(select(Person).where(Person.sub == "student-2"))
    page = client.get("/app/restore", query_string={"t": owner})
    before = _rows(engine)
    resp = client.post("/app/restore", data={**hidden_fields(page.get_data(as_text=True)),
                                             "person_id": str(david.id), "days": "7"})  # fmt: skip
    assert resp.status_code == 422 and b"no archived home" in resp.data
    for bad in ({"days": "0"}, {"days": "61"}, {"days": "NaN"}, {"top_up": "1e400"}, {"person_id": "x"},
                {"person_id": "99999999999999999999"}):  # fmt: skip
        form = {**hidden_fields(page.get_data(as_text=True)), "person_id": str(david.id), "days": "7", **bad}
        assert client.post("/app/restore", data=form).status_code == 422
    assert _rows(engine) == before


@pytest.mark.parametrize("who", ["student", "ta", "head_ta", "anonymous"])
def test_everyone_but_instructors_is_refused_and_nothing_is_written(who, client, canvas, session, engine):
    owner, student, emily = _closed_course(client, canvas, session)
    if who == "student":
        token = student
    elif who == "anonymous":
        token = ""
    else:
        token = tool_token(launch(client, canvas, canvas.user("instructor", 2)))  # starts as a read-only TA
        if who == "head_ta":
            enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "instructor-2"))
            enrollment.level = StaffLevel.HEAD_TA
            session.commit()
    before = _rows(engine)
    assert client.get("/app/restore", query_string={"t": token}).status_code in (401, 403)
    with client.application.app_context():
        csrf = csrf_token(token) if token else ""
    resp = client.post("/app/restore", data={"t": token, "csrf_token": csrf, "person_id": str(emily.id), "days": "7"})
    assert resp.status_code in (401, 403)
    assert _rows(engine) == before
    if token:
        assert "/app/restore" not in client.get("/app/home", query_string={"t": token}).get_data(as_text=True)


def test_another_courses_instructor_cannot_restore_emily(client, canvas, session, engine):
    _owner, _student, emily = _closed_course(client, canvas, session)
    other = tool_token(launch(client, canvas, canvas.user("instructor", 3), context_id="cs101-spring"))
    ensure_policies(session)
    page = client.get("/app/restore", query_string={"t": other})
    assert page.status_code == 200 and "Emily" not in page.get_data(as_text=True)
    assert "No student has an archived home" in page.get_data(as_text=True)
    before = _rows(engine)
    with client.application.app_context():
        signed = {"t": other, "csrf_token": csrf_token(other)}  # no form is shown: posted as a forger would
    resp = client.post("/app/restore", data={**signed, "person_id": str(emily.id), "days": "7"})
    assert resp.status_code == 422 and b"not a student of this course" in resp.data
    assert _rows(engine) == before
