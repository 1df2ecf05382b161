"""The Demo LMS playing Moodle 4.5 (CWC_DEMO_LMS_SHAPE=moodle): non-editing teachers launch as Instructor and are
Learner in NRPS, a launch id works once, and no platform storage is offered."""

from __future__ import annotations

import jwt
import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from tests.demo_lms.support import ISSUER, FakeTool, auth_params, form_fields, iframe_src, query, sign_in
from tests.demo_lms.test_services import NRPS_TYPE, _auth

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(demo_lms_shape="moodle")


def _login_url(client: FlaskClient) -> str:
    page = client.get("/demo-lms/course").get_data(as_text=True)
    link_id = page.split('href="/demo-lms/course?link=')[1].split('"')[0]
    return iframe_src(client.get(f"/demo-lms/course?link={link_id}").get_data(as_text=True))


def test_a_non_editing_teacher_launches_as_instructor_and_no_storage_target_is_sent(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["priya.sharma"])
    login = _login_url(client)
    assert "lti_storage_target" not in query(login)
    resp = client.get("/demo-lms/auth", query_string=auth_params(tool, login))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    fields = form_fields(resp.get_data(as_text=True))
    assert not fields.get("lti_storage_target")
    keys = client.get("/demo-lms/jwks").get_json()["keys"]
    claims = jwt.decode(
        fields["id_token"], jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=tool.client_id, issuer=ISSUER
    )
    assert claims[LTI + "roles"] == [LIS + "membership#Instructor"]  # never TeachingAssistant


def test_a_launch_id_works_once_like_moodle(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["emily.chen"])
    login = _login_url(client)
    assert client.get("/demo-lms/auth", query_string=auth_params(tool, login)).status_code == 200
    replay = client.get("/demo-lms/auth", query_string=auth_params(tool, login))  # a new window replaying it
    assert replay.status_code == 400 and "Invalid request" in replay.get_data(as_text=True)


def test_nrps_lists_non_editing_teachers_as_learners(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    client.get("/demo-lms/")  # the course exists once someone opened the Demo LMS
    headers = {**_auth(client, tool), "Accept": NRPS_TYPE}
    members = client.get("/demo-lms/api/contexts/cs229-fall2024/memberships?limit=100", headers=headers).get_json()
    roles = {m["user_id"]: m["roles"] for m in members["members"]}
    for ta in ("alex.thompson", "priya.sharma", "kevin.wong"):
        assert roles[personas_by_name[ta]] == [LIS + "membership#Learner"], ta
    assert roles[personas_by_name["jennifer.martinez"]] == [LIS + "membership#Instructor"]
    assert not any("TeachingAssistant" in r for rs in roles.values() for r in rs)
