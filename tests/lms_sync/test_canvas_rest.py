"""Canvas REST through canvasapi against recorded Canvas responses over HTTP: OAuth2 connection (tokens encrypted
at rest), paginated assignments, an expired token refreshed, a revoked one replaced, rate limits retried."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from classroom.db import utcnow
from classroom.jobs.queue import get_queue
from classroom.models import CanvasToken, Course, DueDate, DueSource
from lms_sync.crypto import decrypt
from lms_sync.jobs import refresh_due_dates
from tests.lms_sync.support.canvas_server import CLIENT_ID, CLIENT_SECRET, CanvasServer
from tests.support.lti import launch, register, tool_token


@pytest.fixture
def canvas():
    server = CanvasServer().serve()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, canvas):
    return settings.with_(
        canvas_base_url=canvas.base_url, canvas_client_id=CLIENT_ID, canvas_client_secret=CLIENT_SECRET
    )


def connect(client, session, platform, canvas):
    register(session, platform)
    token = tool_token(launch(client, platform, platform.user("instructor")))
    resp = client.get("/sync/canvas/connect", query_string={"t": token})
    assert resp.status_code == 302
    location = urlparse(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == canvas.base_url + "/login/oauth2/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == "http://localhost/sync/canvas/callback"
    assert "url:GET|/api/v1/courses/:course_id/assignments" in query["scope"]
    # the instructor consents on Canvas, which sends the browser back with a code
    done = client.get("/sync/canvas/callback", query_string={"code": "good-code", "state": query["state"]})
    return token, query["state"], done


def test_connecting_canvas_stores_tokens_encrypted_and_reads_paginated_due_dates(
    client, session, redis, platform, canvas, settings, lms_ctx
):
    token, state, done = connect(client, session, platform, canvas)
    assert done.status_code == 200 and "Canvas is connected" in done.get_data(as_text=True)
    row = session.scalar(select(CanvasToken))
    access = decrypt(settings, row.access_token)
    assert access in canvas.valid_tokens and access.encode() not in row.access_token  # encrypted at rest
    assert decrypt(settings, row.refresh_token).startswith("refresh-") and row.canvas_user_id == "42"
    course = session.scalar(select(Course))
    assert get_queue(redis).get_job_ids()[-1] == f"lms-dates-{course.id}"
    result = refresh_due_dates(course.id)
    assert result["canvas"] == 3 and not result["errors"]
    assert ("GET", "courses/12345/assignments?page=2&per_page=100") in canvas.api_calls  # followed the next link
    dates = session.scalars(
        select(DueDate).where(DueDate.source == DueSource.CANVAS_REST).order_by(DueDate.due_at)
    ).all()
    assert [(d.source, d.key, d.title) for d in dates] == [
        (DueSource.CANVAS_REST, "501", "Homework 1 - Linear Regression"),
        (DueSource.CANVAS_REST, "502", "Homework 2 - Logistic Regression"),
        (DueSource.CANVAS_REST, "503", "Project 1 - Final Project Proposal"),
    ]
    assert dates[0].url == "https://canvas.example.edu/courses/12345/assignments/501"
    assert refresh_due_dates(course.id)["canvas"] == 0  # unchanged: nothing written
    # a student sees them, marked as coming from Canvas
    student = tool_token(launch(client, platform, platform.user("student")))
    html = client.get("/app/home", query_string={"t": student}).get_data(as_text=True)
    assert "Homework 1 - Linear Regression" in html and "From Canvas assignment" in html
    # the state was single use
    again = client.get("/sync/canvas/callback", query_string={"code": "good-code", "state": state})
    assert again.status_code == 400 and len(session.scalars(select(CanvasToken)).all()) == 1


def test_an_expired_access_token_is_refreshed_before_the_call(client, session, platform, canvas, settings, lms_ctx):
    connect(client, session, platform, canvas)
    row = session.scalar(select(CanvasToken))
    refresh_before = decrypt(settings, row.refresh_token)
    row.expires_at = utcnow() - timedelta(minutes=5)
    session.commit()
    canvas.revoke_all()  # an expired token would be refused anyway
    result = refresh_due_dates(session.scalar(select(Course.id)))
    assert result["canvas"] == 3 and canvas.grants == ["authorization_code", "refresh_token"]
    session.expire_all()
    row = session.scalar(select(CanvasToken))
    assert decrypt(settings, row.access_token) in canvas.valid_tokens and row.expires_at > utcnow()
    assert decrypt(settings, row.refresh_token) == refresh_before  # Canvas keeps the refresh token


def test_a_revoked_token_is_refreshed_once_and_the_call_repeated(client, session, platform, canvas, lms_ctx):
    connect(client, session, platform, canvas)
    canvas.revoke_all()
    assert refresh_due_dates(session.scalar(select(Course.id)))["canvas"] == 3
    assert canvas.grants.count("refresh_token") == 1


def test_canvas_rate_limit_403_is_retried(client, session, platform, canvas, lms_ctx):
    connect(client, session, platform, canvas)
    canvas.faults.extend(["rate_limited", "rate_limited"])
    result = refresh_due_dates(session.scalar(select(Course.id)))
    assert result["canvas"] == 3 and not result["errors"]


def test_a_refused_refresh_asks_the_instructor_to_connect_again(client, session, platform, canvas, lms_ctx):
    connect(client, session, platform, canvas)
    canvas.revoke_all()
    canvas.refresh_tokens.clear()
    result = refresh_due_dates(session.scalar(select(Course.id)))
    assert result["canvas"] == 0 and "connect again" in result["errors"][0]
    assert session.scalar(select(CanvasToken)) is None
    assert session.scalar(select(DueDate).where(DueDate.source == DueSource.CANVAS_REST)) is None


def test_declined_or_forged_callbacks_store_nothing(client, session, platform, canvas):
    register(session, platform)
    assert client.get("/sync/canvas/callback", query_string={"error": "access_denied"}).status_code == 400
    forged = client.get("/sync/canvas/callback", query_string={"code": "good-code", "state": "made-up"})
    assert forged.status_code == 400 and session.scalar(select(CanvasToken)) is None
    student = tool_token(launch(client, platform, platform.user("student")))
    assert client.get("/sync/canvas/connect", query_string={"t": student}).status_code == 403
