"""Issue 13's 500s, each reproduced: non-finite JSON numbers, ids beyond PostgreSQL integers, NUL in text
fields, deep-link due dates at the calendar's edges. Each answers 4xx with the field named and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Course, Person
from provisioning.agent_service import issue_agent_token
from tests.conftest import count_rows
from tests.support.budget import SETUP_FORM, ensure_policies, make_running
from tests.support.lti import hidden_fields, launch, tool_token

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
BIG_IDS = ("2147483648", "9223372036854775808", "99999999999999999999999")


@pytest.mark.parametrize(
    "body",
    [
        '{"workspace_id": Infinity}',
        '{"workspace_id": NaN}',
        '{"workspace_id": 1, "ssh_sessions": 1e400}',
        '{"workspace_id": 1, "cpu_pct": -Infinity}',
        '{"workspace_id": "1\\u0000"}',
    ],
)
def test_heartbeat_without_token_and_non_finite_numbers_is_400(client, engine, body):
    resp = client.post("/api/agent/heartbeat", data=body, content_type="application/json")
    assert resp.status_code == 400 and resp.is_json
    assert count_rows(engine, "heartbeats") == 0


def test_heartbeat_with_a_token_and_out_of_range_values_is_refused(client, canvas, session, engine):
    launch(client, canvas, canvas.user("student"))
    ensure_policies(session)
    ws = make_running(session, session.scalar(select(Course.id)), session.scalar(select(Person.id)), utcnow())
    token = issue_agent_token(ws)
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    for body in ({"workspace_id": 2**31}, {"workspace_id": ws.id, "ssh_sessions": 2**63}, {"workspace_id": 2**63}):
        resp = client.post("/api/agent/heartbeat", json=body, headers=auth)
        assert resp.status_code == 400, body
        assert "workspace_id" in resp.get_json()["message"] or "ssh_sessions" in resp.get_json()["message"]
    assert count_rows(engine, "heartbeats") == 0


def test_ids_beyond_postgresql_integers_are_not_found(client, canvas, session):
    student = tool_token(launch(client, canvas, canvas.user("student")))
    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    ensure_policies(session)
    for big in BIG_IDS:
        assert client.get(f"/api/workspaces/{big}", query_string={"t": student}).status_code == 404
        assert client.post(f"/app/keys/{big}/revoke", data={"t": student}).status_code == 404
        assert client.post(f"/app/workspaces/{big}/stop", data={"t": student}).status_code == 404
        assert client.post(f"/app/requests/{big}/approve", data={"t": teacher}).status_code == 404
        assert client.get("/app/report", query_string={"t": teacher, "granted": big}).status_code == 200


@pytest.mark.parametrize("field", ["budget_source", "time_zone", "delete_confirm", "term_start"])
def test_a_nul_in_the_wizard_is_refused_with_the_field_named(client, canvas, engine, field):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    page = client.get("/app/setup", query_string={"t": token}).get_data(as_text=True)
    form = {**hidden_fields(page), **SETUP_FORM, field: "IT\x00 budget"}
    resp = client.post("/app/setup", data=form)
    assert resp.status_code == 400 and f"“{field}”" in resp.get_data(as_text=True)
    assert count_rows(engine, "course_policies") == 0


def test_a_nul_in_a_grant_reason_or_a_request_reason_is_refused(client, canvas, session, engine):
    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    link = {LTI + "custom": {"template": "ml-final-project"}, LTI + "resource_link": {"id": "l1", "title": "Final"}}
    student = tool_token(launch(client, canvas, canvas.user("student"), **link))
    ensure_policies(session)
    report = client.get("/app/report", query_string={"t": teacher}).get_data(as_text=True)
    grants_before, audit_before = count_rows(engine, "budget_grants"), count_rows(engine, "audit_events")
    form = {**hidden_fields(report), "person": "course", "amount": "10", "reason": "final\x00 project"}
    resp = client.post("/app/report/grants", data=form)
    assert resp.status_code == 400 and "“reason”" in resp.get_data(as_text=True)
    page = client.get("/app/workspace", query_string={"t": student}).get_data(as_text=True)
    nul_reason = {**hidden_fields(page), "reason": "I need\x00 a GPU now"}
    asked = client.post("/app/requests/ml-final-project", data=nul_reason)
    assert asked.status_code == 400 and "“reason”" in asked.get_data(as_text=True)
    assert count_rows(engine, "budget_grants") == grants_before and count_rows(engine, "template_requests") == 0
    assert count_rows(engine, "audit_events") == audit_before


@pytest.mark.parametrize("due", ["9999-12-31T23:59:00-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59"])
def test_deep_link_due_dates_at_the_calendars_edges_are_refused(client, canvas, engine, due):
    resp = launch(client, canvas, canvas.user("instructor"), message_type="LtiDeepLinkingRequest")
    page = client.get("/lti/deep-link", query_string={"t": tool_token(resp)}).get_data(as_text=True)
    audit_before = count_rows(engine, "audit_events")
    form = {**hidden_fields(page), "template": "ml-cpu-student", "title": "HW1", "due_at": due, "points": "10"}
    answer = client.post("/lti/deep-link", data=form)
    assert answer.status_code == 400 and "Enter the due date" in answer.get_data(as_text=True)
    assert count_rows(engine, "audit_events") == audit_before


def test_a_launch_whose_due_date_is_at_the_calendars_edge_still_works(client, canvas, session):
    custom = {LTI + "custom": {"due_at": "9999-12-31T23:59:00-12:00", "template": "ml-cpu-student"}}
    resp = launch(client, canvas, canvas.user("student"), **custom)
    assert resp.status_code == 303
    ensure_policies(session)
    assert client.get("/app/workspace", query_string={"t": tool_token(resp)}).status_code == 200


def test_form_ids_beyond_postgresql_integers_name_no_row(client, canvas, engine):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    page = client.get("/app/setup", query_string={"t": token}).get_data(as_text=True)
    saved = client.post("/app/setup", data={**hidden_fields(page), **SETUP_FORM, "head_ta": "9223372036854775808"})
    assert saved.status_code == 303 and count_rows(engine, "course_policies") == 1
    retry = client.post("/sync/grades/retry", data={**hidden_fields(page), "grade_id": "2147483648", "item": "-1"})
    assert retry.status_code == 400
