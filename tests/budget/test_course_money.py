"""Money safety II on PostgreSQL: what a launch commits to, the course total, grants against the allocation,
limits under concurrent Starts, and the template's idle limit."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from classroom.budget.policy import hours_until_term_end
from classroom.db import make_session_factory
from classroom.models import (
    AlertSent,
    AuditEvent,
    BudgetGrant,
    Course,
    CoursePolicy,
    LedgerEntry,
    Notification,
    Person,
    SpendDaily,
    Workspace,
    WorkspaceEvent,
)
from classroom.services.budgets import BudgetError, decide_launch, student_money
from classroom.services.course_money import allocation, course_money
from classroom.services.enforcement import run_sweep
from classroom.services.grants import grant_budget
from classroom.services.reports import course_report
from classroom.services.workspaces import request_start
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from tests.conftest import count_rows
from tests.support.budget import ensure_policies, make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.lti import launch, tool_token
from tests.support.statements import statements

S = WorkspaceState
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
PRICES = load_prices().region("us-east-1")
CATALOG = load_catalog()
NOW = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
TERM = {"time_zone": "America/Los_Angeles", "term_start": date(2024, 8, 26), "term_end": date(2024, 12, 13)}


def _spend(session, course_id: int, person_id: int, amount: str) -> None:  # type: ignore[no-untyped-def]
    session.add(
        SpendDaily(
            course_id=course_id,
            person_id=person_id,
            day=date(2024, 10, 1),
            compute=Decimal(amount),
            storage=Decimal(0),
            running_seconds=Decimal(0),
        )
    )


def test_five_dollars_left_and_a_fifty_gb_disk_is_refused_with_the_figures(client, canvas, session, redis):
    launch(client, canvas, canvas.user("student", 9))
    ensure_policies(session, templates={"ml-cpu-student": "approved", "ml-final-project": "approved"})
    final = {LTI + "custom": {"template": "ml-final-project"}, LTI + "resource_link": {"id": "final", "title": "Final"}}
    token = tool_token(launch(client, canvas, canvas.user("student"), **final))
    course = session.scalar(select(Course))
    course.time_zone, course.term_end = "UTC", date.today() + timedelta(days=100)  # ~$13 of 50 GB disk to come
    person = session.scalar(select(Person).where(Person.sub == "student-1"))
    _spend(session, course.id, person.id, "19")  # $5.00 left of $24
    session.commit()
    before = session.scalar(select(func.count(AuditEvent.id)))

    resp = client.get("/app/workspace", query_string={"t": token})

    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "This workspace cannot start now" in html
    assert "its 50 GB disk until the term ends ($13." in html and "You have $5.00 left" in html
    assert "the 14 days the disk is kept after the term ($1.84)" in html  # the course's grace, 50 GB of gp3
    assert "S3" not in html  # the archive's retention is the course's line: the student is not held to it
    assert "3 minutes of running ($0.00)" in html  # a t3.large's three minutes round to under a cent
    assert count_rows(session.get_bind(), "workspaces") == 0 and count_rows(session.get_bind(), "ledger_entries") == 0
    assert session.scalar(select(func.count(AuditEvent.id))) == before
    assert not list(redis.scan_iter("rq:job:provision_workspace-*"))


def test_the_start_page_sets_the_new_disk_aside_before_it_counts_days(client, canvas, session):
    """The one-click start page says what starting commits: the disk's share comes off the remainder first, and
    the days of running are counted on what is left (a newcomer saw "20 days", then $9.38 gone on start)."""
    launch(client, canvas, canvas.user("student", 9))
    ensure_policies(session, templates={"ml-cpu-student": "approved", "ml-final-project": "approved"})
    final = {LTI + "custom": {"template": "ml-final-project"}, LTI + "resource_link": {"id": "final", "title": "Final"}}
    token = tool_token(launch(client, canvas, canvas.user("student"), **final))
    course = session.scalar(select(Course))
    course.time_zone, course.term_end = "UTC", date.today() + timedelta(days=100)
    session.commit()
    html = client.get("/app/workspace", query_string={"t": token}).get_data(as_text=True)
    found = re.search(
        r"you have \$24\.00 left of \$24\.00\.\s+Its 50 GB disk sets aside \$([\d.]+) of the budget until the term "
        r"ends and the 14 days it is kept after, so \$([\d.]+) is left for running it\. This workspace would use "
        r"the rest of the budget in about ([\d.]+) days",
        html,
    )
    assert found, html
    aside, left, days = (Decimal(x) for x in found.groups())
    assert Decimal(13) < aside < Decimal(16) and aside + left == Decimal(24)  # ~100 days of 50 GB, then 14 more
    daily = Decimal(re.search(r"\(\$([\d.]+) a day if left on 24/7\)", html).group(1))  # type: ignore[union-attr]
    assert abs(days - left / daily) <= Decimal("0.1")
    assert count_rows(session.get_bind(), "workspaces") == 0  # the page started nothing


def _stopped(session, course_id: int, person_id: int, link: str) -> Workspace:  # type: ignore[no-untyped-def]
    ws = make_running(session, course_id, person_id, NOW - timedelta(days=1), link=link)
    ws.state = S.STOPPED
    session.add(
        WorkspaceEvent(workspace_id=ws.id, at=NOW - timedelta(hours=20), from_state=S.RUNNING, to_state=S.STOPPED)
    )
    return ws


def test_twenty_concurrent_starts_across_links_by_one_student_with_max_concurrent_1_one_runs(engine, session):
    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=3))  # 20 disks: $4.73
    make_policy(session, course, max_concurrent=1, disk_grace_days=0, archive_retention_days=1)  # + $0.91 after
    emily = make_person(session, course)
    ids = [_stopped(session, course.id, emily.id, f"hw{n}").id for n in range(20)]
    session.commit()
    factory = make_session_factory(engine)

    def start(ws_id: int) -> str:  # what POST /app/workspaces/<id>/start does, in its own transaction
        with factory() as s:
            ws = s.get(Workspace, ws_id)
            c = s.get(Course, course.id)
            assert ws is not None and c is not None
            decision = decide_launch(s, c, emily.id, ws.template_id, catalog=CATALOG, prices=PRICES, starting=True)
            if decision.allowed:
                request_start(s, ws, actor_person_id=emily.id, actor="student")
            s.commit()
            return decision.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(start, ids))

    session.expire_all()
    states = [w.state for w in session.scalars(select(Workspace))]
    assert states.count(S.STARTING) == 1 and states.count(S.STOPPED) == 19
    assert sorted(codes) == ["concurrency"] * 19 + ["ok"]


def test_a_grant_beyond_the_unallocated_remainder_is_refused_and_nothing_is_written(session):
    course = make_course(session, **TERM)
    make_policy(session, course, total_budget=Decimal(1200))
    owner = make_person(session, course, name="Jennifer Martinez", level="owner")
    students = [make_person(session, course, name=f"Student {n}") for n in range(45)]  # 45 x $24 = $1,080
    session.commit()
    assert allocation(session, course.id).unallocated == Decimal(120)
    grant_budget(session, course, students[0].id, Decimal(100), "extra credit project", owner.id)
    session.commit()
    events = session.scalar(select(func.count(AuditEvent.id)))

    with pytest.raises(
        BudgetError, match=r"of \$20.01 does not fit the course total of \$1,200.00: \$20.00 .*Set-up page"
    ):
        grant_budget(session, course, students[1].id, Decimal("20.01"), "another project", owner.id)
    session.rollback()

    assert session.scalar(select(func.count(BudgetGrant.id))) == 1
    assert session.scalar(select(func.count(AuditEvent.id))) == events
    grant_budget(session, course, None, Decimal(20), "course-wide reserve", owner.id)  # exactly what is left
    session.commit()
    assert allocation(session, course.id).unallocated == 0


def test_late_enrollees_go_over_the_allocation_and_the_course_total_stops_workspaces(session):
    course = make_course(session, **TERM)
    make_policy(session, course, total_budget=Decimal(1200))
    make_person(session, course, name="Jennifer Martinez", level="owner")
    people = [make_person(session, course, name=f"Student {n}") for n in range(55)]  # 55 x $24 = $1,320
    for p in people[:50]:
        _spend(session, course.id, p.id, "22")  # $1,100 spent
    running = [make_running(session, course.id, p.id, NOW - timedelta(minutes=5), link="hw") for p in people[50:]]
    session.commit()
    report = course_report(session, course)
    assert report.over_allocation == Decimal(120) and report.available == Decimal(100)
    position = course_money(session, course, NOW, PRICES)
    hours = hours_until_term_end(course.term_end, course.time_zone, NOW)
    reserve = PRICES.storage_hourly(150) * (hours + 14 * 24) + PRICES.archive_hourly(25) * 365 * 24
    assert position.committed == Decimal(1100) + reserve and reserve > 0  # five 30 GB disks, grace, 5 GB archives
    # each late student could still afford a launch, but the course cannot: another $100 - reserve is all left
    for p in people[:50]:
        session.add(SpendDaily(course_id=course.id, person_id=p.id, day=date(2024, 10, 2), compute=Decimal(2),
                               storage=Decimal(0), running_seconds=Decimal(0)))  # fmt: skip
    session.commit()

    result = run_sweep(session, NOW, PRICES)
    session.commit()

    assert sorted(result.stopped) == sorted(w.id for w in running)
    reasons = set(session.scalars(select(WorkspaceEvent.reason).where(WorkspaceEvent.actor == "enforcement")))
    assert reasons == {"course total budget used up"}
    kinds = sorted(session.scalars(select(AlertSent.kind).where(AlertSent.kind.like("course-%"))))
    assert kinds == ["course-100", "course-75", "course-90"]
    notes = session.scalars(select(Notification.subject).where(Notification.subject.like("%course's total%"))).all()
    assert any("used up" in n for n in notes) and len(notes) == 3  # one instructor, three thresholds
    newcomer = people[52]
    refusal = decide_launch(session, course, newcomer.id, "ml-cpu-student", catalog=CATALOG, prices=PRICES, now=NOW)
    assert refusal.code == "course_budget" and "total budget of $1200.00 is committed" in refusal.message
    session.commit()
    again = run_sweep(session, NOW + timedelta(minutes=1), PRICES)
    session.commit()
    assert again.stopped == [] and again.alerts == []  # stopped once, alerted once


def test_the_idle_limit_is_the_smaller_of_the_templates_and_the_courses(session):
    course = make_course(session, **TERM)
    make_policy(session, course, idle_stop_minutes=240, templates={"gpu-ml-workstation": "approved"})
    emily, david = make_person(session, course), make_person(session, course, name="David Kim")
    gpu = make_running(session, course.id, emily.id, NOW - timedelta(minutes=90), instance_type="p3.2xlarge")
    gpu.template_id = "gpu-ml-workstation"  # its own limit is 60 minutes
    cpu = make_running(session, course.id, david.id, NOW - timedelta(minutes=90))
    session.add(BudgetGrant(course_id=course.id, person_id=emily.id, amount=Decimal(1000), reason="gpu", granted_by=1))
    session.commit()

    result = run_sweep(session, NOW, PRICES)
    session.commit()

    assert result.stopped == [gpu.id] and session.get(Workspace, cpu.id).state is S.RUNNING
    reason = session.scalar(select(WorkspaceEvent.reason).where(WorkspaceEvent.workspace_id == gpu.id,
                                                                 WorkspaceEvent.actor == "enforcement"))  # fmt: skip
    assert reason == "idle for 60 minutes"
    assert session.scalar(select(func.count(LedgerEntry.id))) == 2  # both metered on the way
    assert session.get(CoursePolicy, course.id).idle_stop_minutes == 240  # the course's limit is unchanged


def test_the_report_shows_each_students_left_as_their_budget_page_does(engine, session):
    """Staff see what a student can still spend: the cap less spend and the disks' reserve, the launch check's
    figure (a newcomer saw "Spent $0.00" for a student the check held $9.38 back from)."""
    course = make_course(session, **TERM)
    make_policy(session, course)
    emily, david = make_person(session, course), make_person(session, course, name="David Kim")
    make_running(session, course.id, emily.id, NOW - timedelta(hours=1))
    _spend(session, course.id, emily.id, "3.50")
    session.add(SpendDaily(course_id=course.id, person_id=emily.id, day=date(2024, 10, 2), compute=Decimal(0),
                           storage=Decimal(0), running_seconds=Decimal(0), transfer=Decimal(1)))  # fmt: skip
    session.commit()
    session.expire_all()
    course = session.get(Course, course.id)
    with statements(engine) as seen:
        report = course_report(session, course, prices=PRICES, now=NOW)
    assert report is not None and len(seen) == 6  # the report's five and the course position, whatever the size
    rows = {r.person_id: r for r in report.rows}
    money = student_money(session, course, emily.id, NOW, PRICES)
    assert money is not None and money.reserved.quantize(Decimal("0.0001")) == Decimal("4.1490")  # 30 GB, as above
    assert money.spent == Decimal("4.50")  # data sent out counts against the cap, as in the sweep's spend_totals
    assert rows[emily.id].reserved == money.reserved and rows[emily.id].left == money.remaining
    assert rows[emily.id].left.quantize(Decimal("0.01")) == Decimal("15.35")  # $24 - $4.50 - $4.149
    assert rows[david.id].reserved == 0 and rows[david.id].left == Decimal(24)  # no disk, nothing held back
    position = course_money(session, course, NOW, PRICES)  # what a launch is judged against
    assert position is not None and report.committed == position.committed
    assert (
        report.available == position.total - position.committed == report.total_budget - report.spent - report.reserved
    )
    assert report.reserved > money.reserved  # Emily's disk, and its archive's retention, which is the course's


def test_the_pages_say_the_idle_limit_the_sweep_applies(client, canvas, session):
    """The start page and the budget page name the smaller of the course's and the template's limits, as the
    sweep applies it: the course's 90 minutes under the CPU template's 240, then the template's 4 hours."""
    token = tool_token(launch(client, canvas, canvas.user("student")))
    ensure_policies(session)
    for course_minutes, said in ((90, "after 90 minutes"), (300, "after 4 hours")):
        session.execute(update(CoursePolicy).values(idle_stop_minutes=course_minutes))
        session.commit()
        start = client.get("/app/workspace", query_string={"t": token}).get_data(as_text=True)
        assert f"idle workspaces hibernate or stop by themselves {said}." in start
        budget = client.get("/app/budget", query_string={"t": token}).get_data(as_text=True)
        assert f"idle workspaces hibernate or stop by themselves {said} without activity" in budget


