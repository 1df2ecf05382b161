"""Only the course owner reaches the workshop pages, and only their own course's workshops; refusals write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from classroom.models import Enrollment, Person, Workshop
from classroom.roles import StaffLevel
from lti_app.auth import csrf_token
from tests.conftest import count_rows
from tests.support.budget import ensure_policies
from tests.support.lti import launch, tool_token
from tests.workshops.support import create_workshop, owner_token

FORM = {"title": "Sneaky", "starts_at": "2030-01-01T09:00", "hours": "3", "max_participants": "5", "budget": "50",
        "template_id": "ml-cpu-student"}  # fmt: skip


def _set_level(session, sub: str, level: StaffLevel) -> None:  # type: ignore[no-untyped-def]
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == sub))
    enrollment.level = level
    session.commit()


@pytest.mark.parametrize("who", ["student", "ta", "head_ta", "instructor"])
def test_everyone_but_the_owner_is_refused_and_nothing_is_written(who, client, canvas, session, engine):
    owner = owner_token(client, canvas, session)
    _, _, _ = create_workshop(client, owner)
    workshop_id = session.scalar(select(Workshop.id))
    role = "student" if who == "student" else "instructor"
    token = tool_token(launch(client, canvas, canvas.user(role, 2)))  # a second instructor starts as a read-only TA
    if who in ("head_ta", "instructor"):
        _set_level(session, f"{role}-2", StaffLevel(who))
    before = (count_rows(engine, "workshops"), count_rows(engine, "courses"), count_rows(engine, "audit_events"))
    assert client.get("/app/workshops", query_string={"t": token}).status_code == 403
    assert client.get(f"/app/workshops/{workshop_id}", query_string={"t": token}).status_code == 403
    page = client.get("/app/home", query_string={"t": token}).get_data(as_text=True)
    assert "/app/workshops" not in page  # no tab either
    with client.application.app_context():
        csrf = csrf_token(token)  # a valid form value: the role alone refuses
    resp = client.post("/app/workshops", data={"t": token, "csrf_token": csrf, **FORM})
    assert resp.status_code == 403
    assert (
        count_rows(engine, "workshops"),
        count_rows(engine, "courses"),
        count_rows(engine, "audit_events"),
    ) == before


def test_anonymous_and_another_courses_owner_cannot_see_a_workshop(client, canvas, session, engine):
    owner = owner_token(client, canvas, session)
    create_workshop(client, owner)
    workshop_id = session.scalar(select(Workshop.id))
    assert client.get(f"/app/workshops/{workshop_id}").status_code == 401
    other = tool_token(launch(client, canvas, canvas.user("instructor", 3), context_id="cs101-spring"))
    ensure_policies(session)
    assert client.get(f"/app/workshops/{workshop_id}", query_string={"t": other}).status_code == 404
    listing = client.get("/app/workshops", query_string={"t": other})
    assert listing.status_code == 200 and b"Intro to ML" not in listing.data


def test_bad_values_are_refused_with_a_message_and_nothing_written(client, canvas, session, engine):
    owner = owner_token(client, canvas, session)
    before = count_rows(engine, "courses")
    for bad, message in (
        ({"budget": "NaN"}, b"Total budget: enter a number"),
        ({"max_participants": "2.5"}, b"whole numbers"),
        ({"template_id": "gpu-ml-workstation"}, b"templates your course approves"),
        ({"starts_at": "2001-01-01T09:00"}, b"within the next 366 days"),
        ({"starts_at": "9999-12-31T23:59"}, b"within the next 366 days"),
        ({"starts_at": "0001-01-01T00:00"}, b"within the next 366 days"),
        ({"hours": "1e400"}, b"Duration: enter a number"),
        ({"hours": "13"}, b"between half an hour and 12 hours"),
        ({"starts_at": "soon"}, b"enter a date and time"),
        (
            {"extension_days": "7", "extension_daily_price": "1", "extension_allowance": "3"},
            b"at least one participant",
        ),
    ):
        status, code, resp = create_workshop(client, owner, **bad)
        assert status == 400 and code == "" and message in resp.data, (bad, resp.data[-600:])
    assert count_rows(engine, "courses") == before and count_rows(engine, "workshops") == 0
