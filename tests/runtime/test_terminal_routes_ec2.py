"""The terminal's ticket route when workspaces are EC2 instances (a gateway, no local runtime): the owner gets a
ticket only once the instance's host key is pinned; before that, 409 with the reason and no ticket written. The
other roles are refused as before."""

from __future__ import annotations

from dataclasses import replace

import asyncssh
import pytest
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Course, Person
from classroom.services.terminal import _TICKET
from provisioning.agent_service import issue_agent_token
from tests.runtime.test_terminal_routes import _audits, _post
from tests.support.budget import make_running
from tests.support.lti import launch, tool_token


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """A gateway, no local runtime: the tool reaches workspaces at their instances (nothing listens here)."""
    return replace(settings, gateway_port=8765, runtime_ssh_port=0)


def test_the_owner_gets_a_ticket_only_once_the_host_key_is_pinned(app, client, canvas, session, redis):  # type: ignore[no-untyped-def]
    tokens = {
        "emily": tool_token(launch(client, canvas, canvas.user("student", 1))),
        "david": tool_token(launch(client, canvas, canvas.user("student", 2))),
        "martinez": tool_token(launch(client, canvas, canvas.user("instructor", 1))),
        "stranger": tool_token(launch(client, canvas, canvas.user("instructor", 2), context_id="other-course")),
    }
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    ws = make_running(session, course.id, emily.id, utcnow())
    ws.public_ip = "198.51.100.7"
    agent = {"Authorization": f"Bearer {issue_agent_token(ws)}"}
    session.commit()
    path = f"/app/workspaces/{ws.id}/terminal/ticket"
    home = client.get("/app/workspaces", query_string={"t": tokens["emily"]}).get_data(as_text=True)
    assert "Open terminal" in home  # offered; the ticket says why it cannot open yet
    refused = _post(app, client, path, tokens["emily"])
    assert refused.status_code == 409 and "no pinned SSH host key" in refused.json["message"]
    assert not redis.keys(_TICKET + "*")
    assert _post(app, client, path, tokens["david"]).status_code == 404
    assert _post(app, client, path, tokens["stranger"]).status_code == 404
    assert _post(app, client, path, tokens["martinez"]).status_code == 409  # staff watch only a shared terminal
    assert client.post(path, data={}).status_code == 401
    assert not redis.keys(_TICKET + "*") and _audits(session, "terminal.%") == 0
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    assert client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "host_keys": [key]},
                       headers=agent).status_code == 200  # fmt: skip
    granted = _post(app, client, path, tokens["emily"])
    assert granted.status_code == 200 and granted.json["mode"] == "shell" and len(redis.keys(_TICKET + "*")) == 1
