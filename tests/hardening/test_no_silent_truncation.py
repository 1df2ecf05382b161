"""Issue 13: text longer than its column is refused with a message, never cut (budget source, request reason)."""

from __future__ import annotations

from tests.conftest import count_rows
from tests.support.budget import SETUP_FORM, ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token

LTI = "https://purl.imsglobal.org/spec/lti/claim/"


def test_a_budget_source_over_255_characters_is_refused_not_cut(client, canvas, engine):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    page = client.get("/app/setup", query_string={"t": token}).get_data(as_text=True)
    resp = client.post("/app/setup", data={**hidden_fields(page), **SETUP_FORM, "budget_source": "x" * 256})
    assert resp.status_code == 400
    assert "At most 255 characters" in resp.get_data(as_text=True)
    assert count_rows(engine, "course_policies") == 0


def test_a_request_reason_over_2000_characters_is_refused_not_cut(client, canvas, session, engine):
    tool_token(launch(client, canvas, canvas.user("instructor")))
    ensure_policies(session)
    link = {LTI + "custom": {"template": "ml-final-project"}, LTI + "resource_link": {"id": "l1", "title": "Final"}}
    student = tool_token(launch(client, canvas, canvas.user("student"), **link))
    page = client.get("/app/workspace", query_string={"t": student}).get_data(as_text=True)
    resp = client.post("/app/requests/ml-final-project", data={**hidden_fields(page), "reason": "because " * 300})
    assert resp.status_code == 400
    assert "2,000 characters" in resp.get_data(as_text=True)
    assert count_rows(engine, "template_requests") == 0
