"""Personas, sign-in with CSRF, the course page's iframe login URL, the gradebook and roster pages."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.demo_lms.support import (
    ISSUER,
    FakeTool,
    count_rows,
    csrf_of,
    iframe_src,
    query,
    sign_in,
)


def test_index_lists_staff_and_fifty_students(client: FlaskClient, engine: Engine) -> None:
    page = client.get("/demo-lms/").get_data(as_text=True)
    for name in (
        "Jennifer Martinez",
        "Alex Thompson",
        "Priya Sharma",
        "Kevin Wong",
        "Emily Chen",
        "David Kim",
        "Sophie Martinez",
    ):
        assert name in page
    assert "a student (50)" in page
    assert count_rows(engine, "demo_members") == 54
    client.get("/demo-lms/")
    assert count_rows(engine, "demo_members") == 54, "seeding happens once"


def test_sign_in_needs_the_csrf_token_of_this_browser(client: FlaskClient, personas_by_name: dict[str, str]) -> None:
    client.get("/demo-lms/")
    resp = client.post("/demo-lms/sign-in", data={"csrf": "forged", "persona": personas_by_name["emily.chen"]})
    assert resp.status_code == 400
    assert client.get("/demo-lms/course").status_code == 303, "still signed out"
    sign_in(client, personas_by_name["emily.chen"])
    assert "Emily Chen" in client.get("/demo-lms/course").get_data(as_text=True)


def test_course_page_frames_the_tool_login_with_platform_storage(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["emily.chen"])
    home = client.get("/demo-lms/course")
    page = home.get_data(as_text=True)
    assert "Cloud Workstation" in page and "Add assignment" not in page
    link_id = page.split('href="/demo-lms/course?link=')[1].split('"')[0]
    resp = client.get(f"/demo-lms/course?link={link_id}")
    csp = resp.headers["Content-Security-Policy"]
    assert f"frame-src 'self' http://127.0.0.1 {tool.base_url}" in csp and "frame-ancestors 'self'" in csp
    src = iframe_src(resp.get_data(as_text=True))
    assert src.startswith(tool.base_url + "/lti/login?")
    params = query(src)
    assert params["iss"] == ISSUER and params["login_hint"] == personas_by_name["emily.chen"]
    assert params["target_link_uri"] == tool.base_url + "/lti/launch"
    assert params["client_id"] == tool.client_id and params["lti_deployment_id"] == tool.deployment_id
    assert params["lti_storage_target"] == "_parent" and params["lti_message_hint"]
    assert "platform_storage.js" in resp.get_data(as_text=True)


def test_only_the_instructor_gets_the_deep_linking_button(
    client: FlaskClient, tool: FakeTool, personas_by_name: dict[str, str]
) -> None:
    sign_in(client, personas_by_name["alex.thompson"])
    assert "Add assignment" not in client.get("/demo-lms/course").get_data(as_text=True)
    assert "tool-frame" not in client.get("/demo-lms/course?deep_link=1").get_data(as_text=True)
    sign_in(client, personas_by_name["jennifer.martinez"])
    page = client.get("/demo-lms/course").get_data(as_text=True)
    assert "Add assignment from Cloud Workstation" in page
    src = iframe_src(client.get("/demo-lms/course?deep_link=1").get_data(as_text=True))
    assert query(src)["login_hint"] == personas_by_name["jennifer.martinez"]


def test_gradebook_and_roster_are_for_staff(client: FlaskClient, personas_by_name: dict[str, str]) -> None:
    sign_in(client, personas_by_name["david.kim"])
    assert client.get("/demo-lms/gradebook").status_code == 403
    assert client.get("/demo-lms/roster").status_code == 403
    sign_in(client, personas_by_name["priya.sharma"])
    assert client.get("/demo-lms/gradebook").status_code == 200
    assert "David Kim" in client.get("/demo-lms/roster").get_data(as_text=True)


def test_instructor_can_drop_a_student(client: FlaskClient, engine: Engine, personas_by_name: dict[str, str]) -> None:
    sign_in(client, personas_by_name["jennifer.martinez"])
    page = client.get("/demo-lms/roster").get_data(as_text=True)
    member_id = page.split('action="/demo-lms/roster/')[1].split("/")[0]
    resp = client.post(f"/demo-lms/roster/{member_id}/status", data={"csrf": csrf_of(page), "status": "Deleted"})
    assert resp.status_code == 303
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status, kind, count(*) FROM demo_members GROUP BY status, kind")).all()
    assert {(s, k): n for s, k, n in statuses} == {
        ("Active", "instructor"): 1,
        ("Active", "ta"): 3,
        ("Active", "student"): 49,
        ("Deleted", "student"): 1,
    }
    forged = client.post(f"/demo-lms/roster/{member_id}/status", data={"csrf": csrf_of(page), "status": "Gone"})
    assert forged.status_code == 400


def test_demo_cookie_is_first_party_none_secure_with_a_lax_copy(
    client: FlaskClient, personas_by_name: dict[str, str]
) -> None:
    client.get("/demo-lms/")
    page = client.get("/demo-lms/").get_data(as_text=True)
    resp = client.post("/demo-lms/sign-in", data={"csrf": csrf_of(page), "persona": personas_by_name["kevin.wong"]})
    cookies = resp.headers.getlist("Set-Cookie")
    main = next(c for c in cookies if c.startswith("demo_lms="))
    lax = next(c for c in cookies if c.startswith("demo_lms_lax="))
    assert "SameSite=None" in main and "Secure" in main and "HttpOnly" in main and "Path=/demo-lms" in main
    assert "SameSite=Lax" in lax and "HttpOnly" in lax
