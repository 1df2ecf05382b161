"""Deep linking round trip: instructor picks a template and assignment; the LMS gets a signed LtiResourceLink."""

from __future__ import annotations

import re

import jwt

from tests.conftest import count_rows
from tests.support.lti import hidden_fields, launch, tool_token

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


def _start(client, canvas):  # type: ignore[no-untyped-def]
    resp = launch(client, canvas, canvas.user("instructor"), message_type="LtiDeepLinkingRequest")
    assert resp.status_code == 303 and "/lti/deep-link" in resp.headers["Location"]
    page = client.get("/lti/deep-link", query_string={"t": tool_token(resp)})
    assert page.status_code == 200 and b"ml-cpu-student" in page.data
    return hidden_fields(page.get_data(as_text=True))


def test_deep_linking_returns_a_signed_resource_link(client, canvas):
    hidden = _start(client, canvas)
    resp = client.post(
        "/lti/deep-link",
        data={
            **hidden,
            "template": "ml-final-project",
            "title": "Final project",
            "due_at": "2030-12-06T23:59",
            "points": "100",
            "time_zone": "UTC",
        },
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert f'action="{canvas.base_url}/deep-link-return"' in html
    token = re.search(r'name="JWT" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    jwks = client.get("/.well-known/jwks.json").get_json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=canvas.issuer)
    assert claims["iss"] == canvas.client_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == canvas.deployment_id
    assert claims[DL + "data"] == "dl-data-123"
    (item,) = claims[DL + "content_items"]
    assert item["type"] == "ltiResourceLink" and item["title"] == "Final project"
    assert item["custom"]["template"] == "ml-final-project"
    assert item["lineItem"]["scoreMaximum"] == 100 and item["lineItem"]["label"] == "Final project"
    assert item["submission"]["endDateTime"] == "2030-12-06T23:59:00Z"


def _content_item(client, canvas, html):  # type: ignore[no-untyped-def]
    token = re.search(r'name="JWT" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    jwks = client.get("/.well-known/jwks.json").get_json()
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=canvas.issuer)
    (item,) = claims[DL + "content_items"]
    return item


def test_deep_linking_before_the_wizard_asks_the_zone_and_2359_in_los_angeles_stays_2359_there(client, canvas, session):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from classroom.models import AuditEvent, Course

    hidden = _start(client, canvas)
    form = {**hidden, "template": "ml-cpu-student", "title": "HW3", "due_at": "2030-12-06T23:59"}
    refused = client.post("/lti/deep-link", data=form)  # no zone chosen: nothing is sent to the LMS
    assert refused.status_code == 400 and "Choose the course" in refused.get_data(as_text=True)
    assert 'name="JWT"' not in refused.get_data(as_text=True)
    resp = client.post("/lti/deep-link", data={**form, "time_zone": "America/Los_Angeles"})
    assert resp.status_code == 200
    item = _content_item(client, canvas, resp.get_data(as_text=True))
    assert item["submission"]["endDateTime"] == "2030-12-07T07:59:00Z" == item["custom"]["tool_due_at"]
    course = session.scalar(select(Course))
    session.refresh(course)
    assert course.time_zone == "America/Los_Angeles"  # the wizard starts from the zone the instructor meant
    due = datetime.fromisoformat(item["custom"]["tool_due_at"]).astimezone(ZoneInfo(course.time_zone))
    assert (due.hour, due.minute, due.day) == (23, 59, 6)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "course.time_zone_set"))
    assert event.details == {"from": "UTC", "to": "America/Los_Angeles", "source": "deep_link"}
    wizard = client.get("/app/setup", query_string={"t": hidden["t"]}).get_data(as_text=True)
    assert "<option selected>America/Los_Angeles</option>" in wizard


def test_bad_assignment_form_shows_errors_and_returns_nothing(client, canvas, engine):
    hidden = _start(client, canvas)
    audits = count_rows(engine, "audit_events")
    resp = client.post("/lti/deep-link", data={**hidden, "template": "gpu-nonexistent", "title": "", "points": "-3"})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "Choose one of the workspace templates" in html and "Give the assignment a title" in html
    assert "Points must be" in html and 'name="JWT"' not in html
    assert count_rows(engine, "audit_events") == audits


def test_deep_link_form_requires_csrf_token(client, canvas, engine):
    hidden = _start(client, canvas)
    audits = count_rows(engine, "audit_events")
    resp = client.post("/lti/deep-link", data={"t": hidden["t"], "template": "ml-cpu-student", "title": "HW1"})
    assert resp.status_code == 403
    assert count_rows(engine, "audit_events") == audits


def test_resource_launch_cannot_use_the_deep_link_page(client, canvas):
    resp = launch(client, canvas, canvas.user("instructor"))
    assert client.get("/lti/deep-link", query_string={"t": tool_token(resp)}).status_code == 400


def test_a_past_due_date_is_warned_about_and_sent_only_when_confirmed(client, canvas, engine):
    hidden = _start(client, canvas)
    form = {**hidden, "template": "ml-cpu-student", "title": "HW0", "due_at": "2024-12-06T23:59", "time_zone": "UTC"}
    audit_before = count_rows(engine, "audit_events")
    warned = client.post("/lti/deep-link", data=form)
    html = warned.get_data(as_text=True)
    assert warned.status_code == 400 and "This due date is already past" in html and 'name="JWT"' not in html
    assert "Yes, add it with this due date" in html and count_rows(engine, "audit_events") == audit_before
    sent = client.post("/lti/deep-link", data={**form, "confirm_past": "on"})
    assert sent.status_code == 200 and 'name="JWT"' in sent.get_data(as_text=True)
