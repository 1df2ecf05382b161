"""Deep-linking return: the tool's signed response becomes an assignment link with a line item and due date."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from flask.testing import FlaskClient
from sqlalchemy import text
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
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
ITEM = {
    "type": "ltiResourceLink",
    "title": "HW3: Neural networks",
    "url": None,
    "custom": {"template": "python-ml", "due_at": "$Canvas.assignment.dueAt.iso8601"},
    "lineItem": {"label": "HW3: Neural networks", "scoreMaximum": 10, "resourceId": "hw3", "tag": "cwc"},
    "submission": {"endDateTime": "2024-09-20T06:59:00Z"},
}


def _deep_link_data(client: FlaskClient, tool: FakeTool) -> str:
    url = iframe_src(client.get("/demo-lms/course?deep_link=1").get_data(as_text=True))
    page = client.get("/demo-lms/auth", query_string=auth_params(tool, url)).get_data(as_text=True)
    claims = jwt.decode(form_fields(page)["id_token"], options={"verify_signature": False})
    return str(claims[DL + "deep_linking_settings"]["data"])


def _response(tool: FakeTool, data: str, items: list[dict[str, Any]], **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": tool.client_id,
        "aud": [ISSUER],
        "iat": now,
        "exp": now + 600,
        "nonce": uuid.uuid4().hex,
        LTI + "message_type": "LtiDeepLinkingResponse",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": tool.deployment_id,
        DL + "content_items": items,
        DL + "data": data,
    }
    claims.update(overrides)
    return tool.sign(claims)


def test_response_creates_the_assignment_and_its_line_item(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    item = {**ITEM, "url": tool.base_url + "/lti/launch"}
    signed = _response(tool, _deep_link_data(client, tool), [item])
    resp = client.post("/demo-lms/deep-link-return", data={"JWT": signed})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "Assignment added" in resp.get_data(as_text=True)
    with engine.connect() as conn:
        link = conn.execute(
            text("SELECT id, title, url, custom, due_at FROM demo_links WHERE kind = 'assignment'")
        ).one()
        line = conn.execute(text("SELECT label, score_maximum, resource_id, tag, link_id FROM demo_line_items")).one()
    assert link.title == "HW3: Neural networks" and link.url == tool.base_url + "/lti/launch"
    assert link.custom == ITEM["custom"] and link.due_at.isoformat() == "2024-09-20T06:59:00+00:00"
    assert tuple(line) == ("HW3: Neural networks", 10.0, "hw3", "cwc", link.id)
    page = client.get(f"/demo-lms/course?link={link.id}").get_data(as_text=True)
    assert "Due Sep 20, 2024" in page
    sign_in(client, personas_by_name["emily.chen"])
    url = iframe_src(client.get(f"/demo-lms/course?link={link.id}").get_data(as_text=True))
    launch = client.get("/demo-lms/auth", query_string=auth_params(tool, url)).get_data(as_text=True)
    claims = jwt.decode(form_fields(launch)["id_token"], options={"verify_signature": False})
    assert claims[LTI + "resource_link"]["title"] == "HW3: Neural networks"
    assert claims[LTI + "custom"] == {"template": "python-ml", "due_at": "2024-09-20T06:59:00Z"}
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags["lineitem"].startswith(ISSUER + "/api/contexts/cs229-fall2024/lineitems/")


def test_replayed_or_mistargeted_responses_are_refused(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    data = _deep_link_data(client, tool)
    good = _response(tool, data, [ITEM])
    assert client.post("/demo-lms/deep-link-return", data={"JWT": good}).status_code == 200
    bad = [
        good,  # replay: same nonce
        _response(tool, data, [ITEM], aud=["http://somewhere-else"]),
        _response(tool, data, [ITEM], exp=int(time.time()) - 300),
        _response(tool, data, [ITEM], **{LTI + "message_type": "LtiResourceLinkRequest"}),
        _response(tool, data, [ITEM], **{LTI + "deployment_id": "other"}),
        _response(tool, "forged-data", [ITEM]),
        _response(tool, data, [ITEM, ITEM]),
        _response(tool, data, [{**ITEM, "type": "html"}]),
        _response(tool, data, [{**ITEM, "url": "https://evil.example/launch"}]),
        _response(tool, data, [{**ITEM, "lineItem": {"scoreMaximum": -1}}]),
        "garbage",
    ]
    for token in bad:
        resp = client.post("/demo-lms/deep-link-return", data={"JWT": token})
        assert resp.status_code == 400, resp.get_data(as_text=True)
    assert count_rows(engine, "demo_links") == 2 and count_rows(engine, "demo_line_items") == 1


def test_only_the_persona_who_asked_can_complete_it(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    data = _deep_link_data(client, tool)
    sign_in(client, personas_by_name["emily.chen"])
    resp = client.post("/demo-lms/deep-link-return", data={"JWT": _response(tool, data, [ITEM])})
    assert resp.status_code == 400
    assert count_rows(engine, "demo_links") == 1


def test_empty_response_adds_nothing(
    client: FlaskClient, tool: FakeTool, engine: Engine, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    token = _response(tool, _deep_link_data(client, tool), [], **{DL + "msg": "Cancelled"})
    resp = client.post("/demo-lms/deep-link-return", data={"JWT": token})
    assert resp.status_code == 200 and "No assignment added" in resp.get_data(as_text=True)
    assert count_rows(engine, "demo_links") == 1
