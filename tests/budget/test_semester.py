"""A simulated semester of CS 229: 50 students over 15 weeks on an accelerated clock against simulated AWS.

Everything runs through the code the tool runs: the launch policy the workspace page asks, the services, the
jobs (in-process, after each commit), reconcile against moto, agents' heartbeats with their own tokens, the
minute's sweep, term end and the cost report. Five students join late (week 6) through the launch service; the
instructor grants David extra budget out of what is left unallocated (a grant above it is refused); the course
position the product computes is checked against the course total at every week boundary. The clock
(tests/support/semester.py) jumps between events and sweeps every simulated minute as a running student
approaches a cap. Then three short tests, one per fault the semester brought to light.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from classroom.db import make_engine, make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import (
    AlertSent,
    BudgetGrant,
    Course,
    CourseCharge,
    CoursePolicy,
    Enrollment,
    LedgerEntry,
    SpendDaily,
    Workspace,
    WorkspaceEvent,
    WorkspaceFolder,
)
from classroom.roles import StaffLevel
from classroom.services.budgets import BudgetError
from classroom.services.course_money import allocation, course_positions
from classroom.services.grants import grant_budget
from classroom.services.template_requests import ask_for_template, decide_request
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.term_end import run_term_end
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person
from tests.support.semester import Semester, Student, Visit

S = WorkspaceState
TZ = ZoneInfo("America/Los_Angeles")
TERM_START, TERM_END = date(2024, 8, 26), date(2024, 12, 13)
PRICES = load_prices().region("us-east-1")
LINK, FINAL = "hw1", "final-project"
WEEKLY = [f"hw{n}" for n in range(1, 11)]  # the seed's ten weekly assignment links, one LTI resource link each
CPU, LARGE, GPU = "ml-cpu-student", "ml-final-project", "gpu-ml-workstation"
MINUTE_OF_T3_MEDIUM = (PRICES.running_hourly("t3.medium") + PRICES.storage_hourly(30)) * 60 / 3600  # as planned


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A course-time instant, in UTC."""
    return datetime.combine(day, time(hour, minute), TZ).astimezone(UTC)


def week(n: int, weekday: int) -> date:
    """Day `weekday` (0 = Monday) of term week `n` (0-based)."""
    return TERM_START + timedelta(weeks=n, days=weekday)


def assignment(n: int) -> str:
    """The link a student opens in term week `n`: that week's assignment, then the final project."""
    return WEEKLY[n] if n < len(WEEKLY) else FINAL


def work(student: Student, start: datetime, end: datetime, *, link: str = LINK, template: str = CPU) -> Visit:
    """A visit that ends with the Stop button."""
    return Visit(student, link, template, start, end, end)


def regular_weeks(rng: random.Random, s: Student, weeks: range, *, link: str | None = None, template: str = CPU):  # type: ignore[no-untyped-def]
    """Sunday afternoons until 18:00 before most Monday deadlines, each on that week's assignment link (ten
    assignments, then the final project every week); in the project weeks some Wednesday evenings too."""
    for n in weeks:
        week_link = link or assignment(n)
        if week(n, 6) <= TERM_END and (n >= 11 or rng.random() < 0.75):
            yield work(s, local(week(n, 6), 14 + rng.choice((0, 1, 2))), local(week(n, 6), 18), link=week_link,
                       template=template)  # fmt: skip
        if n >= 11 and rng.random() < 0.25:
            yield work(s, local(week(n, 2), 19 + rng.choice((0, 1))), local(week(n, 2), 22), link=week_link,
                       template=template)  # fmt: skip


@contextmanager
def _cs229(  # type: ignore[no-untyped-def]  # noqa: PLR0913
    session: Session,
    database_url: str,
    settings,
    backend,
    redis,
    names: list[str],
    start: datetime,
    total: Decimal = Decimal(1200),
):
    engine = make_engine(database_url, pool_size=10, pool_pre_ping=False)  # the students' and the worker's
    sessions = make_session_factory(engine)
    use_context(JobContext(settings, sessions, redis, backend))
    try:
        with time_machine.travel(start, tick=False) as clock:
            course = make_course(session, time_zone=str(TZ), term_start=TERM_START, term_end=TERM_END)
            make_policy(session, course, total_budget=total)
            instructor = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
            students = {n: Student(n, make_person(session, course, name=n).id) for n in names}
            session.commit()
            sim = Semester(session, sessions, course, backend, PRICES, clock)
            try:
                yield sim, students, instructor.id
            finally:
                sim.shutdown()
    finally:
        use_context(None)
        engine.dispose()


