"""Full LTI launches through a platform served over HTTP: real keys, signatures, OIDC state, JWKS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from classroom.audit import verify_chain
from classroom.models import AuditEvent, Course, Enrollment, Person
from classroom.roles import StaffLevel
from tests.conftest import count_rows
from tests.support.lti import launch, register, tool_token


def _home(client, response):  # type: ignore[no-untyped-def]
    return client.get("/app/home", query_string={"t": tool_token(response)})


def test_instructor_launch_makes_the_first_instructor_owner(client, canvas, engine, session):
    resp = launch(client, canvas, canvas.user("instructor"))
    page = _home(client, resp)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Jennifer Martinez" in html and "Instructor (course owner)" in html and "CS 229" in html
    enrollment = session.scalar(select(Enrollment))
    assert enrollment is not None and enrollment.level is StaffLevel.OWNER
    assert session.scalar(select(Course.context_id)) == "cs229-fall2024"


def test_second_instructor_is_not_owner_and_starts_read_only(client, canvas, session):
    launch(client, canvas, canvas.user("instructor", 1))
    launch(client, canvas, canvas.user("instructor", 2))
    levels = sorted(e.level.value for e in session.scalars(select(Enrollment)))
    assert levels == ["owner", "ta"]  # the owner raises them (issue 12)


@pytest.mark.parametrize("role", ["ta", "ta_lower"])
def test_ta_launch_is_read_only_ta(client, canvas, session, role):
    resp = launch(client, canvas, canvas.user(role))
    html = _home(client, resp).get_data(as_text=True)
    assert "Teaching assistant (read-only)" in html
    assert session.scalar(select(Enrollment.level)) is StaffLevel.TA


def test_student_launch_shows_student_page_only(client, canvas, session):
    launch(client, canvas, canvas.user("instructor"))
    resp = launch(client, canvas, canvas.user("student"))
    html = _home(client, resp).get_data(as_text=True)
    assert "Emily Chen" in html and "Student" in html
    assert "Jennifer Martinez" not in html  # a student never sees the member list
    person = session.scalar(select(Person).where(Person.sub == "student-1"))
    assert person is not None and person.email == "student1@university.edu"


def test_moodle_shaped_launch_with_posted_login(client, session, moodle):
    register(session, moodle)
    resp = launch(client, moodle, moodle.user("student"), login_method="POST")
    assert _home(client, resp).status_code == 200
    assert session.scalar(select(Course.platform_id)) is not None


def test_relaunch_updates_rows_without_duplicates(client, canvas, engine, session):
    for _ in range(3):
        launch(client, canvas, canvas.user("student"))
    assert count_rows(engine, "people") == 1
    assert count_rows(engine, "enrollments") == 1
    joined = session.scalars(select(AuditEvent).where(AuditEvent.action == "enrollment.created")).all()
    assert [(e.details["level"], e.details["source"]) for e in joined] == [("student", "lti")]  # joining is audited
    assert verify_chain(session).ok


def test_a_role_change_in_the_lms_changes_the_level_and_is_audited(client, canvas, session):
    student = canvas.user("student")
    launch(client, canvas, student)
    as_ta = type(student)(student.sub, student.name, student.email, canvas.user("ta").roles)
    resp = launch(client, canvas, as_ta)
    assert "Teaching assistant (read-only)" in _home(client, resp).get_data(as_text=True)
    assert session.scalar(select(Enrollment.level)) is StaffLevel.TA
    changed = session.scalar(select(AuditEvent).where(AuditEvent.action == "enrollment.level_changed"))
    assert changed is not None and changed.details == {"from": "student", "to": "ta", "source": "lti"}
    assert verify_chain(session).ok


def test_launch_responses_carry_security_headers(client, canvas):
    resp = launch(client, canvas, canvas.user("student"))
    page = _home(client, resp)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "https://canvas.instructure.com" in csp
    assert "*.instructure.com" in csp
