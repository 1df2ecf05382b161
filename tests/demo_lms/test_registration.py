"""Dynamic Registration, platform side: one-time tokens, metadata checks, the admin page and auto_register."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from config.settings import Settings
from dev.demo_lms.bootstrap import auto_register, install_url
from tests.demo_lms.conftest import registration_token
from tests.demo_lms.support import (
    ISSUER,
    TOOL_CONF,
    FakeTool,
    count_rows,
    csrf_of,
    query,
)

CONF = TOOL_CONF


def test_registration_answers_client_id_and_deployment(
    app: Flask, client: FlaskClient, fake_tool: FakeTool, engine: Engine
) -> None:
    body = fake_tool.registration()
    resp = client.post("/demo-lms/register", json=body, headers={"Authorization": "Bearer " + registration_token(app)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["client_id"] and answer[CONF]["deployment_id"]
    assert answer["redirect_uris"] == body["redirect_uris"] and answer[CONF]["domain"] == body[CONF]["domain"]
    assert answer["scope"] == body["scope"]
    assert count_rows(engine, "demo_tools") == 1


def test_missing_or_wrong_registration_token_is_refused(
    client: FlaskClient, fake_tool: FakeTool, engine: Engine
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer never-issued"},
        {"Authorization": "Basic abc"},
    ):
        resp = client.post("/demo-lms/register", json=fake_tool.registration(), headers=headers)
        assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"
    assert count_rows(engine, "demo_tools") == 0


def test_a_registration_token_works_once(app: Flask, client: FlaskClient, fake_tool: FakeTool, engine: Engine) -> None:
    headers = {"Authorization": "Bearer " + registration_token(app)}
    assert client.post("/demo-lms/register", json=fake_tool.registration(), headers=headers).status_code == 200
    again = client.post("/demo-lms/register", json=fake_tool.registration(), headers=headers)
    assert again.status_code == 401 and again.get_json()["error"] == "invalid_token"
    assert count_rows(engine, "demo_tools") == 1


def test_bad_metadata_is_refused_and_the_token_stays_usable(
    app: Flask, client: FlaskClient, fake_tool: FakeTool, engine: Engine
) -> None:
    headers = {"Authorization": "Bearer " + registration_token(app)}
    good = fake_tool.registration()
    bad_bodies: list[Any] = [
        "not an object",
        {k: v for k, v in good.items() if k != CONF},
        {**good, "redirect_uris": []},
        {**good, "redirect_uris": ["https://elsewhere.example/launch"]},
        {**good, "initiate_login_uri": "javascript:alert(1)"},
        {**good, "grant_types": ["implicit"]},
        {**good, CONF: {**good[CONF], "messages": [{"type": "LtiSubmissionReviewRequest"}]}},
    ]
    for body in bad_bodies:
        resp = client.post("/demo-lms/register", json=body, headers=headers)
        assert resp.status_code == 400, body
        assert resp.get_json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert count_rows(engine, "demo_tools") == 0
    assert client.post("/demo-lms/register", json=good, headers=headers).status_code == 200


def test_admin_page_frames_the_tool_registration_url(client: FlaskClient, engine: Engine) -> None:
    page = client.get("/demo-lms/admin").get_data(as_text=True)
    invite = "http://127.0.0.1/lti/register?invite=abc"
    resp = client.post("/demo-lms/admin/install", data={"csrf": csrf_of(page), "registration_url": invite})
    assert resp.status_code == 200
    src = resp.get_data(as_text=True).split('<iframe class="tool-frame" src="')[1].split('"')[0].replace("&amp;", "&")
    assert src.startswith(invite + "&")
    params = query(src)
    assert params["invite"] == "abc" and params["openid_configuration"] == ISSUER + "/.well-known/openid-configuration"
    assert params["registration_token"] and count_rows(engine, "demo_registration_tokens") == 1
    assert "admin.js" in resp.get_data(as_text=True)


def test_admin_install_needs_csrf_and_a_tool_url(client: FlaskClient, engine: Engine) -> None:
    page = client.get("/demo-lms/admin").get_data(as_text=True)
    url = "http://127.0.0.1/lti/register?invite=abc"
    assert client.post("/demo-lms/admin/install", data={"csrf": "x", "registration_url": url}).status_code == 400
    resp = client.post(
        "/demo-lms/admin/install", data={"csrf": csrf_of(page), "registration_url": "https://evil.example/"}
    )
    assert resp.status_code == 400
    assert count_rows(engine, "demo_registration_tokens") == 0


@dataclass
class _Answer:
    status_code: int
    text: str = ""


@dataclass
class _ToolOverHttp:
    """Plays the tool's /lti/register: reads the configuration, POSTs its registration, answers 200."""

    client: FlaskClient
    tool: FakeTool

    def get(self, url: str, **_: Any) -> _Answer:
        params = query(url)
        config = self.client.get(urlparse(params["openid_configuration"]).path).get_json()
        resp = self.client.post(
            urlparse(config["registration_endpoint"]).path,
            json=self.tool.registration(),
            headers={"Authorization": "Bearer " + params["registration_token"]},
        )
        return _Answer(200 if resp.status_code == 200 else 400, resp.get_data(as_text=True))


def test_auto_register_goes_through_the_registration_endpoint(
    settings: Settings, client: FlaskClient, fake_tool: FakeTool, engine: Engine
) -> None:
    assert install_url(settings) == "http://localhost/demo-lms/admin"
    result = auto_register(settings, "http://127.0.0.1/lti/register?invite=xyz", http=_ToolOverHttp(client, fake_tool))
    assert result["issuer"] == ISSUER and result["client_id"] and result["deployment_id"]
    assert count_rows(engine, "demo_tools") == 1


def test_admin_install_in_a_new_window_redirects_to_the_tool(client: FlaskClient, engine: Engine) -> None:
    page = client.get("/demo-lms/admin").get_data(as_text=True)
    url = "http://127.0.0.1/lti/register?invite=abc"
    form = {"csrf": csrf_of(page), "registration_url": url, "mode": "window"}
    resp = client.post("/demo-lms/admin/install", data=form)
    assert resp.status_code == 303 and resp.headers["Location"].startswith(url + "&openid_configuration=")
    assert client.get("/demo-lms/admin/tools.json").get_json() == {"count": 0, "latest": None}
