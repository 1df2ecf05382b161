"""Staff see every student's workspaces and spend; everyone sees and clears their notifications."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from classroom.models import Course, Notification, Person, SpendDaily
from classroom.notify import notify
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, register, tool_token


def test_ta_dashboard_lists_workspaces_and_spend_but_no_stop_for_read_only_ta(client, session, platform):
    register(session, platform)
    emily = tool_token(launch(client, platform, platform.user("student")))
    ensure_policies(session)
    page = client.get("/app/workspace", query_string={"t": emily}).get_data(as_text=True)
    client.post("/app/workspace", data=hidden_fields(page))  # Start: a requested workspace
    person = session.scalar(select(Person).where(Person.sub == "student-1"))
    course = session.scalar(select(Course))
    session.add(
        SpendDaily(
            course_id=course.id,
            person_id=person.id,
            day=date(2024, 10, 1),
            compute=Decimal("3.456"),
            storage=Decimal(0),
            running_seconds=Decimal(0),
        )
    )
    session.commit()
    ta = tool_token(launch(client, platform, platform.user("ta")))
    html = client.get("/app/home", query_string={"t": ta}).get_data(as_text=True)
    assert "Emily Chen" in html and "t3.medium: requested" in html and "$3.46" in html
    assert ">Stop</a>" not in html


def test_notifications_show_once_and_can_be_marked_read(client, session, platform):
    register(session, platform)
    token = tool_token(launch(client, platform, platform.user("student")))
    person = session.scalar(select(Person))
    notify(
        session,
        person_id=person.id,
        course_id=session.scalar(select(Course.id)),
        subject="Budget at 50%",
        body="You have used half.",
    )
    session.commit()
    page = client.get("/app/home", query_string={"t": token}).get_data(as_text=True)
    assert "Budget at 50%" in page
    hidden = hidden_fields(page)
    assert client.post("/app/notifications/read", data=hidden).status_code == 303
    assert session.scalar(select(Notification.read_at)) is not None
    assert "Budget at 50%" not in client.get("/app/home", query_string={"t": token}).get_data(as_text=True)
