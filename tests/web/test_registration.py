"""Installing the tool: Dynamic Registration round trip, invites, Canvas developer-key JSON."""

from __future__ import annotations

from sqlalchemy import select

from classroom.models import Deployment, DeploymentStatus, Platform
from classroom.services.registration import create_invite
from tests.conftest import count_rows
from tests.support.lti import launch


def _register(client, moodle, invite, token=None):  # type: ignore[no-untyped-def]
    return client.get(
        "/lti/register",
        query_string={
            "invite": invite,
            "openid_configuration": f"{moodle.base_url}/.well-known/openid-configuration",
            "registration_token": token or moodle.registration_token,
        },
    )


def test_dynamic_registration_round_trip_then_launch(client, session, moodle):
    invite = create_invite(session, note="Moodle test")
    session.commit()
    resp = _register(client, moodle, invite)
    assert resp.status_code == 200, resp.data[:500]
    assert b"org.imsglobal.lti.close" in resp.data
    (sent,) = moodle.registrations
    tool_conf = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert sent["initiate_login_uri"] == "http://localhost/lti/login"
    assert sent["redirect_uris"] == ["http://localhost/lti/launch"]
    assert sent["jwks_uri"] == "http://localhost/.well-known/jwks.json"
    assert tool_conf["domain"] == "localhost"
    assert {m["type"] for m in tool_conf["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    # Moodle reads custom parameters only at the tool configuration's top level (issue 12, item 6)
    assert tool_conf["custom_parameters"] == {
        "due_at": "$Canvas.assignment.dueAt.iso8601",
        "resource_end_at": "$ResourceLink.submission.endDateTime",
        "context_history": "$Context.id.history",  # next term: the course a copy came from
    }
    platform = session.scalar(select(Platform))
    assert platform is not None and platform.issuer == moodle.base_url and platform.client_id == moodle.client_id
    dep = session.scalar(select(Deployment))
    assert dep is not None and dep.status is DeploymentStatus.APPROVED and dep.deployment_id == moodle.deployment_id
    # the registered platform can launch right away
    assert launch(client, moodle, moodle.user("instructor"), login_method="POST").status_code == 303


def test_invite_is_single_use(client, session, moodle, engine):
    invite = create_invite(session)
    session.commit()
    assert _register(client, moodle, invite).status_code == 200
    again = _register(client, moodle, invite)
    assert again.status_code == 403
    assert count_rows(engine, "platforms") == 1


def test_registration_without_invite_creates_nothing(client, moodle, engine):
    resp = _register(client, moodle, "not-an-invite")
    assert resp.status_code == 403
    # issue 13: a refused registration's page is framed by no origin (not even the claimed LMS)
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert count_rows(engine, "platforms") == 0 and moodle.registrations == []


def test_platform_refusing_the_registration_creates_nothing(client, session, moodle, engine):
    invite = create_invite(session)
    session.commit()
    resp = _register(client, moodle, invite, token="wrong-token")
    assert resp.status_code == 400 and b"did not accept" in resp.data
    assert count_rows(engine, "platforms") == 0


def test_issuer_on_another_host_is_refused(client, session, moodle, engine, monkeypatch):
    invite = create_invite(session)
    session.commit()
    original = moodle.openid_configuration
    monkeypatch.setattr(moodle, "openid_configuration", lambda: {**original(), "issuer": "https://elsewhere.example"})
    resp = _register(client, moodle, invite)
    assert resp.status_code == 400 and b"issuer" in resp.data
    assert count_rows(engine, "platforms") == 0 and moodle.registrations == []


def test_canvas_developer_key_json(client):
    data = client.get("/lti/config/canvas.json").get_json()
    assert data["oidc_initiation_url"] == "http://localhost/lti/login"
    assert data["public_jwk_url"] == "http://localhost/.well-known/jwks.json"
    placements = {p["placement"]: p for p in data["extensions"][0]["settings"]["placements"]}
    assert set(placements) == {"course_navigation", "link_selection", "assignment_selection"}
    assert placements["assignment_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert data["custom_fields"]["due_at"] == "$Canvas.assignment.dueAt.iso8601"
    assert data["custom_fields"]["resource_end_at"] == "$ResourceLink.submission.endDateTime"
    assert data["custom_fields"]["context_history"] == "$Context.id.history"
    assert data["extensions"][0]["privacy_level"] == "public"
