"""Budget pages through full LTI launches: the student's own budget, the cost report, CSV, and grants."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import AuditEvent, BudgetGrant, Course, Notification, Person, SpendDaily
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from tests.conftest import count_rows
from tests.support.budget import ensure_policies, make_running
from tests.support.lti import hidden_fields, launch, tool_token

D = Decimal


def _today() -> date:
    return datetime.now(UTC).date()  # courses made by launches keep time zone UTC


def _person(session, sub: str, name: str | None = None) -> Person:  # type: ignore[no-untyped-def]
    person = session.scalar(select(Person).where(Person.sub == sub))
    if name:
        person.name, person.family_name = name, name.split()[-1]
    session.flush()
    return person


def _spend(session, person, compute: str, storage: str, hours: float, days_ago: int = 0) -> None:  # type: ignore[no-untyped-def]
    course_id = session.scalar(select(Course.id))
    session.add(
        SpendDaily(
            course_id=course_id,
            person_id=person.id,
            day=_today() - timedelta(days=days_ago),
            compute=D(compute),
            storage=D(storage),
            running_seconds=D(int(hours * 3600)),
        )
    )
    session.flush()


def _class(client, canvas, session):  # type: ignore[no-untyped-def]
    """Emily (over cap), David (a grant), Sophie (no spend); staff launched; the CS229 policy."""
    tokens = {
        "emily": tool_token(launch(client, canvas, canvas.user("student", 1))),
        "david": tool_token(launch(client, canvas, canvas.user("student", 2))),
        "sophie": tool_token(launch(client, canvas, canvas.user("student", 3))),
        "teacher": tool_token(launch(client, canvas, canvas.user("instructor"))),
        "ta": tool_token(launch(client, canvas, canvas.user("ta"))),
    }
    ensure_policies(session)
    emily = _person(session, "student-1", "Emily Chen")
    david = _person(session, "student-2", "David Kim")
    _person(session, "student-3", "Sophie Martinez")
    _spend(session, emily, "20.00", "4.80", 10)  # $24.80: 103 % of $24, the seed's anomaly
    _spend(session, david, "12.00", "0.50", 5, days_ago=8)
    _spend(session, david, "5.50", "0.50", 2)
    course_id = session.scalar(select(Course.id))
    session.add(BudgetGrant(course_id=course_id, person_id=david.id, amount=D(5), reason="final", granted_by=1))
    session.commit()
    return tokens


def test_student_sees_own_budget_chart_running_workspace_and_what_happens(client, canvas, session):
    emily_t = tool_token(launch(client, canvas, canvas.user("student", 1)))
    launch(client, canvas, canvas.user("student", 2))
    ensure_policies(session)
    emily, david = _person(session, "student-1", "Emily Chen"), _person(session, "student-2", "David Kim")
    _spend(session, emily, "1.00", "0.20", 2)
    _spend(session, emily, "0.15", "0.05", 1, days_ago=2)
    _spend(session, david, "9.80", "0.07", 30)
    course_id = session.scalar(select(Course.id))
    session.add(BudgetGrant(course_id=course_id, person_id=emily.id, amount=D(6), reason="extension", granted_by=1))
    ws = make_running(session, course_id, emily.id, datetime.now(UTC) - timedelta(hours=1), link="hw4")
    ws.link_title = "Homework 4"
    session.commit()

    resp = client.get("/app/budget", query_string={"t": emily_t, "person_id": david.id})  # a person id is ignored
    html = resp.get_data(as_text=True)

    assert resp.status_code == 200
    assert "You have used $1.40 of $30.00 (5%)" in html and "<strong>$28.60</strong>" in html
    assert "$24.00 + $6.00 added by your instructor" in html
    assert "About 143.0 days left" in html and "$0.20 a day on average over the last 7 days" in html
    assert "$0.47 per hour of use" in html and "over 3.0 hours of running workspaces" in html  # $1.40 / 3 h
    assert "ML CPU workspace (t3.medium): $0.05 an hour, $1.20 a day" in html  # the price table's 24/7 figure, IPv4 in
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg and len(re.findall(r'<rect class="bar"', svg)) == 30
    assert f"{_today():%b} {_today().day}: $1.20." in svg  # today, the last bar, in the description
    assert f'href="/app/workspaces/{ws.id}/stop?t=' in html and "Homework 4" in html
    assert "What happens when the budget runs out" in html and "Nothing is ever charged to you" in html
    assert "files are kept" in html and "ask your instructor" in html and "No new workspace can start" in html
    assert "$9.87" not in html and "David" not in html  # another student's figures never appear
    assert 'href="/app/budget?t=' in html  # the nav offers the page
    assert "<script" not in html.split("</main>")[0].split("<main")[1]  # the page works without JavaScript


def test_no_recent_use_and_a_course_not_set_up(client, canvas, session):
    token = tool_token(launch(client, canvas, canvas.user("student")))
    first = client.get("/app/budget", query_string={"t": token})
    assert first.status_code == 200 and b"has not finished setting up" in first.data
    ensure_policies(session)
    emily = _person(session, "student-1")
    _spend(session, emily, "3.00", "0", 4, days_ago=9)
    course = session.scalar(select(Course))
    course.term_start, course.term_end = _today() - timedelta(days=30), _today() + timedelta(days=5)
    make_running(session, course.id, emily.id, datetime.now(UTC) - timedelta(days=9)).state = WorkspaceState.STOPPED
    session.commit()
    html = client.get("/app/budget", query_string={"t": token}).get_data(as_text=True)
    assert "No recent use" in html and "You have used $3.00 of $24.00 (13%)" in html
    assert "Nothing is running" in html and "1 stopped workspace keeps your files" in html
    end = datetime.combine(course.term_end + timedelta(days=1), datetime.min.time(), UTC)  # the course is in UTC
    prices = load_prices().region("us-east-1")
    to_end = prices.storage_hourly(30) * D((end - datetime.now(UTC)).total_seconds()) / 3600
    kept = to_end + prices.storage_hourly(30) * 14 * 24  # and the grace; the archive is the course's line
    shown = D(re.search(r"Kept for your disks</dt><dd>\$([0-9.]+),", html).group(1))
    assert abs(shown - kept) <= D("0.01")  # the disk's cost to term end and its grace is held back, as the sweep
    assert "through the 14 days they are kept after it" in html and "paid by the course" in html
    assert re.search(r"<strong>\$([0-9.]+)</strong>", html).group(1) == str((21 - shown).quantize(D("0.01")))


def test_staff_opening_the_budget_page_get_the_cost_report(client, canvas, session):
    token = tool_token(launch(client, canvas, canvas.user("ta")))
    resp = client.get("/app/budget", query_string={"t": token})
    assert resp.status_code == 303 and "/app/report?t=" in resp.headers["Location"]


def test_cost_report_shows_totals_rows_weeks_and_anomalies(client, canvas, session):
    tokens = _class(client, canvas, session)
    resp = client.get("/app/report", query_string={"t": tokens["teacher"]})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Total: $43.30 / $1,200.00 (4%)" in html  # 24.80 + 12.50 + 6.00
    assert "Available</dt>" in html and "<strong>$1,156.70</strong>" in html  # 1,200 − 43.30: grants come out of it
    assert "median $21.65 among the 2 who spent anything" in html  # Emily and David; Sophie spent nothing
    table = html.split('id="students-h"')[1].split('id="weeks-h"')[0]
    row = re.search(r"Emily Chen.*?</tr>", table, re.S).group(0)
    assert "$24.80" in row and "103%" in row and "10.0" in row and "$2.48" in row and "Over cap" in row
    row = re.search(r"David Kim.*?</tr>", table, re.S).group(0)
    assert "$18.50" in row and "64%" in row and "of $29.00" in row and "Over cap" not in row
    assert re.search(r"Sophie Martinez.*?\$0\.00.*?0%", table, re.S)
    assert "spent $24.80 (103% of their budget)" in html and "over their cap of $24.00" in html
    week = _today() - timedelta(days=_today().weekday())
    assert f"{week.isocalendar()[0]}-W{week.isocalendar()[1]:02d}" in html
    assert "Grant extra budget" in html and 'href="/app/report.csv?t=' in html
    assert 'href="/app/report?t=' in html  # the nav's "Cost report"


def test_ta_views_the_report_read_only_and_students_are_refused(app, client, canvas, session):
    from lti_app.auth import csrf_token

    tokens = _class(client, canvas, session)
    ta = client.get("/app/report", query_string={"t": tokens["ta"]})
    assert ta.status_code == 200 and b"$24.80" in ta.data and b"Grant extra budget" not in ta.data
    assert client.get("/app/report.csv", query_string={"t": tokens["ta"]}).status_code == 200
    emily = tokens["emily"]
    assert client.get("/app/report", query_string={"t": emily}).status_code == 403
    assert client.get("/app/report.csv", query_string={"t": emily}).status_code == 403
    with app.app_context():
        form = {"t": emily, "csrf_token": csrf_token(emily), "person": "course", "amount": "10", "reason": "more"}
    assert client.post("/app/report/grants", data=form).status_code == 403
    assert count_rows(session.get_bind(), "budget_grants") == 1  # only the one the test made


def test_csv_export_has_the_per_student_table(client, canvas, session):
    tokens = _class(client, canvas, session)
    _person(session, "student-3", "=HYPERLINK(evil)")  # a name a spreadsheet would run as a formula
    session.commit()
    resp = client.get("/app/report.csv", query_string={"t": tokens["teacher"]})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="cs-229-cost-report-')
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0] == (
        "name,email,enrolled,spent,cap,percent_of_cap,running_hours,effective_per_hour,over_cap,near_cap,anomaly,idle_stops,"
        "kept_for_disks,left"
    )
    assert "Emily Chen,student1@university.edu,yes,24.80,24.00,103,10.00,2.48,yes,no,no,0,0.00,0.00" in lines
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["David Kim"][3:8] == ["18.50", "29.00", "64", "7.00", "2.64"]
    assert by_name["'=HYPERLINK(evil)"][3:8] == ["0.00", "24.00", "0", "0.00", ""]
    assert len(rows) == 4


def test_grant_extra_budget_valid_then_invalid_inputs_create_nothing(client, canvas, session):
    tokens = _class(client, canvas, session)
    page = client.get("/app/report", query_string={"t": tokens["teacher"]}).get_data(as_text=True)
    emily = _person(session, "student-1")
    form = {**hidden_fields(page), "person": str(emily.id), "amount": "10.00", "reason": "Lost a day to a bad template"}

    ok = client.post("/app/report/grants", data=form)
    assert ok.status_code == 303 and "granted=" in ok.headers["Location"]
    grant = session.scalar(select(BudgetGrant).where(BudgetGrant.person_id == emily.id))
    assert grant.amount == D(10) and grant.reason == "Lost a day to a bad template"
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "budget.grant"))
    assert audit.details == {"amount": "10.00", "reason": "Lost a day to a bad template"}
    assert session.scalar(select(func.count(Notification.id)).where(Notification.person_id == emily.id)) == 1
    shown = client.get(ok.headers["Location"]).get_data(as_text=True)
    assert "Added $10.00 to Emily Chen&#39;s budget" in shown and "of $34.00" in shown  # her cap now

    before = (count_rows(session.get_bind(), "budget_grants"), count_rows(session.get_bind(), "audit_events"))
    for amount in ("0", "-5", "1000.01", "abc", "", "NaN", "1.005"):
        bad = client.post("/app/report/grants", data={**form, "amount": amount})
        assert bad.status_code == 400, amount
        assert b"Nothing was granted" in bad.data and b'id="amount-err"' in bad.data
    no_reason = client.post("/app/report/grants", data={**form, "reason": "  "})
    assert no_reason.status_code == 400 and b'id="reason-err"' in no_reason.data
    assert f'value="{emily.id}" selected' in no_reason.get_data(as_text=True)  # the form keeps its values
    stranger = client.post("/app/report/grants", data={**form, "person": "999999"})
    assert stranger.status_code == 400 and b'id="person-err"' in stranger.data
    after = (count_rows(session.get_bind(), "budget_grants"), count_rows(session.get_bind(), "audit_events"))
    assert after == before

    course_wide = client.post("/app/report/grants", data={**form, "person": "course", "amount": "1000"})
    assert course_wide.status_code == 303
    assert session.scalar(select(BudgetGrant.amount).where(BudgetGrant.person_id.is_(None))) == D(1000)


def test_ta_cannot_grant(app, client, canvas, session):
    from lti_app.auth import csrf_token

    tokens = _class(client, canvas, session)
    emily = _person(session, "student-1")
    ta = tokens["ta"]
    with app.app_context():
        form = {"t": ta, "csrf_token": csrf_token(ta), "person": str(emily.id), "amount": "5", "reason": "please"}
    assert client.post("/app/report/grants", data=form).status_code == 403
    assert count_rows(session.get_bind(), "budget_grants") == 1
    assert not session.scalar(select(AuditEvent.id).where(AuditEvent.action == "budget.grant"))


def test_cost_report_shows_the_course_lines_in_the_total(client, canvas, session):
    from classroom.services.course_charges import book, storage_charge, transfer_charge

    tokens = _class(client, canvas, session)
    course_id = session.scalar(select(Course.id))
    emily = _person(session, "student-1")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=730)  # a month of 730 hours: GB-month prices apply as written
    prices = load_prices().region("us-east-1")
    lines = [
        storage_charge(course_id, "efs", "fs-1", start, end, 10 * 1024**3, prices.efs_gb_month),  # $3.00
        storage_charge(
            course_id, "archive", "courses/x/archives/ws1/home.tar.gz", start, end, 100 * 1024**3, prices.s3_gb_month
        ),  # $2.30  # fmt: skip
        transfer_charge(course_id, "i-emily", start, end, 10 * 1024**3, prices, emily.id),  # $0.90, Emily's spend
    ]
    assert book(session, lines, datetime.now(UTC)) == 3
    session.commit()
    html = client.get("/app/report", query_string={"t": tokens["teacher"]}).get_data(as_text=True)
    assert "Total: $49.50 / $1,200.00 (4%)" in html  # 43.30 + 0.90 of Emily's + 5.30 of the course's
    assert "Booked to the course</dt>" in html and "$5.30" in html
    assert "Shared course files (EFS): $3.00" in html and "Archived homes (S3): $2.30" in html
    row = re.search(r"Emily Chen.*?</tr>", html.split('id="students-h"')[1], re.S).group(0)
    assert "$25.70" in row  # her transfer out is in her spend


def test_the_grant_form_shows_the_real_unallocated_remainder_and_what_a_grant_would_leave(client, canvas, session):
    from classroom.models import CoursePolicy

    tokens = _class(client, canvas, session)
    session.scalar(select(CoursePolicy)).total_budget = D(100)  # 3 students x $24 + David's $5 grant: $23 left
    session.commit()
    teacher = tokens["teacher"]
    page = client.get("/app/report", query_string={"t": teacher}).get_data(as_text=True)
    assert "Unallocated: <strong>$23.00</strong> of the $100.00 course total" in page
    assert "would leave" not in page and 'id="grant-preview"' not in page  # no made-up example
    before = (count_rows(session.get_bind(), "budget_grants"), count_rows(session.get_bind(), "audit_events"))

    fits = client.get("/app/report", query_string={"t": teacher, "amount": "20"}).get_data(as_text=True)
    too_much = client.get("/app/report", query_string={"t": teacher, "amount": "$23.01"}).get_data(as_text=True)
    nonsense = client.get("/app/report", query_string={"t": teacher, "amount": "1e9"})

    assert "A grant of <strong>$20.00</strong> would leave <strong>$3.00</strong> unallocated." in fits
    assert 'id="preview-amount" name="amount" inputmode="decimal" autocomplete="off" value="20"' in fits
    assert "A grant of <strong>$23.01</strong> is $0.01 more than is unallocated: it would be refused." in too_much
    assert nonsense.status_code == 200 and (
        '<p id="grant-preview" role="status">The amount must be above $0 and at most $1,000.</p>'
        in nonsense.get_data(as_text=True)
    )  # an amount that is not one says why, as the grant form would
    ta = client.get("/app/report", query_string={"t": tokens["ta"], "amount": "20"}).get_data(as_text=True)
    assert 'id="grant-preview"' not in ta  # the grant section is not offered to a TA
    after = (count_rows(session.get_bind(), "budget_grants"), count_rows(session.get_bind(), "audit_events"))
    assert after == before  # a preview is a read

    emily = _person(session, "student-1")
    form = {**hidden_fields(page), "person": str(emily.id), "reason": "Lost a day to a bad template"}
    refused = client.post("/app/report/grants", data={**form, "amount": "23.01"})  # what the preview said
    assert refused.status_code == 400 and "$23.00 is unallocated" in refused.get_data(as_text=True)
    assert "is $0.01 more than is unallocated: it would be refused" in refused.get_data(as_text=True)
    assert count_rows(session.get_bind(), "budget_grants") == before[0]
    ok = client.post("/app/report/grants", data={**form, "amount": "20"})
    assert ok.status_code == 303
    shown = client.get(ok.headers["Location"]).get_data(as_text=True)
    assert "Unallocated: <strong>$3.00</strong> of the $100.00 course total" in shown  # what the preview said
