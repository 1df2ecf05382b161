"""Workspace pages through full launches: first click, who may see and act, SSH keys, materials, agent API."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from classroom.claims import LTI
from classroom.db import utcnow
from classroom.jobs.queue import get_queue
from classroom.models import (
    AuditEvent,
    CoursePolicy,
    Enrollment,
    Heartbeat,
    Notification,
    Person,
    SshKey,
    Workspace,
    WorkspaceFolder,
)
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.agent_service import issue_agent_token
from provisioning.ssh_keys import generate_key_pair
from tests.conftest import count_rows
from tests.support.apps import app_on_simulated_aws
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    yield from app_on_simulated_aws(settings, backend)


def _student(client, canvas, n=1):  # type: ignore[no-untyped-def]
    resp = launch(client, canvas, canvas.user("student", n))
    assert resp.status_code == 303 and "/app/workspace" in resp.headers["Location"]
    with client.application.app_context():
        from lti_app.runtime import runtime

        with runtime().sessions() as s:
            ensure_policies(s)  # the course was made by this launch; give it the CS229 policy
    return tool_token(resp)


def _start(client, token):  # type: ignore[no-untyped-def]
    """Open the link's page, then press its Start button (the form's POST, with its CSRF value)."""
    page = client.get("/app/workspace", query_string={"t": token})
    assert page.status_code == 200
    return client.post("/app/workspace", data=hidden_fields(page.get_data(as_text=True)))


def test_opening_a_link_starts_nothing_and_start_is_one_post(client, canvas, redis, engine):
    token = _student(client, canvas)
    for _ in range(3):  # the first visit and reloads: what would start, its cost, one button; nothing happens
        page = client.get("/app/workspace", query_string={"t": token})
        assert page.status_code == 200 and b"Nothing runs until you press Start" in page.data
    assert b"$0.05" in page.data and b"a day if left on 24/7" in page.data  # t3.medium and IPv4, price table
    assert b"Due Tue 3 Sep 2024, 6:59 AM UTC" in page.data and b"~/homework/cloud-workstation" in page.data
    assert count_rows(engine, "workspaces") == 0 and len(get_queue(redis)) == 0
    assert client.post("/app/workspace", data={"t": token}).status_code == 403  # no CSRF value: refused
    assert count_rows(engine, "workspaces") == 0 and len(get_queue(redis)) == 0
    form = hidden_fields(page.get_data(as_text=True))
    for _ in range(3):  # Start pressed three times
        assert client.post("/app/workspace", data=form).status_code == 303
    page = client.get("/app/workspace", query_string={"t": token})
    assert b"Queued" in page.data
    assert count_rows(engine, "workspaces") == 1 and count_rows(engine, "workspace_folders") == 1
    assert len(get_queue(redis)) == 1


def test_every_assignment_link_opens_the_same_workspace_with_its_own_folder(client, canvas, session, redis):
    token = _student(client, canvas)
    assert _start(client, token).status_code == 303
    hw2 = {LTI + "resource_link": {"id": "link-hw2", "title": "HW2: Neural Networks"},
           LTI + "custom": {"due_at": "2024-09-09T23:59:00-07:00"}}  # fmt: skip
    token = tool_token(launch(client, canvas, canvas.user("student", 1), **hw2))
    page = client.get("/app/workspace", query_string={"t": token})
    assert b"Queued" in page.data and b"Prepare ~/homework/hw2-neural-networks" in page.data
    assert client.post("/app/workspace", data=hidden_fields(page.get_data(as_text=True))).status_code == 303
    (ws,) = session.scalars(select(Workspace)).all()
    folders = session.scalars(select(WorkspaceFolder.folder).where(WorkspaceFolder.workspace_id == ws.id)).all()
    assert ws.link_key == "template:ml-cpu-student" and sorted(folders) == [
        "homework/cloud-workstation",
        "homework/hw2-neural-networks",
    ]
    assert len(get_queue(redis)) == 1  # one provisioning job, for the one workspace


def test_per_assignment_workspaces_are_a_course_option(client, canvas, session):
    token = _student(client, canvas)
    session.execute(update(CoursePolicy).values(workspace_scope="assignment"))
    session.commit()
    assert _start(client, token).status_code == 303
    hw2 = {LTI + "resource_link": {"id": "link-hw2", "title": "HW2"}, LTI + "custom": {"due_at": "2030-01-01T00:00Z"}}
    token = tool_token(launch(client, canvas, canvas.user("student", 1), **hw2))
    refused = client.get("/app/workspace", query_string={"t": token})  # a second one would pass max_concurrent
    assert refused.status_code == 403 and b"Nothing was started and nothing was charged." in refused.data
    assert sorted(session.scalars(select(Workspace.link_key)).all()) == ["link-1"]  # the GET started nothing
    session.execute(update(CoursePolicy).values(max_concurrent=2))
    session.commit()
    assert _start(client, token).status_code == 303
    assert sorted(session.scalars(select(Workspace.link_key)).all()) == ["link-1", "link-hw2"]


def test_the_course_link_is_the_students_home_and_starts_nothing(client, canvas, session, redis, engine):
    course_link = {LTI + "resource_link": {"id": "nav", "title": "Cloud Workstation"}, LTI + "custom": {}}
    resp = launch(client, canvas, canvas.user("student", 1), **course_link)
    with client.application.app_context():
        from lti_app.runtime import runtime

        with runtime().sessions() as s:
            ensure_policies(s)
    token = tool_token(resp)
    page = client.get("/app/workspace", query_string={"t": token})
    assert page.status_code == 200 and b"My workspace" in page.data and b"Start my workspace" in page.data
    first = page.get_data(as_text=True)
    assert "Your budget: $0.00 spent of $24.00 (0%)" in first
    assert 'ML final-project workspace <span class="muted">(available on request)' in first
    assert "Ask for ML final-project workspace" in first and "if left running 24/7" in first
    assert "GPU ML workstation" not in first  # a blocked template is not offered
    assert client.get("/app/workspaces", query_string={"t": token}).status_code == 200
    assert count_rows(engine, "workspaces") == 0 and len(get_queue(redis)) == 0
    started = client.post("/app/workspace", data={**hidden_fields(page.get_data(as_text=True)), "scope": "course"})
    assert started.status_code == 303 and "/app/workspaces" in started.headers["Location"]
    ws = session.scalar(select(Workspace))
    ws.state, ws.instance_id = WorkspaceState.RUNNING, "i-0home"
    session.commit()
    home = client.get("/app/workspaces", query_string={"t": token}).get_data(as_text=True)
    assert "Running" in home and "Stop workspace" in home and "Remove workspace" in home
    assert "Start my workspace" not in home and count_rows(engine, "workspace_folders") == 0


def test_students_never_see_each_others_workspaces(client, canvas, session):
    emily = _student(client, canvas, 1)
    _start(client, emily)
    ws = session.scalar(select(Workspace))
    david = _student(client, canvas, 2)
    assert client.get(f"/api/workspaces/{ws.id}", query_string={"t": david}).status_code == 404
    assert client.get(f"/api/workspaces/{ws.id}", query_string={"t": emily}).get_json()["state"] == "requested"


def _running_workspace(client, canvas, session):  # type: ignore[no-untyped-def]
    emily = _student(client, canvas, 1)
    _start(client, emily)
    ws = session.scalar(select(Workspace))
    ws.state, ws.instance_id, ws.public_ip = WorkspaceState.RUNNING, "i-0abc", "203.0.113.10"
    session.commit()
    return emily, ws


def test_running_workspace_shows_how_to_connect(client, canvas, session):
    emily, ws = _running_workspace(client, canvas, session)
    data = client.get(f"/api/workspaces/{ws.id}", query_string={"t": emily}).get_json()
    assert data["ssh_command"] == "ssh -i ~/.ssh/cwc_cs229 ubuntu@203.0.113.10"
    assert data["jupyter_url"] == "http://localhost:8888" and data["materials"] == "/mnt/cs229-materials"


def test_read_only_ta_cannot_stop_but_head_ta_can(app, client, canvas, session, redis):
    from lti_app.auth import csrf_token

    _emily, ws = _running_workspace(client, canvas, session)
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    with app.app_context():
        form = {"t": ta, "csrf_token": csrf_token(ta)}
    assert client.get(f"/api/workspaces/{ws.id}", query_string={"t": ta}).status_code == 200  # may look
    assert client.post(f"/app/workspaces/{ws.id}/stop", data=form).status_code == 403
    session.refresh(ws)
    assert ws.state is WorkspaceState.RUNNING
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    enrollment.level = StaffLevel.HEAD_TA
    session.commit()
    confirm = client.get(f"/app/workspaces/{ws.id}/stop", query_string={"t": ta}).get_data(as_text=True)
    assert "the student is told who did it and why" in confirm
    no_reason = client.post(f"/app/workspaces/{ws.id}/stop", data=form)
    assert no_reason.status_code == 400 and b"Say why" in no_reason.data  # nothing changed, nobody told
    session.refresh(ws)
    assert ws.state is WorkspaceState.RUNNING and count_rows(session.get_bind(), "notifications") == 0
    stop = {**form, "reason": "Running all weekend with nothing open"}
    assert client.post(f"/app/workspaces/{ws.id}/stop", data=stop).status_code == 303
    session.refresh(ws)
    assert ws.state is WorkspaceState.STOPPING and ws.stop_mode == "hibernate"
    told = session.scalar(select(Notification).where(Notification.person_id == ws.person_id))
    assert "stopped your workspace" in told.subject and "Reason: Running all weekend with nothing open" in told.body
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "workspace.staff_stop"))
    assert event.details["reason"] == "Running all weekend with nothing open"
    ws.state = WorkspaceState.STOPPED
    session.commit()
    home = client.get("/app/home", query_string={"t": ta}).get_data(as_text=True)
    assert f"/app/workspaces/{ws.id}/start?t=" in home  # the head TA can Start as well as Stop
    start = {**form, "reason": "Needed for the lab this afternoon"}
    assert client.post(f"/app/workspaces/{ws.id}/start", data=start).status_code == 303
    session.refresh(ws)
    assert ws.state is WorkspaceState.STARTING
    told = session.scalar(select(Notification).order_by(Notification.id.desc()))
    assert "started your workspace" in told.subject and told.person_id == ws.person_id


def test_student_stop_needs_confirmation_and_csrf(client, canvas, session):
    emily, ws = _running_workspace(client, canvas, session)
    confirm = client.get(f"/app/workspaces/{ws.id}/stop", query_string={"t": emily})
    assert confirm.status_code == 200 and b"Stop this workspace?" in confirm.data
    assert client.post(f"/app/workspaces/{ws.id}/stop", data={"t": emily}).status_code == 403
    session.refresh(ws)
    assert ws.state is WorkspaceState.RUNNING
    assert (
        client.post(f"/app/workspaces/{ws.id}/stop", data=hidden_fields(confirm.get_data(as_text=True))).status_code
        == 303
    )


def test_agent_heartbeat_accepted_with_its_token_and_rejected_with_another(client, canvas, session):
    _emily, ws = _running_workspace(client, canvas, session)
    other = Workspace(
        course_id=ws.course_id,
        person_id=ws.person_id,
        link_key="other",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.RUNNING,
    )
    session.add(other)
    session.flush()
    token, other_token = issue_agent_token(ws), issue_agent_token(other)
    session.commit()
    body = {"workspace_id": ws.id, "ssh_sessions": 1, "jupyter_active": True, "cpu_pct": 42.5, "changed_files": 3}
    ok = client.post("/api/agent/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})
    answer = ok.get_json()
    assert (
        ok.status_code == 200
        and answer["authorized_keys"] == []
        and answer["folders"] == ["homework/cloud-workstation"]
        and answer["stop"] is False
    )
    lease_left = datetime.fromisoformat(answer["lease_until"]) - utcnow()
    assert timedelta(minutes=14) < lease_left <= timedelta(minutes=15)  # plenty of budget: one whole lease
    bad = client.post("/api/agent/heartbeat", json=body, headers={"Authorization": f"Bearer {other_token}"})
    assert bad.status_code == 403
    assert client.post("/api/agent/heartbeat", json=body, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert (
        client.post("/api/agent/heartbeat", json={"x": 1}, headers={"Authorization": f"Bearer {token}"}).status_code
        == 400
    )
    assert session.scalars(select(Heartbeat.workspace_id)).all() == [ws.id]
    ws.agent_token_revoked_at = ws.created_at
    session.commit()
    assert (
        client.post("/api/agent/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    )


def test_generated_key_is_downloaded_once_and_reaches_the_agent(client, canvas, session):
    emily, ws = _running_workspace(client, canvas, session)
    page = client.get("/app/keys", query_string={"t": emily}).get_data(as_text=True)
    resp = client.post("/app/keys/generate", data=hidden_fields(page))
    assert resp.status_code == 200 and b"BEGIN OPENSSH PRIVATE KEY" in resp.data
    assert "attachment" in resp.headers["Content-Disposition"]
    key = session.scalar(select(SshKey))
    assert key is not None and "PRIVATE" not in key.public_key  # only the public half is kept
    token = issue_agent_token(ws)
    session.commit()
    answer = client.post(
        "/api/agent/heartbeat", json={"workspace_id": ws.id}, headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert answer["authorized_keys"] == [key.public_key]


def test_no_ssh_command_without_a_key_and_the_key_listed_after_generating(client, canvas, session):
    emily, ws = _running_workspace(client, canvas, session)
    for path in ("/app/workspace", "/app/workspaces"):
        html = client.get(path, query_string={"t": emily}).get_data(as_text=True)
        assert "create or upload a key first" in html and "Create or upload my SSH key" in html
        assert "ssh -i ~/.ssh/cwc_cs229" not in html
    keys = client.get("/app/keys", query_string={"t": emily}).get_data(as_text=True)
    assert "You have no SSH key yet" in keys
    assert client.post("/app/keys/generate", data=hidden_fields(keys)).status_code == 200
    keys = client.get("/app/keys", query_string={"t": emily}).get_data(as_text=True)
    assert "You have no SSH key yet" not in keys and "(generated)" in keys
    for path in ("/app/workspace", "/app/workspaces"):
        html = client.get(path, query_string={"t": emily}).get_data(as_text=True)
        assert "ssh -i ~/.ssh/cwc_cs229 ubuntu@203.0.113.10" in html and "create or upload a key first" not in html


def test_a_key_cannot_be_shared_between_students(client, canvas, engine):
    _private, public = generate_key_pair("shared")
    emily = _student(client, canvas, 1)
    page = client.get("/app/keys", query_string={"t": emily}).get_data(as_text=True)
    assert client.post("/app/keys/upload", data={**hidden_fields(page), "public_key": public}).status_code == 303
    david = _student(client, canvas, 2)
    page = client.get("/app/keys", query_string={"t": david}).get_data(as_text=True)
    refused = client.post("/app/keys/upload", data={**hidden_fields(page), "public_key": public})
    assert refused.status_code == 400 and b"registered to another person" in refused.data
    assert count_rows(engine, "ssh_keys") == 1
    bad = client.post("/app/keys/upload", data={**hidden_fields(page), "public_key": "not a key"})
    assert bad.status_code == 400 and count_rows(engine, "ssh_keys") == 1


def test_instructor_uploads_materials_and_ta_can_only_look(app, client, canvas, backend):
    from io import BytesIO

    from lti_app.auth import csrf_token

    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    page = client.get("/app/materials", query_string={"t": teacher}).get_data(as_text=True)
    resp = client.post(
        "/app/materials",
        data={**hidden_fields(page), "folder": "datasets", "files": (BytesIO(b"x,y\n1,2\n"), "mnist.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    listing = client.get("/app/materials", query_string={"t": teacher}).get_data(as_text=True)
    assert "datasets/mnist.csv" in listing
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    with app.app_context():
        form = {"t": ta, "csrf_token": csrf_token(ta)}
    assert client.get("/app/materials", query_string={"t": ta}).status_code == 200
    refused = client.post(
        "/app/materials", data={**form, "files": (BytesIO(b"z"), "evil.csv")}, content_type="multipart/form-data"
    )
    assert refused.status_code == 403
    from classroom.models import Course

    course_id = app.extensions["cwc"].sessions().scalar(select(Course.id))
    assert [p for p, _ in backend.list_materials(f"c{course_id}")] == ["datasets/mnist.csv"]


def _form(app, token):  # type: ignore[no-untyped-def]
    from lti_app.auth import csrf_token

    with app.app_context():
        return {"t": token, "csrf_token": csrf_token(token)}


def test_remove_needs_the_confirmation_box_and_is_audited(app, client, canvas, session, redis):
    emily, ws = _running_workspace(client, canvas, session)
    confirm = client.get(f"/app/workspaces/{ws.id}/remove", query_string={"t": emily})
    assert confirm.status_code == 200 and b"Remove this workspace?" in confirm.data and b"kept 365 days" in confirm.data
    queued = len(get_queue(redis))
    unticked = client.post(f"/app/workspaces/{ws.id}/remove", data=hidden_fields(confirm.get_data(as_text=True)))
    assert unticked.status_code == 400
    session.refresh(ws)
    assert ws.retire_after is None and len(get_queue(redis)) == queued
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "workspace.retire_requested")) is None
    form = {**hidden_fields(confirm.get_data(as_text=True)), "confirm": "on"}
    assert client.post(f"/app/workspaces/{ws.id}/remove", data=form).status_code == 303
    session.refresh(ws)
    assert ws.retire_after is not None and ws.state is WorkspaceState.RUNNING  # the job stops, archives, deletes
    assert get_queue(redis).fetch_job(f"retire_workspace-{ws.id}") is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "workspace.retire_requested"))
    assert event.actor_person_id == ws.person_id and event.details["by"] == "student"
    stop = client.post(f"/app/workspaces/{ws.id}/stop", data=form)
    assert stop.status_code == 409  # a retiring workspace takes no other action


def test_remove_route_roles(app, client, canvas, session):
    _emily, ws = _running_workspace(client, canvas, session)
    url = f"/app/workspaces/{ws.id}/remove"
    david = _student(client, canvas, 2)
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    other_course = tool_token(launch(client, canvas, canvas.user("instructor"), context_id="cs231-fall2024"))
    refused = {
        "another student": (david, 404),
        "read-only TA": (ta, 403),
        "instructor of another course": (other_course, 404),
        "anonymous": ("", 401),
    }
    for who, (token, status) in refused.items():
        form = {**_form(app, token), "confirm": "on"} if token else {"confirm": "on"}
        assert client.get(url, query_string={"t": token}).status_code == status, who
        assert client.post(url, data=form).status_code == status, who
        session.refresh(ws)
        assert ws.retire_after is None, who
    assert client.get("/app/workspaces", query_string={"t": ta}).status_code == 403  # the student home
    assert client.get("/app/workspaces").status_code == 401
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    enrollment.level = StaffLevel.HEAD_TA
    session.commit()
    assert client.post(url, data={**_form(app, ta), "confirm": "on"}).status_code == 303
    session.refresh(ws)
    assert ws.retire_after is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "workspace.retire_requested"))
    assert event.details["by"] == "staff"
    instructor = tool_token(launch(client, canvas, canvas.user("instructor")))
    assert client.post(url, data={**_form(app, instructor), "confirm": "on"}).status_code == 303


def test_staff_search_students_and_open_a_students_page(client, canvas, session):
    _emily, ws = _running_workspace(client, canvas, session)
    david = _student(client, canvas, 2)
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    found = client.get("/app/home", query_string={"t": ta, "q": "  emily   STUDENT1@ "}).get_data(as_text=True)
    assert "Emily Chen" in found and f"/app/students/{ws.person_id}?t=" in found
    david_id = session.scalar(select(Person.id).where(Person.sub == "student-2"))
    assert f"/app/students/{david_id}?t=" not in found
    none = client.get("/app/home", query_string={"t": ta, "q": "nobody-here"}).get_data(as_text=True)
    assert "No student matches" in none
    detail = client.get(f"/app/students/{ws.person_id}", query_string={"t": ta})
    html = detail.get_data(as_text=True)
    assert detail.status_code == 200 and "Emily Chen" in html and ws.instance_type in html and "running" in html
    assert "read-only access" in html and f"/app/workspaces/{ws.id}/stop" not in html  # a TA only looks
    ta_id = session.scalar(select(Person.id).where(Person.sub == "ta-1"))
    assert client.get(f"/app/students/{ta_id}", query_string={"t": ta}).status_code == 404  # staff are not students
    assert client.get(f"/app/students/{ws.person_id}", query_string={"t": david}).status_code == 403
