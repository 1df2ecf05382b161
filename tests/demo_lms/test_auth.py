"""The OIDC authorization endpoint: a complete, verifiable id_token, and readable 400s that store nothing."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from tests.demo_lms.support import (
    ISSUER,
    FakeTool,
    auth_params,
    count_rows,
    form_fields,
    iframe_src,
    sign_in,
)

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


def _login_url(client: FlaskClient, deep_link: bool = False) -> str:
    page = client.get("/demo-lms/course").get_data(as_text=True)
    if deep_link:
        return iframe_src(client.get("/demo-lms/course?deep_link=1").get_data(as_text=True))
    link_id = page.split('href="/demo-lms/course?link=')[1].split('"')[0]
    return iframe_src(client.get(f"/demo-lms/course?link={link_id}").get_data(as_text=True))


def _verify(client: FlaskClient, id_token: str, audience: str) -> dict[str, Any]:
    keys = client.get("/demo-lms/jwks").get_json()["keys"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256" and header["kid"] == keys[0]["kid"]
    return jwt.decode(id_token, jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=audience, issuer=ISSUER)


def test_id_token_verifies_and_carries_every_claim(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["alex.thompson"])
    params = auth_params(tool, _login_url(client))
    resp = client.get("/demo-lms/auth", query_string=params)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    page = resp.get_data(as_text=True)
    assert f'action="{tool.base_url}/lti/launch"' in page and "autosubmit.js" in page
    fields = form_fields(page)
    assert fields["state"] == params["state"] and fields["lti_storage_target"] == "_parent"
    claims = _verify(client, fields["id_token"], tool.client_id)
    now = time.time()
    assert claims["aud"] == tool.client_id and claims["azp"] == tool.client_id
    assert claims["sub"] == personas_by_name["alex.thompson"] and claims["nonce"] == params["nonce"]
    assert now - 60 < claims["iat"] <= now + 1 and claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 3600
    assert (claims["name"], claims["given_name"], claims["family_name"], claims["email"]) == (
        "Alex Thompson",
        "Alex",
        "Thompson",
        "alex.thompson@university.edu",
    )
    assert claims[LTI + "message_type"] == "LtiResourceLinkRequest" and claims[LTI + "version"] == "1.3.0"
    assert claims[LTI + "deployment_id"] == tool.deployment_id
    assert claims[LTI + "target_link_uri"] == tool.base_url + "/lti/launch"
    assert claims[LTI + "resource_link"]["id"] and claims[LTI + "resource_link"]["title"] == "Cloud Workstation"
    assert claims[LTI + "roles"] == [LIS + "membership/Instructor#TeachingAssistant", LIS + "membership#Instructor"]
    assert claims[LTI + "context"] == {
        "id": "cs229-fall2024",
        "label": "CS 229",
        "title": "Machine Learning (Fall 2024)",
        "type": [LIS + "course#CourseOffering"],
    }
    assert claims[LTI + "tool_platform"]["name"] == "Demo LMS" and claims[LTI + "tool_platform"]["guid"]
    assert claims[LTI + "tool_platform"]["product_family_code"] == "demo"
    assert claims[LTI + "custom"] == {"due_at": "$Canvas.assignment.dueAt.iso8601"}, "no due date: left unexpanded"
    assert claims[LTI + "launch_presentation"]["document_target"] == "iframe"
    nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert nrps == {
        "context_memberships_url": ISSUER + "/api/contexts/cs229-fall2024/memberships",
        "service_versions": ["2.0"],
    }
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags["lineitems"] == ISSUER + "/api/contexts/cs229-fall2024/lineitems" and "lineitem" not in ags
    assert len(ags["scope"]) == 4
    assert count_rows(engine, "demo_launches") == 1


def test_deep_linking_request_has_its_settings(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    resp = client.post("/demo-lms/auth", data=auth_params(tool, _login_url(client, deep_link=True)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    claims = _verify(client, form_fields(resp.get_data(as_text=True))["id_token"], tool.client_id)
    assert claims[LTI + "message_type"] == "LtiDeepLinkingRequest" and LTI + "resource_link" not in claims
    assert claims[LTI + "roles"] == [LIS + "membership#Instructor"]
    dl = claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
    assert dl["deep_link_return_url"] == ISSUER + "/deep-link-return"
    assert dl["accept_types"] == ["ltiResourceLink"] and dl["accept_multiple"] is False
    assert dl["accept_presentation_document_targets"] == ["iframe", "window"] and dl["data"]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"client_id": "someone-else"}, "client_id"),
        ({"redirect_uri": "https://evil.example/steal"}, "redirect_uri"),
        ({"login_hint": None}, "login_hint"),
        ({"login_hint": "another-person"}, "not signed in"),
        ({"lti_message_hint": "tampered"}, "lti_message_hint"),
        ({"nonce": None}, "nonce"),
        ({"response_type": "code"}, "response_type"),
        ({"prompt": "login"}, "prompt"),
    ],
)
def test_bad_authorization_requests_get_400_and_store_nothing(
    client: FlaskClient,
    tool: FakeTool,
    engine: Engine,
    personas_by_name: dict[str, str],
    override: dict[str, str | None],
    reason: str,
) -> None:
    sign_in(client, personas_by_name["emily.chen"])
    params = auth_params(tool, _login_url(client), **override)
    resp = client.get("/demo-lms/auth", query_string=params)
    assert resp.status_code == 400
    body = resp.get_data(as_text=True)
    assert reason in body and 'name="id_token"' not in body
    assert count_rows(engine, "demo_launches") == 0 and count_rows(engine, "demo_keys") == 0


def test_a_dropped_student_cannot_launch(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["sophie.martinez"])
    url = _login_url(client)
    with engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE demo_members SET status = 'Inactive' WHERE email = 'sophie.martinez@university.edu'"))
    resp = client.get("/demo-lms/auth", query_string=auth_params(tool, url))
    assert resp.status_code == 400 and "inactive" in resp.get_data(as_text=True)
    assert count_rows(engine, "demo_launches") == 0


def test_students_cannot_start_deep_linking(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    hint_url = _login_url(client, deep_link=True)
    sign_in(client, personas_by_name["emily.chen"])
    params = auth_params(tool, hint_url, login_hint=personas_by_name["emily.chen"])
    resp = client.get("/demo-lms/auth", query_string=params)
    assert resp.status_code == 400 and count_rows(engine, "demo_launches") == 0
