"""The development-only time-travel control: move CS 229's term end and run the term-end pass (warnings, stop,
archive, report), or end a workshop; absent in production, refused off loopback, CSRF on its forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from classroom.models import AuditEvent, Course, CoursePolicy, Notification, Workshop, Workspace
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import DesiredState
from dev.clock import move_term_end
from lti_app import create_app
from tests.conftest import count_rows
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.workshops.support import create_workshop, join, owner_token

ACTIONS = {"stop_all": True, "archive": True, "revoke_access": True, "final_report": True}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _cs229(session):  # type: ignore[no-untyped-def]
    course = make_course(session, time_zone="America/Los_Angeles")
    make_policy(session, course, term_end_actions=ACTIONS)
    make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    emily = make_person(session, course, name="Emily Chen")
    ws = make_running(session, course.id, emily.id, datetime.now(UTC) - timedelta(hours=2))
    session.commit()
    return course, ws


def test_move_warns_at_eleven_minutes_then_now_closes_the_course_once(session):
    course, ws = _cs229(session)
    now = datetime.now(UTC)
    far = move_term_end(session, course, 25 * 60, now)
    session.commit()
    assert far.at == datetime.combine(course.term_end, datetime.max.time(), course_zone(course)) - timedelta(hours=25)
    assert "0 warned, not closed" in far.summary
    near = move_term_end(session, course, 11, now)
    session.commit()
    assert "1 warned, not closed" in near.summary and near.jobs == []
    closed = move_term_end(session, course, 0, now)
    session.commit()
    assert "closed" in closed.summary and "not closed" not in closed.summary and closed.at == now
    assert course.term_end < now.astimezone(course_zone(course)).date()  # the real sweep agrees: the term is over
    session.expire_all()
    assert session.get(Workspace, ws.id).desired_state is DesiredState.STOPPED
    assert session.get(CoursePolicy, course.id).closed_at == now
    assert session.scalar(select(Notification.body).where(Notification.subject.like("%Final course report")))
    again = move_term_end(session, course, 0, now)  # already closed: nothing twice
    assert again.jobs == [] and "not closed" in again.summary
    reopened = move_term_end(session, course, 11, now)  # moved into the future: reopened, closes again later
    session.commit()
    assert session.get(CoursePolicy, course.id).closed_at is None and "not closed" in reopened.summary
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "dev.time_travel")) == 5


def course_zone(course: Course):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(course.time_zone)


def test_the_control_page_moves_a_course_and_ends_a_workshop(app, client, canvas, session):
    course, _ = _cs229(session)
    page = client.get("/dev/time-travel")
    assert page.status_code == 200 and b"in 11 minutes" in page.data
    csrf = CSRF.search(page.get_data(as_text=True)).group(1)
    assert client.post(f"/dev/time-travel/course/{course.id}", data={"when": "now"}).status_code == 403  # no CSRF
    assert (
        app.test_client()
        .post(f"/dev/time-travel/course/{course.id}", data={"when": "now", "csrf_token": csrf})
        .status_code
        == 403
    )  # fmt: skip  no cookie
    assert session.get(CoursePolicy, course.id).closed_at is None
    moved = client.post(f"/dev/time-travel/course/{course.id}", data={"when": "now", "csrf_token": csrf})
    assert moved.status_code == 200 and b"closed, 2 cloud jobs queued" in moved.data
    assert client.post("/dev/time-travel/course/999999", data={"when": "now", "csrf_token": csrf}).status_code == 400

    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, max_participants="2", budget="10")
    join(app, code, "Walk-in")
    workshop = session.scalar(select(Workshop))
    ended = client.post(f"/dev/time-travel/workshop/{workshop.id}", data={"when": "end", "csrf_token": csrf})
    assert ended.status_code == 200 and b"ended, purged" in ended.data
    session.expire_all()
    assert session.get(Workshop, workshop.id).purged_at is not None
    assert join(app, code, "Too late").status_code == 410


def test_the_control_is_absent_in_production_and_refused_off_loopback(settings, session, engine):
    course, _ = _cs229(session)
    prod = create_app(settings.with_(env="production", base_url="https://tool.example"))
    try:
        assert not [r.rule for r in prod.url_map.iter_rules() if r.rule.startswith("/dev/time-travel")]
        assert prod.test_client().get("/dev/time-travel").status_code == 404
    finally:
        prod.extensions["cwc"].engine.dispose()
    dev = create_app(settings)
    try:
        remote = dev.test_client()
        assert remote.get("/dev/time-travel", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
        resp = remote.post(f"/dev/time-travel/course/{course.id}", data={"when": "now"},
                           environ_base={"REMOTE_ADDR": "10.1.2.3"})  # fmt: skip
        assert resp.status_code == 404 and count_rows(engine, "audit_events") == 0
    finally:
        dev.extensions["cwc"].engine.dispose()
