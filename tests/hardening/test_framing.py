"""Issue 13: frame-ancestors names only the course's platform; registration errors are framed by no one."""

from __future__ import annotations

import re

from sqlalchemy import select

from classroom.models import Platform
from tests.support.lti import launch, register, tool_token


def _ancestors(resp) -> set[str]:  # type: ignore[no-untyped-def]
    csp = resp.headers["Content-Security-Policy"]
    return set(re.search(r"frame-ancestors ([^;]+)", csp).group(1).split())


def test_a_courses_pages_are_framed_only_by_its_own_platform(client, canvas, moodle, session):
    register(session, moodle)
    canvas_origins = set(session.scalar(select(Platform.frame_origins).where(Platform.issuer == canvas.issuer)))
    moodle_origins = set(session.scalar(select(Platform.frame_origins).where(Platform.issuer == moodle.issuer)))
    assert canvas_origins and moodle_origins and not canvas_origins & moodle_origins
    token = tool_token(launch(client, canvas, canvas.user("student")))
    page = client.get("/app/workspace", query_string={"t": token})
    assert page.status_code in (200, 403) and page.mimetype == "text/html"
    assert _ancestors(page) == {"'self'", *canvas_origins}
    moodle_token = tool_token(launch(client, moodle, moodle.user("student")))
    other = client.get("/app/keys", query_string={"t": moodle_token})
    assert _ancestors(other) == {"'self'", *moodle_origins}


def test_a_refused_registration_page_cannot_be_framed(client, canvas):
    resp = client.get(
        "/lti/register",
        query_string={"invite": "forged", "openid_configuration": "https://evil.example/.well-known/openid"},
    )
    assert resp.status_code == 403
    assert _ancestors(resp) == {"'none'"}


def test_the_registration_page_is_framed_only_by_the_registering_lms(client, canvas, moodle, session):
    from classroom.services.registration import create_invite

    invite = create_invite(session)
    session.commit()
    resp = client.get(
        "/lti/register",
        query_string={
            "invite": invite,
            "openid_configuration": f"{moodle.base_url}/.well-known/openid-configuration",
            "registration_token": moodle.registration_token,
        },
    )
    assert resp.status_code == 200
    assert _ancestors(resp) == {"'self'", moodle.base_url}  # not the already registered Canvas
