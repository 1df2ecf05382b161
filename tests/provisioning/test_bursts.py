"""Bursts of clicks through the Flask app: one transition, one audit event and one job per effective change."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from classroom.jobs.queue import QUEUE_NAMES, get_queue
from classroom.models import AuditEvent, Workspace, WorkspaceEvent
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from tests.provisioning.test_workspace_web import _start, _student, app  # noqa: F401 - the app fixture with simulated AWS

S = WorkspaceState


def test_200_concurrent_stop_and_start_clicks_make_one_change_each_and_no_5xx(app, client, canvas, session, redis):  # noqa: F811
    from lti_app.auth import csrf_token

    emily = _student(client, canvas)
    assert _start(client, emily).status_code == 303  # the explicit Start (a GET starts nothing)
    ws = session.scalar(select(Workspace))
    ws.state, ws.desired_state, ws.instance_id = S.STOPPED, DesiredState.STOPPED, "i-0abc"
    session.commit()
    for name in QUEUE_NAMES:
        get_queue(redis, name).empty()  # the first click's provision job
    with app.app_context():
        form = {"t": emily, "csrf_token": csrf_token(emily)}

    def click(n: int) -> int:
        action = "start" if n % 2 == 0 else "stop"
        with app.test_client() as c:
            return c.post(f"/app/workspaces/{ws.id}/{action}", data=form).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = Counter(pool.map(click, range(200)))
    # a Stop while starting is accepted (303); a Start while stopping is refused (409, or 403 by the policy)
    assert sum(codes.values()) == 200 and set(codes) <= {303, 403, 409} and codes[303] > 1, codes
    changes = session.scalars(
        select(WorkspaceEvent.to_state)
        .where(WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.to_state.in_((S.STARTING, S.STOPPING)))
        .order_by(WorkspaceEvent.id)
    ).all()
    assert changes == [S.STARTING, S.STOPPING]  # stopped → starting, then the stop while starting
    audited = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.subject == str(ws.id), AuditEvent.action.like("workspace.%_requested"))
        .order_by(AuditEvent.id)
    ).all()
    assert audited == ["workspace.start_requested", "workspace.stop_requested"]
    assert sorted(j for name in QUEUE_NAMES for j in get_queue(redis, name).job_ids) == [
        f"start_workspace-{ws.id}",
        f"stop_workspace-{ws.id}",
    ]
    session.refresh(ws)
    assert ws.desired_state is DesiredState.HIBERNATED and ws.state is S.STOPPING
