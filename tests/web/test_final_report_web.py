"""The final report page/PDF and the grade correlation page/CSV through real launches, for every role."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from classroom.models import AuditEvent, Course, Enrollment, LmsGrade, LmsLineItem, Person, SpendDaily
from classroom.roles import StaffLevel
from tests.support.budget import ensure_policies
from tests.support.lti import launch, tool_token

ROUTES = ("/app/final-report", "/app/final-report.pdf", "/app/grades-usage", "/app/grades-usage.csv")
D = Decimal


def _class(client, canvas, session):  # type: ignore[no-untyped-def]
    """Emily and David with spend and grades; the instructor; Alex raised to head TA; Kevin a read-only TA."""
    tokens = {
        "emily": tool_token(launch(client, canvas, canvas.user("student", 1))),
        "david": tool_token(launch(client, canvas, canvas.user("student", 2))),
        "teacher": tool_token(launch(client, canvas, canvas.user("instructor"))),
        "alex": tool_token(launch(client, canvas, canvas.user("ta", 1))),
        "kevin": tool_token(launch(client, canvas, canvas.user("ta", 2))),
        "elsewhere": tool_token(launch(client, canvas, canvas.user("instructor", 9), context_id="cs101-fall2024")),
    }
    ensure_policies(session)
    course_id = session.scalar(select(Course.id).where(Course.context_id == "cs229-fall2024"))
    alex = session.scalar(select(Person.id).where(Person.sub == "ta-1"))
    session.execute(update(Enrollment).where(Enrollment.person_id == alex).values(level=StaffLevel.HEAD_TA))
    item = LmsLineItem(course_id=course_id, label="HW1", score_maximum=D(10))
    session.add(item)
    session.flush()
    for sub, name, spent, hours, score in (
        ("student-1", "Emily Chen", "12.50", 10, "9"),
        ("student-2", "David Kim", "3.25", 2, "6"),
    ):
        person = session.scalar(select(Person).where(Person.sub == sub))
        person.name = name
        session.add(SpendDaily(course_id=course_id, person_id=person.id, day=datetime.now(UTC).date(), compute=D(spent),
                               storage=D(0), running_seconds=D(hours * 3600)))  # fmt: skip
        session.add(LmsGrade(course_id=course_id, line_item_id=item.id, person_id=person.id, score_given=D(score),
                             score_maximum=D(10)))  # fmt: skip
    session.commit()
    return tokens


def _audits(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("report.%")))


@pytest.mark.parametrize("who", ["emily", "kevin"])
def test_students_and_read_only_tas_are_refused_and_nothing_is_written(client, canvas, session, who):  # type: ignore[no-untyped-def]
    tokens = _class(client, canvas, session)
    before = _audits(session)
    for route in ROUTES:
        resp = client.get(route, query_string={"t": tokens[who]})
        assert resp.status_code == 403, route
        assert b"Emily Chen" not in resp.data or who == "emily"
    assert _audits(session) == before


def test_no_token_is_401(client):  # type: ignore[no-untyped-def]
    assert [client.get(r).status_code for r in ROUTES] == [401] * 4


@pytest.mark.parametrize("who", ["teacher", "alex"])
def test_instructor_and_head_ta_read_the_report_pdf_chart_and_csv(client, canvas, session, who):  # type: ignore[no-untyped-def]
    t = _class(client, canvas, session)[who]
    page = client.get("/app/final-report", query_string={"t": t})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Total spent: $15.75" in html and "Range: $12.50 to $3.25" not in html and "Range: $3.25 to $12.50" in html
    assert "Total compute hours: 12.0 h" in html
    pdf = client.get("/app/final-report.pdf", query_string={"t": t})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    chart = client.get("/app/grades-usage", query_string={"t": t}).get_data(as_text=True)
    assert chart.count("<circle") == 2 and "Emily Chen: 10.00 h, grade 90.0 %" in chart
    out = client.get("/app/grades-usage.csv", query_string={"t": t})
    assert out.status_code == 200 and "attachment" in out.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(out.get_data(as_text=True))))
    emily = next(r for r in rows if r["name"] == "Emily Chen")
    assert (emily["running_hours"], emily["spend"], emily["grade_percent"], emily["scored_items"]) == (
        "10.00", "12.50", "90.0", "1")  # fmt: skip
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("report.%"))).all()
    assert sorted(actions) == ["report.final_downloaded", "report.grades_exported"]


def test_another_courses_instructor_sees_only_their_course(client, canvas, session):  # type: ignore[no-untyped-def]
    t = _class(client, canvas, session)["elsewhere"]
    html = client.get("/app/final-report", query_string={"t": t}).get_data(as_text=True)
    assert "Total spent: $0.00" in html and "Emily Chen" not in html
    text = client.get("/app/grades-usage.csv", query_string={"t": t}).get_data(as_text=True)
    assert "Emily Chen" not in text and "David Kim" not in text
