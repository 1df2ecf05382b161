"""Tool token, role checks, CSRF, head-TA promotion, platform storage and new-window fallbacks."""

from __future__ import annotations

import re

from sqlalchemy import select

from classroom.models import Enrollment, EnrollmentStatus, Person
from classroom.roles import StaffLevel
from tests.conftest import count_rows
from tests.support.lti import TOOL, hidden_fields, launch, post_launch, tool_token


def _valid_form(app, token: str) -> dict[str, str]:
    """A token with a correct CSRF value, so a refusal can only come from the role check."""
    from lti_app.auth import csrf_token

    with app.app_context():
        return {"t": token, "csrf_token": csrf_token(token)}


def _ta_enrollment(session) -> Enrollment:  # type: ignore[no-untyped-def]
    return session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))  # type: ignore[return-value]


def test_owner_promotes_ta_to_head_ta_and_it_is_audited(client, canvas, session, engine):
    launch(client, canvas, canvas.user("ta"))
    owner = tool_token(launch(client, canvas, canvas.user("instructor")))
    page = client.get("/app/home", query_string={"t": owner}).get_data(as_text=True)
    assert "Make head TA" in page
    ta = _ta_enrollment(session)
    resp = client.post(f"/app/staff/{ta.id}/head-ta", data=hidden_fields(page))
    assert resp.status_code == 303
    session.refresh(ta)
    assert ta.level is StaffLevel.HEAD_TA
    with engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM audit_events WHERE action='enrollment.promoted'")).scalar() == 1
    # a later launch as TA keeps the promotion the LMS cannot express
    launch(client, canvas, canvas.user("ta"))
    session.refresh(ta)
    assert ta.level is StaffLevel.HEAD_TA


def test_promotion_without_csrf_is_refused(client, canvas, session):
    launch(client, canvas, canvas.user("ta"))
    owner = tool_token(launch(client, canvas, canvas.user("instructor")))
    ta = _ta_enrollment(session)
    assert client.post(f"/app/staff/{ta.id}/head-ta", data={"t": owner}).status_code == 403
    session.refresh(ta)
    assert ta.level is StaffLevel.TA


def test_ta_cannot_promote(app, client, canvas, session):
    launch(client, canvas, canvas.user("instructor"))
    ta_token = tool_token(launch(client, canvas, canvas.user("ta")))
    page = client.get("/app/home", query_string={"t": ta_token}).get_data(as_text=True)
    assert "Make head TA" not in page and "read-only" in page
    ta = _ta_enrollment(session)
    assert client.post(f"/app/staff/{ta.id}/head-ta", data=_valid_form(app, ta_token)).status_code == 403
    session.refresh(ta)
    assert ta.level is StaffLevel.TA


def test_student_token_cannot_reach_staff_actions(app, client, canvas, session):
    launch(client, canvas, canvas.user("ta"))
    student = tool_token(launch(client, canvas, canvas.user("student")))
    ta = _ta_enrollment(session)
    assert client.post(f"/app/staff/{ta.id}/head-ta", data=_valid_form(app, student)).status_code == 403
    session.refresh(ta)
    assert ta.level is StaffLevel.TA


def test_dropped_student_loses_access_at_once(client, canvas, session):
    token = tool_token(launch(client, canvas, canvas.user("student")))
    enrollment = session.scalar(select(Enrollment))
    enrollment.status = EnrollmentStatus.DROPPED
    session.commit()
    assert client.get("/app/home", query_string={"t": token}).status_code == 403
    assert launch(client, canvas, canvas.user("student")).status_code == 403


def test_platform_storage_login_and_launch_without_cookies(app, canvas, engine):
    """With lti_storage_target the binding travels through platform storage, not a cookie."""
    browser = app.test_client(use_cookies=False)  # a browser that blocks third-party cookies
    user = canvas.user("student")
    params = {
        "iss": canvas.issuer,
        "login_hint": user.sub,
        "target_link_uri": f"{TOOL}/lti/launch",
        "client_id": canvas.client_id,
        "lti_storage_target": "_parent",
    }
    page = browser.get("/lti/login", query_string=params)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "lti.put_data" in html and canvas.base_url in html  # posts to the platform's origin only
    cfg = re.search(r'id="cwc-login">(.*?)</script>', html, re.S).group(1)  # type: ignore[union-attr]
    import json

    cfg = json.loads(cfg)
    from urllib.parse import parse_qs, urlparse

    q = {k: v[0] for k, v in parse_qs(urlparse(cfg["auth_url"]).query).items()}
    token = canvas.sign(canvas.claims(user, nonce=q["nonce"]))
    relay = post_launch(browser, q["state"], token, lti_storage_target="_parent")
    assert relay.status_code == 200 and b"lti.get_data" in relay.data and count_rows(engine, "people") == 0
    done = post_launch(browser, q["state"], token, cwc_binding=cfg["value"], cwc_storage_tried="1")
    assert done.status_code == 303 and count_rows(engine, "people") == 1


def test_no_cookie_and_no_platform_storage_offers_a_new_window(app, canvas, engine):
    browser = app.test_client(use_cookies=False)
    user = canvas.user("student")
    resp = browser.get(
        "/lti/login",
        query_string={
            "iss": canvas.issuer,
            "login_hint": user.sub,
            "target_link_uri": f"{TOOL}/lti/launch",
            "client_id": canvas.client_id,
        },
    )
    from urllib.parse import parse_qs, urlparse

    q = {k: v[0] for k, v in parse_qs(urlparse(resp.headers["Location"]).query).items()}
    page = post_launch(browser, q["state"], canvas.sign(canvas.claims(user, nonce=q["nonce"])))
    assert page.status_code == 401 and b"Open in a new window" in page.data and b'target="_blank"' in page.data
    assert b"/lti/resume?p=" in page.data and b"/lti/login" not in page.data
    assert count_rows(engine, "people") == 0
