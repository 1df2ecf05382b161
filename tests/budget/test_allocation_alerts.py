"""Roster growth against the course's IT allocation: enrolment is never refused, instructors are told once per
crossing, the report shows it, and the course position refuses a late enrollee's launch it cannot cover."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import AlertSent, AuditEvent, Course, Notification, Person, SpendDaily
from classroom.services.reports import course_report
from tests.conftest import count_rows
from tests.support.budget import ensure_policies
from tests.support.lti import launch, tool_token

OVER = "%over the course's IT allocation%"


def _notices(session) -> list[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Notification.body).where(Notification.subject.like(OVER))))


def _spend(session, course_id: int, sub: str, amount: str) -> None:  # type: ignore[no-untyped-def]
    person = session.scalar(select(Person).where(Person.sub == sub))
    session.add(SpendDaily(course_id=course_id, person_id=person.id, day=date.today(), compute=Decimal(amount),
                           storage=Decimal(0), running_seconds=Decimal(0)))  # fmt: skip


def test_a_late_enrollee_past_the_allocation_alerts_once_and_is_refused_at_launch_with_the_figures(
    client, canvas, session, redis
):
    launch(client, canvas, canvas.user("instructor"))  # the owner: told of the crossing
    launch(client, canvas, canvas.user("student", 1))
    ensure_policies(session, total_budget=Decimal(48))  # $24 a student: two students fit
    course = session.scalar(select(Course))
    course.time_zone, course.term_end = "UTC", date.today() + timedelta(days=100)
    session.commit()
    launch(client, canvas, canvas.user("student", 2))  # $48 allocated of $48: no alert
    assert _notices(session) == []
    _spend(session, course.id, "student-1", "23")
    _spend(session, course.id, "student-2", "20")  # $43 committed: $5 left of the course total
    session.commit()

    third = launch(client, canvas, canvas.user("student", 3))  # $72 allocated: over by $24
    fourth = launch(client, canvas, canvas.user("student", 4))  # still over: no second alert

    assert third.status_code == 303 and fourth.status_code == 303  # enrolment is never refused
    notices = _notices(session)
    assert len(notices) == 1  # one instructor, one crossing
    assert "now has 3 students at $24.00 each, plus $0.00 of grants: $72.00 promised against the $48.00" in notices[0]
    assert "$24.00 over" in notices[0] and "at the course total launches are refused" in notices[0]
    assert session.scalar(select(func.count(AlertSent.id)).where(AlertSent.kind == "allocation-over")) == 1
    audit = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "course.over_allocation")).all()
    assert audit == [{"students": 3, "per_student": "24.000000000000", "grants": "0", "allocated": "72.000000000000",
                      "total": "48.000000000000", "over": "24.000000000000"}]  # fmt: skip
    report = course_report(session, course)
    assert report.over_allocation == Decimal(48)  # four students x $24 against $48

    resp = client.get("/app/workspace", query_string={"t": tool_token(fourth)})

    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "This workspace cannot start now" in html
    assert "total budget of $48.00 is committed ($43.00 spent or reserved)" in html
    assert "No workspace can start until your instructor adds budget. Nothing was charged." in html
    assert count_rows(session.get_bind(), "workspaces") == 0 and count_rows(session.get_bind(), "ledger_entries") == 0
