"""The agent's host keys through the real heartbeat route: the first report pins, a different one is refused
and flagged (audited once), malformed keys are 400 with nothing written, and a new instance starts unpinned."""

from __future__ import annotations

import asyncssh
from sqlalchemy import func, select

from classroom.db import utcnow
from classroom.models import AuditEvent, Course, Person, Workspace
from classroom.services.workspaces import set_state
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.agent_service import issue_agent_token
from tests.conftest import count_rows
from tests.support.budget import ensure_policies, make_running
from tests.support.lti import launch


def _key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def _workspace(client, canvas, session):  # type: ignore[no-untyped-def]
    launch(client, canvas, canvas.user("student"))
    ensure_policies(session)
    ws = make_running(session, session.scalar(select(Course.id)), session.scalar(select(Person.id)), utcnow())
    token = issue_agent_token(ws)
    session.commit()
    return ws, {"Authorization": f"Bearer {token}"}


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)))


def test_first_report_pins_and_a_different_key_is_refused_flagged_and_audited_once(client, canvas, session):
    ws, auth = _workspace(client, canvas, session)
    first, other = _key(), _key()
    body = {"workspace_id": ws.id, "host_keys": [first + " root@ip-10-0-0-7"]}
    assert client.post("/api/agent/heartbeat", json=body, headers=auth).status_code == 200
    session.refresh(ws)
    assert ws.ssh_host_keys == first and ws.ssh_host_keys_instance_id == ws.instance_id and ws.ssh_host_keys_at
    assert client.post("/api/agent/heartbeat", json=body, headers=auth).status_code == 200  # the same: nothing new
    for _ in range(2):
        resp = client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "host_keys": [other]}, headers=auth)
        assert resp.status_code == 200  # the lease still answers: only the key is refused
    session.refresh(ws)
    assert ws.ssh_host_keys == first, "never silently replaced"
    assert ws.ssh_host_keys_refused == other and ws.ssh_host_keys_refused_at is not None
    assert _audits(session, "workspace.host_keys.pinned") == 1
    assert _audits(session, "workspace.host_keys.refused") == 1  # flagged once, not every minute


def test_malformed_host_keys_are_400_and_write_nothing(client, canvas, session, engine):
    ws, auth = _workspace(client, canvas, session)
    for keys in (["ssh-ed25519 not-base64!"], ["ssh-dss AAAAB3NzaC1kc3M="], [_key()] * 9, "ssh-ed25519 x",
                 ["x" * 5000]):  # fmt: skip
        resp = client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "host_keys": keys}, headers=auth)
        assert resp.status_code == 400 and "host_keys" in resp.get_json()["message"], keys
    assert count_rows(engine, "heartbeats") == 0
    session.refresh(ws)
    assert (
        ws.ssh_host_keys == ""
        and ws.ssh_host_keys_instance_id is None
        and _audits(session, "workspace.host_keys.pinned") == 0
    )


def test_a_new_instance_is_pinned_afresh_and_termination_clears_the_pin(client, canvas, session):
    ws, auth = _workspace(client, canvas, session)
    first, second = _key(), _key()
    client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "host_keys": [first]}, headers=auth)
    ws = session.get(Workspace, ws.id, populate_existing=True)
    ws.instance_id = "i-replacement"  # a reset switched the workspace to its new instance
    session.commit()
    client.post("/api/agent/heartbeat", json={"workspace_id": ws.id, "host_keys": [second]}, headers=auth)
    session.refresh(ws)
    assert ws.ssh_host_keys == second and ws.ssh_host_keys_instance_id == "i-replacement"
    assert ws.ssh_host_keys_refused == ""
    set_state(session, ws, WorkspaceState.TERMINATED, reason="test")
    session.commit()
    session.refresh(ws)
    assert ws.ssh_host_keys == "" and ws.ssh_host_keys_instance_id is None