@pytest.fixture
def cs229(session, database_url, settings, backend, redis):  # type: ignore[no-untyped-def]
    """`with cs229(names, start[, total]) as (sim, students, instructor_id)`: CS 229 set up as in the seed (a
    course total of `total`), with these students and their instructor, jobs run in-process, the clock frozen at
    `start` and moved by `sim`."""
    return partial(_cs229, session, database_url, settings, backend, redis)


CLASS = ["Emily Chen", "David Kim", "Sophie Martinez"] + [f"Student {n:02d}" for n in range(4, 51)]
LATE = [f"Late Student {n}" for n in range(1, 6)]  # join from week 6 by launching a link, as students do
TOTAL = Decimal(1400)  # University IT's allocation: 50 x $24 planned, $200 kept for late enrollees and grants
GRANT = Decimal(30)  # to David for his final project, out of what the late enrollees leave unallocated


def position_and_spend(db: Session, course_id: int, now: datetime) -> tuple[Decimal, Decimal, Decimal]:
    """(course total, committed, spent) now: the product's course position and what the ledger holds so far (the
    students' spend and the lines booked to the course)."""
    (position,) = course_positions(db, now, PRICES, course_id)
    students = SpendDaily.compute + SpendDaily.storage + SpendDaily.transfer
    spent = db.scalar(select(func.coalesce(func.sum(students), 0)).where(SpendDaily.course_id == course_id))
    lines = select(func.coalesce(func.sum(CourseCharge.amount), 0)).where(
        CourseCharge.course_id == course_id, CourseCharge.person_id.is_(None)
    )
    return position.total, position.committed, Decimal(spent) + Decimal(db.scalar(lines))


def plan_the_term(sim: Semester, students: dict[str, Student], instructor_id: int) -> dict[str, object]:
    """Schedule everyone's weeks and the special cases; returns where the special cases' outcomes land."""
    rng = random.Random(229)
    emily, david, sophie = students["Emily Chen"], students["David Kim"], students["Sophie Martinez"]
    seen: dict[str, object] = {"forgot": local(week(2, 1), 21)}
    for s in students.values():
        for v in regular_weeks(rng, s, range(2) if s is sophie else range(11) if s is david else range(15)):
            sim.visit(v)
    for v in regular_weeks(rng, david, range(11, 15), link=FINAL, template=LARGE):
        sim.visit(v)
    # Sophie works on Tuesday evening, closes her laptop at 21:00 and forgets the workspace; from the next
    # Monday she trains day and night; from week 7 she tries again every Sunday.
    sim.visit(Visit(sophie, assignment(2), CPU, local(week(2, 1), 19), seen["forgot"], None))  # type: ignore[arg-type]
    sim.visit(Visit(sophie, assignment(3), CPU, local(week(3, 0), 10), local(TERM_END, 23), None))
    for n in range(7, 14):
        sim.visit(work(sophie, local(week(n, 6), 14), local(week(n, 6), 16), link=assignment(n)))
    for name in LATE:  # join on Monday of week 6, then work like everyone else (the Student exists before its id)
        students[name] = Student(name, 0)
        sim.at(local(week(6, 0), 9), lambda db, s=students[name]: sim.join(db, s, assignment(6)))  # type: ignore[misc]
        for v in regular_weeks(rng, students[name], range(6, 15)):
            sim.visit(v)
    seen["positions"] = positions = []
    for n in range(1, 16):  # the course position at every week boundary (Monday 00:00), right after a sweep
        sim.at(local(week(n, 0), 0), lambda db: positions.append(position_and_spend(db, sim.course_id, sim.now)))
    late = students["Student 50"]
    sim.visit(Visit(late, FINAL, CPU, local(TERM_END, 22), local(TERM_END, 23, 59), None))  # works until midnight
    sim.at(local(week(1, 6), 13, 55), lambda db: seen.update(gpu=sim.open(db, emily, "gpu-fun", GPU)))

    def final_project_request(db: Session) -> None:
        course = db.get(Course, sim.course_id)
        seen["before"] = sim.decide(db, david, LARGE).code
        request = ask_for_template(db, course, david.person_id, LARGE, "Training a CNN for my final project")
        decide_request(db, course, request.id, instructor_id, approve=True, note="Stop it when you are done.")
        db.commit()
        # Then a grant for it, through the grant service: one that does not fit what is unallocated is refused
        # and writes nothing; one that fits is booked.
        left = allocation(db, sim.course_id).unallocated  # type: ignore[union-attr]
        try:
            grant_budget(db, course, david.person_id, left + 1, "Final project training", instructor_id)
            seen["too_much"] = "granted"
        except BudgetError as exc:
            db.rollback()
            seen["too_much"] = str(exc)
        seen["left"] = left
        grant_budget(db, course, david.person_id, GRANT, "Final project training", instructor_id)
        db.commit()
        seen["after"] = sim.decide(db, david, LARGE).code

    def term_end(db: Session) -> None:
        result = run_term_end(db, sim.now)
        db.commit()
        sim.run_jobs(result.jobs)
        seen["closed"] = result.closed

    sim.at(local(week(11, 0), 9), final_project_request)
    sim.at(local(TERM_END, 23), term_end)  # the hour's warning
    sim.at(local(TERM_END + timedelta(days=1), 0), term_end)
    return seen


