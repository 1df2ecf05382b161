"""Workspace pages through full launches: first click, who may see and act, SSH keys, materials, agent API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from classroom.jobs.queue import get_queue
from classroom.models import Enrollment, Heartbeat, Person, SshKey, Workspace
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.agent_service import issue_agent_token
from provisioning.ssh_keys import generate_key_pair
from tests.conftest import count_rows
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    application = create_app(
        settings.with_(
            aws_endpoint_url=backend.ec2.meta.endpoint_url,
            aws_bucket=backend.bucket,
            image_parameter_prefix=backend.image_parameter_prefix,
        )
    )
    yield application
    application.extensions["cwc"].engine.dispose()


def _student(client, canvas, n=1):  # type: ignore[no-untyped-def]
    resp = launch(client, canvas, canvas.user("student", n))
    assert resp.status_code == 303 and "/app/workspace" in resp.headers["Location"]
    with client.application.app_context():
        from lti_app.runtime import runtime

        with runtime().sessions() as s:
            ensure_policies(s)  # the course was made by this launch; give it the CS229 policy
    return tool_token(resp)


def test_first_click_requests_one_workspace_and_queues_one_job(client, canvas, redis, engine):
    token = _student(client, canvas)
    for _ in range(3):  # reloads and repeated clicks
        page = client.get("/app/workspace", query_string={"t": token})
        assert page.status_code == 200 and b"Queued" in page.data
    assert count_rows(engine, "workspaces") == 1
    assert len(get_queue(redis)) == 1
    assert b"$0.05" in page.data and b"a day if left on 24/7" in page.data  # t3.medium and IPv4, price table


def test_students_never_see_each_others_workspaces(client, canvas, session):
    emily = _student(client, canvas, 1)
    client.get("/app/workspace", query_string={"t": emily})
    ws = session.scalar(select(Workspace))
    david = _student(client, canvas, 2)
    assert client.get(f"/api/workspaces/{ws.id}", query_string={"t": david}).status_code == 404
    assert client.get(f"/api/workspaces/{ws.id}", query_string={"t": emily}).get_json()["state"] == "requested"


def _running_workspace(client, canvas, session):  # type: ignore[no-untyped-def]
    emily = _student(client, canvas, 1)
    client.get("/app/workspace", query_string={"t": emily})
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
    assert client.post(f"/app/workspaces/{ws.id}/stop", data=form).status_code == 303
    session.refresh(ws)
    assert ws.state is WorkspaceState.STOPPING and ws.stop_mode == "hibernate"


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
    assert ok.status_code == 200 and ok.get_json() == {"authorized_keys": []}
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
