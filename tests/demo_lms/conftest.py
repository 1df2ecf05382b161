"""Demo LMS fixtures: the shared app with the Demo LMS on, a fake tool registered through /register."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from dev.demo_lms.seed import personas
from dev.demo_lms.tools import issue_registration_token
from tests.demo_lms.support import FakeTool

PERSONAS = {p.email.split("@")[0]: p.user_id for p in personas()}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tool at 127.0.0.1, so the Demo LMS is at localhost (the test client's default host)."""
    return settings.with_(demo_lms=True, base_url="http://127.0.0.1")


def registration_token(app: Flask) -> str:
    """Issue a one-time registration token as the admin page does."""
    with app.app_context():
        session = app.extensions["cwc"].sessions()
        token = issue_registration_token(session)
        session.commit()
        session.close()
    return token


@pytest.fixture
def fake_tool() -> Iterator[FakeTool]:
    tool = FakeTool().serve()
    yield tool
    tool.stop()


@pytest.fixture
def tool(app: Flask, client: FlaskClient, fake_tool: FakeTool) -> FakeTool:
    """The fake tool, registered through the real Dynamic Registration endpoint."""
    resp = client.post(
        "/demo-lms/register",
        json=fake_tool.registration(),
        headers={"Authorization": "Bearer " + registration_token(app)},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    fake_tool.client_id = body["client_id"]
    fake_tool.deployment_id = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]["deployment_id"]
    return fake_tool


@pytest.fixture
def personas_by_name() -> dict[str, str]:
    """first.last -> user_id."""
    return PERSONAS