@pytest.mark.slow
def test_a_semester_of_cs229_stays_within_budget_and_the_ledger_adds_up(cs229, session, backend):  # type: ignore[no-untyped-def]
    with cs229(CLASS, local(TERM_START, 8), TOTAL) as (sim, students, instructor_id):
        seen = plan_the_term(sim, students, instructor_id)
        sim.run_until(local(TERM_END + timedelta(days=1), 0, 5))
    emily, david, sophie = students["Emily Chen"], students["David Kim"], students["Sophie Martinez"]

    # Emily's GPU try was refused as blocked, and nothing was created, here or in AWS.
    assert seen["gpu"] is None and [(t, c) for _, t, c in emily.refusals] == [(GPU, "blocked")]
    assert session.scalar(select(func.count()).where(Workspace.template_id == GPU)) == 0
    gpu = backend.ec2.describe_instances(Filters=[{"Name": "instance-type", "Values": ["p3.2xlarge"]}])
    assert gpu["Reservations"] == []
    # David asked for the final-project workspace, was approved, and used it; nobody else was refused.
    assert (seen["before"], seen["after"]) == ("needs_request", "ok")
    finals = session.scalars(select(Workspace).where(Workspace.template_id == LARGE)).all()
    assert [w.person_id for w in finals] == [david.person_id] and finals[0].instance_id
    assert [s.name for s in students.values() if s.refusals] == ["Emily Chen", "Sophie Martinez"]
    # The late enrollees joined through the launch and worked; the grant that did not fit what the late enrollees
    # left unallocated was refused and wrote nothing, the one that fit was booked.
    joined = session.scalars(select(Enrollment).where(Enrollment.person_id.in_([students[n].person_id for n in LATE])))
    assert sorted((e.level, e.created_at >= local(week(6, 0), 9)) for e in joined) == [(StaffLevel.STUDENT, True)] * 5
    assert seen["left"] == TOTAL - 24 * (len(CLASS) + len(LATE)) and "does not fit" in str(seen["too_much"])
    grants = session.execute(select(BudgetGrant.person_id, BudgetGrant.amount)).all()
    assert grants == [(david.person_id, GRANT)]
    # Ten assignment links, one workspace per student (and template): nobody is locked out from HW4 on by the
    # storage of idle per-link disks; every link a student opened is a folder in that one workspace.
    per_student = session.execute(
        select(Workspace.person_id, Workspace.template_id, func.count()).group_by(Workspace.person_id,
                                                                                  Workspace.template_id)
    ).all()  # fmt: skip
    assert len(per_student) == len(CLASS) + len(LATE) + 1 and {n for _, _, n in per_student} == {1}
    opened = session.scalars(select(func.count(func.distinct(WorkspaceFolder.link_key)))).one()
    assert opened == len(WEEKLY) + 1  # every weekly link and the final project were opened

    check_sophie(sim, session, sophie, seen["forgot"])  # type: ignore[arg-type]
    # Term end stopped the late worker; nothing runs any more; the course is closed.
    assert seen["closed"] == [sim.course_id]
    assert session.scalar(select(func.count()).where(Workspace.state.in_((S.RUNNING, S.STARTING, S.STOPPING)))) == 0
    late = session.scalar(select(Workspace.id).where(Workspace.person_id == students["Student 50"].person_id))
    stopped = select(WorkspaceEvent.at).where(  # the sweep's always-on "term over" rule, within a minute
        WorkspaceEvent.workspace_id == late,
        WorkspaceEvent.actor.in_(("term-end", "enforcement")),
        WorkspaceEvent.reason.in_(("term ended", "the term is over")),
    )
    at = session.scalar(stopped)
    assert at is not None and timedelta(0) <= at - local(TERM_END + timedelta(days=1), 0) <= timedelta(minutes=1)
    check_the_money(sim, session)
    # At every week boundary the course position (spent + reserves + shared storage + archives, as the product
    # computes it for the launch check and the sweep) was within the course total, and at least what was spent.
    weekly = seen["positions"]
    assert len(weekly) == 15  # type: ignore[arg-type]
    for total, committed, spent in weekly:  # type: ignore[attr-defined]
        assert total == TOTAL and spent <= committed <= total, (spent, committed, total)


