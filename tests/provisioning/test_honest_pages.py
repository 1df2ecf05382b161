"""The pages tell the truth: a wanted stop that AWS has not carried out is shown as such, never as Stopped."""

from __future__ import annotations

from sqlalchemy import select

from classroom.models import Workspace
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from tests.provisioning.test_workspace_web import _running_workspace, app  # noqa: F401 - simulated-AWS app
from tests.support.lti import launch, tool_token


def test_student_and_staff_pages_show_intent_and_what_aws_reports(app, client, canvas, session):  # noqa: F811
    emily, ws = _running_workspace(client, canvas, session)
    ws.desired_state, ws.stop_attempts, ws.stop_last_error = DesiredState.STOPPED, 3, "AWS could not stop (Throttling)"
    session.commit()
    page = client.get("/app/workspace", query_string={"t": emily}).get_data(as_text=True)
    assert "Stopping…" in page and "AWS still reports running, retrying (attempt 3)" in page
    assert ">Stopped<" not in page
    data = client.get(f"/api/workspaces/{ws.id}", query_string={"t": emily}).get_json()
    assert (data["state"], data["desired"], data["label"]) == ("running", "stopped", "Stopping…")
    owner = tool_token(launch(client, canvas, canvas.user("instructor")))
    staff = client.get("/app/home", query_string={"t": owner}).get_data(as_text=True)
    assert "running (stopping: AWS still reports running, attempt 3)" in staff
    ws = session.scalar(select(Workspace))
    ws.state = WorkspaceState.STOPPED
    session.commit()
    page = client.get("/app/workspace", query_string={"t": emily}).get_data(as_text=True)
    assert "Stopped" in page and "AWS still reports" not in page
