"""Issue 13: LTI claims with NUL or control characters: names are cleaned (nobody is locked out), ids refused."""

from __future__ import annotations

from sqlalchemy import select

from classroom.models import Person
from tests.conftest import count_rows
from tests.support.lti import launch, login, post_launch
from tests.support.platform import User


def test_a_name_with_nul_is_cleaned_and_every_launch_works(client, canvas, session, engine):
    user = User(
        "student-nul",
        "Em\x00ily\x1b Chen",
        "emily\x00@u.edu",
        ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    )
    for _ in range(2):  # the first and every later launch of this person
        resp = launch(client, canvas, user)
        assert resp.status_code == 303, resp.data[:300]
    person = session.scalar(select(Person).where(Person.sub == "student-nul"))
    assert person is not None and person.name == "Emily Chen" and "\x00" not in person.email
    assert count_rows(engine, "people") == 1


def test_a_user_id_with_nul_is_refused_with_a_clear_page_and_nothing_written(client, canvas, engine):
    user = canvas.user("student")
    started = login(client, canvas, user)
    body = canvas.claims(user, nonce=started.nonce, sub="student\x00-1")
    resp = post_launch(client, started.state, canvas.sign(body))
    assert resp.status_code == 400
    assert "control character" in resp.get_data(as_text=True)
    assert count_rows(engine, "people") == 0 and count_rows(engine, "enrollments") == 0


def test_a_login_hint_with_nul_is_refused_with_the_field_named(client, canvas):
    resp = client.get("/lti/login", query_string={"iss": canvas.issuer, "login_hint": "a\x00b"})
    assert resp.status_code == 400 and "“login_hint”" in resp.get_data(as_text=True)