def check_sophie(sim: Semester, session: Session, sophie: Student, forgot: datetime) -> None:
    """Idle stop at the limit, then the budget stop within the bound; every later start refused."""
    (ws,) = session.scalars(select(Workspace).where(Workspace.person_id == sophie.person_id)).all()
    stops = [(at, reason) for at, ws_id, reason in sim.record.stops if ws_id == ws.id]
    assert stops[0] == (forgot + timedelta(minutes=240), "idle for 240 minutes")
    then = select(WorkspaceEvent.to_state).where(WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.at == stops[0][0])
    assert session.scalars(then.order_by(WorkspaceEvent.id)).all() == [S.STOPPING, S.HIBERNATED]
    capped_at, reason = stops[1]
    assert reason == "budget used up" and len(stops) == 2 and capped_at < local(week(7, 0), 0)
    over_while_running, minute = sim.record.worst[sophie.person_id]
    assert minute == MINUTE_OF_T3_MEDIUM and over_while_running <= minute
    spent = session.scalar(
        select(func.sum(SpendDaily.compute + SpendDaily.storage)).where(SpendDaily.person_id == sophie.person_id)
    )
    # By term end she has spent her cap but what her disk's grace period will still cost her (held back for it)
    grace = PRICES.storage_hourly(30) * 24 * session.get(CoursePolicy, ws.course_id).disk_grace_days
    assert spent > Decimal(24) - grace - Decimal("0.10"), "stopped well before her budget was used"  # see the end
    assert len(sophie.refusals) == 7 and {c for _, _, c in sophie.refusals} == {"over_budget"}
    alerts = session.scalars(select(AlertSent.kind).where(AlertSent.person_id == sophie.person_id)).all()
    assert sorted(k for k in alerts if k.startswith("budget-")) == ["budget-100", "budget-50", "budget-75", "budget-90"]
    assert "anomaly-over-cap" in alerts or "anomaly-median" in alerts


def check_the_money(sim: Semester, session: Session) -> None:
    """Bound, totals, ledger = daily totals = the cost report, and a ledger without gaps."""
    for person, (over, minute) in sim.record.worst.items():
        assert over <= minute, f"person {person} passed the cap by {over} while running (bound {minute})"
    gaps = session.execute(
        text("""SELECT count(*) FROM (SELECT period_start, lag(period_end) OVER (PARTITION BY workspace_id
                ORDER BY period_start) AS prev FROM ledger_entries) e WHERE prev <> period_start""")
    ).scalar_one()
    assert gaps == 0 and session.scalar(select(func.count()).where(Workspace.metered_until != sim.now)) == 0
    spent = LedgerEntry.compute + LedgerEntry.storage
    ledger = dict(session.execute(select(LedgerEntry.person_id, func.sum(spent)).group_by(LedgerEntry.person_id)).all())
    daily = dict(
        session.execute(
            select(SpendDaily.person_id, func.sum(SpendDaily.compute + SpendDaily.storage)).group_by(
                SpendDaily.person_id
            )
        ).all()
    )
    assert ledger == daily and len(ledger) == len(CLASS) + len(LATE)
    policy = session.get(CoursePolicy, sim.course_id)
    grants = dict(session.execute(select(BudgetGrant.person_id, func.sum(BudgetGrant.amount)).group_by(
        BudgetGrant.person_id)).all())  # fmt: skip
    caps = {p: policy.budget_per_student + grants.get(p, 0) for p in ledger}
    check_report(session, sim.course_id, ledger, caps)
    assert sum(ledger.values()) <= policy.total_budget
    over = {p: s - caps[p] for p, s in ledger.items() if s > caps[p] + sim.record.worst[p][1]}
    assert over == {}, f"spend above the cap by more than a minute of running cost at term end: {over}"