def test_the_launch_decision_takes_six_statements_and_counts_grants_spend_disks_and_running(engine, session):
    course = make_course(session, **TERM)
    make_policy(session, course)
    emily = make_person(session, course)
    _spend(session, course.id, emily.id, "3.50")
    session.add(SpendDaily(course_id=course.id, person_id=emily.id, day=date(2024, 11, 5), compute=Decimal("1.25"),
                           storage=Decimal("0.25"), running_seconds=Decimal(0)))  # fmt: skip
    session.add(BudgetGrant(course_id=course.id, person_id=emily.id, amount=Decimal(6), reason="ext", granted_by=1))
    make_running(session, course.id, emily.id, NOW - timedelta(hours=1))
    session.commit()
    person_id = emily.id
    session.expire_all()
    course = session.get(Course, course.id)  # as the request's context has it
    assert course is not None and course.time_zone
    with statements(engine) as seen:
        decision = decide_launch(session, course, person_id, "ml-cpu-student", catalog=CATALOG, prices=PRICES, now=NOW)
    # the lock, the policy (once), the student's money, template requests, a restore, the course's position
    assert len(seen) == 6 and sum("course_policies.auto_close" in s for s in seen) == 1
    assert all(s.lstrip().upper().startswith("SELECT") for s in seen)  # the refusal wrote nothing
    assert decision.code == "concurrency"  # the running one counts against max_concurrent 1
    money = student_money(session, course, person_id, NOW, PRICES)
    assert money is not None
    assert (money.cap, money.spent, money.spent_today, money.running) == (Decimal(30), Decimal(5), Decimal("1.50"), 1)
    # 30 GB of gp3 at $0.08 per GB-month (730 h) for the 926 hours from NOW to the end of Dec 13 in Los Angeles
    # ($3.0444), then the 14 days of grace ($1.1047); the 5 GB archive in S3 for 365 days ($1.38) is the course's
    assert money.reserved.quantize(Decimal("0.0001")) == Decimal("4.1490")