def check_report(session: Session, course_id: int, ledger: dict[int, Decimal], caps: dict[int, Decimal]) -> None:
    """The instructor's cost report shows the ledger's figures, per student, per week and in total, and the
    allocation the roster and the grants make of the course total."""
    from classroom.services.reports import course_report

    report = course_report(session, session.get(Course, course_id))
    assert report is not None
    assert {r.person_id: r.spent for r in report.rows if r.has_spend} == ledger
    assert {r.person_id: r.cap for r in report.rows} == caps
    transfer = session.scalar(select(func.coalesce(func.sum(SpendDaily.transfer), 0)))
    lines = session.execute(select(CourseCharge.kind, func.sum(CourseCharge.amount)).where(
        CourseCharge.person_id.is_(None)).group_by(CourseCharge.kind).order_by(CourseCharge.kind)).all()  # fmt: skip
    assert [(line.kind, line.amount) for line in report.course_lines] == [tuple(r) for r in lines]
    assert report.students_spent == sum(ledger.values()) + transfer == sum(w.spent for w in report.weeks)
    assert report.spent == report.students_spent + sum((a for _, a in lines), Decimal(0))
    granted = sum(caps.values()) - 24 * len(caps)
    assert (report.total_budget, report.student_grants, report.course_grants) == (TOTAL, granted, 0)
    assert report.allocated == sum(caps.values()) and report.unallocated == TOTAL - sum(caps.values())
    assert report.over_allocation == 0 and report.available == TOTAL - report.spent
    seconds = session.scalar(select(func.sum(LedgerEntry.running_seconds)))
    assert report.running_seconds == seconds


# --- what the semester brought to light, one short test each ---------------------------------------------


def test_a_restarted_workspace_is_not_idle_stopped_before_its_agent_reports(cs229, session):  # type: ignore[no-untyped-def]
    tuesday, thursday = week(1, 1), week(1, 3)
    with cs229(["Emily Chen"], local(tuesday, 18)) as (sim, students, _):
        emily = students["Emily Chen"]
        sim.visit(work(emily, local(tuesday, 19), local(tuesday, 21)))
        sim.run_until(local(tuesday, 22))  # first click, two hours of work, Stop: hibernated
        sim.now = local(thursday, 19)
        sim.clock.move_to(sim.now)
        sim.run_all([lambda db: sim.open(db, emily, LINK, CPU)])  # two days later: Start
        reconcile_workspaces()  # AWS reports it running before the agent has booted and reported in
        sim.sweep()
        (ws,) = session.scalars(select(Workspace)).all()
        assert sim.record.stops == [] and ws.state is S.RUNNING  # was: hibernated, "idle for 240 minutes"


def test_starting_a_stopped_workspace_respects_the_concurrency_limit(cs229, session):  # type: ignore[no-untyped-def]
    sunday = week(1, 6)
    with cs229(["David Kim"], local(sunday, 13)) as (sim, students, _):
        david = students["David Kim"]
        sim.visit(work(david, local(sunday, 14), local(sunday, 16)))  # his course workspace, then hibernated
        sim.visit(Visit(david, "notes", "ubuntu-basic", local(sunday, 17), local(sunday, 18), None))
        sim.run_until(local(sunday, 17, 30))  # the second one runs; max_concurrent is 1
        assert sim.decide(session, david, CPU, starting=True).code == "concurrency"


def test_a_student_stopped_at_the_cap_stays_within_the_bound_until_term_end(cs229, session):  # type: ignore[no-untyped-def]
    monday = date(2024, 12, 2)
    with cs229(["Sophie Martinez"], local(monday, 8)) as (sim, students, _):
        sophie = students["Sophie Martinez"]
        earlier = SpendDaily(course_id=sim.course_id, person_id=sophie.person_id, day=monday - timedelta(days=1),
                             compute=Decimal(20), storage=Decimal(0), running_seconds=Decimal(0))  # fmt: skip
        session.add(earlier)
        session.commit()
        sim.visit(Visit(sophie, LINK, CPU, local(monday, 9), local(TERM_END, 23), None))  # runs it day and night
        sim.run_until(local(TERM_END + timedelta(days=1), 0, 5))
        assert [reason for _, _, reason in sim.record.stops] == ["budget used up"]
        spent = session.scalar(select(func.sum(SpendDaily.compute + SpendDaily.storage)))
        assert spent <= Decimal(24) + MINUTE_OF_T3_MEDIUM, f"{spent - 24} above the cap at term end"
