"""Budget figures: report rows and weeks by hand, the ledger by real metering, the student page, SQL count, SVG."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text

from classroom.budget.charts import Bar, daily_spend_chart, describe, nice_ceiling
from classroom.budget.figures import is_anomaly, percent_of, term_progress, week_of_term
from classroom.models import BudgetGrant, Enrollment, EnrollmentStatus, SpendDaily, Workspace, WorkspaceEvent
from classroom.roles import StaffLevel
from classroom.services.metering import accrue
from classroom.services.reports import course_report, student_budget
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.statements import statements

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
CATALOG = load_catalog()
D, CENT = Decimal, Decimal("0.01")


def _day(session, course, person, day: date, compute: str, storage: str, seconds: int) -> None:  # type: ignore[no-untyped-def]
    figures = {"compute": D(compute), "storage": D(storage), "running_seconds": D(seconds)}
    session.add(SpendDaily(course_id=course.id, person_id=person.id, day=day, **figures))
    session.flush()


def _event(session, ws, at, to, actor, reason) -> None:  # type: ignore[no-untyped-def]
    fields = {"from_state": S.RUNNING, "to_state": to, "actor": actor, "reason": reason}
    session.add(WorkspaceEvent(workspace_id=ws.id, at=at, **fields))


def _cs229(session):  # type: ignore[no-untyped-def]
    term = {"term_start": date(2024, 8, 26), "term_end": date(2024, 12, 13)}
    course = make_course(session, time_zone="America/Los_Angeles", **term)
    make_policy(session, course)
    return course


def _grant(course, person, amount: str, kind: str = "grant") -> BudgetGrant:  # type: ignore[no-untyped-def]
    who = {"course_id": course.id, "person_id": person and person.id, "granted_by": 1}
    return BudgetGrant(amount=D(amount), kind=kind, reason="r", **who)


def _seeded(session):  # type: ignore[no-untyped-def]
    """CS 229 with hand-chosen spend in weeks 2024-W41 and W42, grants, idle stops, and a second course."""
    course, other = _cs229(session), _cs229(session)
    emily, david, sophie, ana = (
        make_person(session, course, name=n) for n in ("Emily Chen", "David Kim", "Sophie Martinez", "Ana Near")
    )
    make_person(session, course, name="Zed Zero")
    gone = make_person(session, course, name="Gone Student")  # dropped, but their spend stays in the totals
    session.scalar(select(Enrollment).where(Enrollment.person_id == gone.id)).status = EnrollmentStatus.DROPPED
    _day(session, course, gone, date(2024, 10, 10), "2.00", "0.25", 3600)
    make_person(session, course, name="Alex Thompson", level=StaffLevel.HEAD_TA)  # staff are not report rows
    _day(session, course, emily, date(2024, 10, 14), "20.00", "4.80", 36000)  # Monday of 2024-W42
    _day(session, course, david, date(2024, 10, 8), "12.00", "0.50", 18000)  # 2024-W41
    _day(session, course, david, date(2024, 10, 15), "5.00", "1.00", 7200)
    _day(session, course, sophie, date(2024, 10, 9), "8.00", "0.50", 10800)
    _day(session, course, ana, date(2024, 10, 16), "20.00", "1.60", 36000)
    _day(session, other, emily, date(2024, 10, 14), "99.00", "0", 3600)  # another course's spend never leaks in
    session.add_all([_grant(course, david, "5"), _grant(course, None, "44", "rollover"), _grant(other, emily, "7")])
    ws = make_running(session, course.id, emily.id, datetime(2024, 10, 14, 15, tzinfo=UTC))
    at = datetime(2024, 10, 14, 20, tzinfo=UTC)
    stops = [(0, "enforcement", "idle for 240 minutes"), (3, "enforcement", "idle for 240 minutes")]
    stops += [(5, "enforcement", "budget used up"), (6, "student", "idle, so I stopped it")]  # neither counts
    for hours, actor, reason in stops:
        _event(session, ws, at + timedelta(hours=hours), S.STOPPING, actor, reason)
    session.commit()
    return course


def test_report_rows_match_hand_computed_figures(session):
    report = course_report(session, _seeded(session))
    rows = {r.name: r for r in report.rows}
    assert sorted(rows) == ["Ana Near", "David Kim", "Emily Chen", "Gone Student", "Sophie Martinez", "Zed Zero"]
    assert [r.name for r in report.rows if not r.active] == ["Gone Student"] and rows["Gone Student"].spent == D("2.25")
    e, d, s, a, z = (rows[n] for n in ("Emily Chen", "David Kim", "Sophie Martinez", "Ana Near", "Zed Zero"))
    assert (e.spent, e.cap, e.percent, e.running_hours, e.idle_stops) == (D("24.80"), D(24), 103, D(10), 2)
    assert e.effective_hourly == D("2.48") and e.over_cap and not e.near_cap
    assert (d.spent, d.cap, d.percent, d.running_hours, d.idle_stops) == (D("18.50"), D(29), 64, D(7), 0)
    assert d.effective_hourly.quantize(D("0.01")) == D("2.64") and not (d.over_cap or d.near_cap)
    assert (s.spent, s.percent, s.running_hours) == (D("8.50"), 35, D(3))
    assert (a.spent, a.percent) == (D("21.60"), 90) and a.near_cap and not a.over_cap  # 90 % exactly is near
    assert (z.spent, z.percent, z.effective_hourly, z.has_spend) == (D(0), 0, None, False)
    assert report.median == D("18.50") and not any(r.anomaly for r in report.rows)  # median of the five spenders
    assert [r.name for r in report.anomalies] == ["Emily Chen"]  # over cap


def test_report_total_grants_and_weeks_match_hand_computed_figures(session):
    report = course_report(session, _seeded(session))
    assert report.spent == D("75.65") and report.percent == 6
    assert (report.total_budget, report.course_grants, report.student_grants) == (D(1200), D(44), D(5))
    assert report.budget_with_grants == D(1249) and report.available == D("1124.35")  # grants never add to the total
    assert report.running_seconds == D(111600)
    weeks = [(w.label, w.start, w.term_week, w.spent, w.running_hours, w.students) for w in report.weeks]
    assert weeks == [
        ("2024-W41", date(2024, 10, 7), 7, D("23.25"), D(9), 3),
        ("2024-W42", date(2024, 10, 14), 8, D("52.40"), D(22), 3),
    ]
    assert sum(w.spent for w in report.weeks) == report.spent


def test_anomalies_are_several_times_the_median_of_students_with_spend(session):
    course = _cs229(session)
    for n, amount in enumerate(["1.00", "1.10", "1.20", "3.60", "5.00"]):
        _day(session, course, make_person(session, course, name=f"Student {n}"), date(2024, 10, 1), amount, "0", 60)
    make_person(session, course, name="Never Used")  # no spend: not part of the median
    session.commit()
    report = course_report(session, course)
    assert report.median == D("1.20")
    assert [r.name for r in report.anomalies] == ["Student 4"]  # 5.00 > 3 × 1.20; 3.60 is exactly 3 × (not above)
    assert is_anomaly(D("3.61"), D("1.20")) and not is_anomaly(D("3.60"), D("1.20")) and not is_anomaly(D(5), D(0))
    assert not is_anomaly(D("0.99"), D("0.10"))  # under a dollar is never an anomaly


def _history(session, course, person, link, steps):  # type: ignore[no-untyped-def]
    """A workspace whose recorded state history is `steps` [(time, state)], metered from the first step."""
    itype, gb = ("t3.large", 50) if link == "final" else ("t3.medium", 30)
    ws = Workspace(course_id=course.id, person_id=person.id, link_key=link, template_id="ml-cpu-student")
    ws.instance_type, ws.volume_gb, ws.region, ws.state = itype, gb, "us-east-1", steps[-1][1]
    ws.created_at, ws.metered_until, ws.state_changed_at = steps[0][0], steps[0][0], steps[-1][0]
    session.add(ws)
    session.flush()
    for (at, state), previous in zip(steps, [None] + [st for _, st in steps], strict=False):
        session.add(WorkspaceEvent(workspace_id=ws.id, at=at, from_state=previous, to_state=state))
    session.flush()


SWEEP = timedelta(hours=4, minutes=53)


def _metered(session):  # type: ignore[no-untyped-def]
    """Three students' workspaces with recorded histories, metered by 39 real sweeps over eight days."""
    course = _cs229(session)
    emily, david, sophie = (make_person(session, course, name=n) for n in ("Emily Chen", "David Kim", "Sophie M"))
    t = datetime(2024, 10, 12, 5, 30, tzinfo=UTC)  # Friday evening in Los Angeles, week 2024-W41
    histories = {  # hours from t -> state
        (emily, "hw3"): [(0, S.REQUESTED), (0.02, S.RUNNING), (27, S.STOPPED)],
        (emily, "final"): [(30, S.PROVISIONING), (31, S.RUNNING), (33.5, S.HIBERNATED), (60, S.RUNNING)],
        (david, "hw3"): [(5, S.RUNNING), (100, S.STOPPING), (101, S.STOPPED)],
        (sophie, "hw3"): [(-48, S.RUNNING), (3, S.STOPPED)],
    }
    for (person, link), steps in histories.items():
        _history(session, course, person, link, [(t + timedelta(hours=x), state) for x, state in steps])
    session.commit()
    for step in range(1, 40):  # odd intervals, across local midnights and the week boundary
        accrue(session, t + step * SWEEP, PRICES)
        session.commit()
    return course, emily, t + 39 * SWEEP


LEDGER_BY_PERSON = text(
    "SELECT person_id, SUM(compute + storage), SUM(running_seconds) FROM ledger_entries WHERE course_id = :c GROUP BY 1"
)
WEEKLY_LEDGER = text(
    "SELECT date_trunc('week', (period_end AT TIME ZONE 'America/Los_Angeles')::date::timestamp)::date, "
    "SUM(compute + storage) FROM ledger_entries WHERE course_id = :c GROUP BY 1"
)


def test_report_totals_equal_the_ledger_built_by_real_metering(session):
    course, emily, now = _metered(session)
    report = course_report(session, course)
    sums = session.execute(LEDGER_BY_PERSON, {"c": course.id}).all()
    ledger, seconds = {p: spent for p, spent, _ in sums}, sum(secs for _, _, secs in sums)
    assert len(ledger) == 3 and all(v > 0 for v in ledger.values())
    for row in report.rows:
        assert row.spent == ledger[row.person_id]  # exactly, so also to the cent
        assert row.spent.quantize(CENT) == ledger[row.person_id].quantize(CENT)
    assert report.spent == sum(ledger.values()) and report.running_seconds == seconds
    by_week = dict(session.execute(WEEKLY_LEDGER, {"c": course.id}).all())
    assert len(by_week) >= 2 and {w.start: w.spent for w in report.weeks} == by_week
    mine = student_budget(session, course, emily.id, now, prices=PRICES, catalog=CATALOG)
    assert mine.spent == ledger[emily.id] and mine.running_seconds > 0


def test_student_budget_burn_days_left_running_and_template_rate(session):
    course = _cs229(session)
    emily, david = make_person(session, course, name="Emily Chen"), make_person(session, course, name="David Kim")
    now = datetime(2024, 10, 15, 20, 0, tzinfo=UTC)  # 13:00 on Oct 15 in Los Angeles
    today = date(2024, 10, 15)
    # today and 3 days ago count in the burn; 10 days ago only in the chart; 40 days ago only in the total
    for ago, compute, storage, seconds in [(0, "0.60", "0.10", 3600), (3, "0.60", "0.10", 3600), (10, "4", "1", 36000)]:
        _day(session, course, emily, today - timedelta(days=ago), compute, storage, seconds)
    _day(session, course, emily, today - timedelta(days=40), "2.00", "0", 7200)
    _day(session, course, david, today, "9.00", "0", 3600)  # someone else's
    session.add(_grant(course, emily, "6"))
    running = make_running(session, course.id, emily.id, now - timedelta(hours=1), link="hw4")
    parked = make_running(session, course.id, emily.id, now - timedelta(days=2), link="hw3")
    parked.state = S.STOPPED
    session.commit()
    b = student_budget(session, course, emily.id, now, prices=PRICES, catalog=CATALOG)
    # two 30 GB disks exist: what they cost from now to the end of Dec 13 (Los Angeles) is held back, like the sweep
    hours = D((datetime(2024, 12, 14, 8, tzinfo=UTC) - now).total_seconds()) / 3600  # to Dec 13, 23:59:59.999999
    after = PRICES.storage_hourly(30) * 14 * 24  # grace $1.10; the archives ($1.38 each) are the course's lines
    assert abs(b.reserved - 2 * (PRICES.storage_hourly(30) * hours + after)) < D("1E-9")
    assert round(b.reserved, 2) == D("11.60")  # $9.39 to term end, then 2 x $1.10
    assert (b.base, b.grants, b.cap, b.spent, b.percent) == (24, 6, 30, D("8.40"), 28)
    assert b.remaining == 30 - D("8.40") - b.reserved and b.remaining.quantize(CENT) == D("10.00")
    assert b.burn_per_day == D("0.20") and b.days_left == D("50.0")  # $10.0011 / $0.20
    assert len(b.days) == 30 and b.days[0].day == today - timedelta(days=29) and b.days[-1].day == today
    assert [d.amount for d in b.days if d.amount] == [D("5.00"), D("0.70"), D("0.70")]
    assert b.running_hours == D(14) and b.effective_hourly == D("0.60")  # $8.40 over 1 + 1 + 10 + 2 hours
    assert [(r.workspace_id, r.state) for r in b.running] == [(running.id, "running")] and b.parked == 1
    assert b.running[0].hourly == PRICES.hourly("t3.medium") + D("0.005") + PRICES.storage_hourly(30)
    assert b.template.name == "ML CPU workspace" and b.template.daily == PRICES.daily("t3.medium", 30)
    assert b.template.hourly * 24 == b.template.daily
    assert (b.daily_cap, b.idle_minutes) == (D(5), 240)
    quiet = student_budget(session, course, emily.id, now + timedelta(days=8), prices=PRICES, catalog=CATALOG)
    assert quiet.burn_per_day == 0 and quiet.days_left is None  # "no recent use"
    assert student_budget(session, make_course(session), emily.id, now, prices=PRICES, catalog=CATALOG) is None


def _statements(session, engine, course, fn) -> int:  # type: ignore[no-untyped-def]
    """Statements `fn` runs with only the request's course loaded (as the tool token's context has it)."""
    session.expire_all()
    assert course.time_zone
    with statements(engine) as seen:
        fn()
    return len(seen)


def _class_of(session, size: int):  # type: ignore[no-untyped-def]
    course = _cs229(session)
    people = [make_person(session, course, name=f"Student {n}") for n in range(size)]
    for n, p in enumerate(people):
        _day(session, course, p, date(2024, 10, 1) + timedelta(days=n % 9), "1.25", "0.05", 1800)
        session.add(_grant(course, p, "1"))
        make_running(session, course.id, p.id, datetime(2024, 10, 1, tzinfo=UTC))
    session.commit()
    return course, people[0].id


def test_the_number_of_statements_does_not_grow_with_the_class(session, engine):
    now, counts = datetime(2024, 10, 10, tzinfo=UTC), []
    for size in (3, 40):
        course, first = _class_of(session, size)
        report = _statements(session, engine, course, lambda c=course: course_report(session, c))
        mine = _statements(
            session,
            engine,
            course,
            lambda c=course, p=first: student_budget(session, c, p, now, prices=PRICES, catalog=CATALOG),
        )
        counts.append((report, mine))
        assert len(course_report(session, course).rows) == size
    assert counts[0] == counts[1] and counts[0][0] == 5  # policy, grants, rows, weeks, course lines
    assert counts[0][1] <= 8  # the launch check's student_money, then the last 30 days, workspaces, running time


# --- pure: chart and figures ---


def test_chart_has_one_bar_per_day_and_an_accessible_description():
    bars = [Bar(date(2024, 9, 16) + timedelta(days=i), D(i % 7) / 4) for i in range(30)]
    svg = str(daily_spend_chart(bars, title="Your spend per day <last 30 days>", id_prefix="mine"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="mine-title"' in svg and 'aria-describedby="mine-desc"' in svg
    assert '<title id="mine-title">Your spend per day &lt;last 30 days&gt;</title>' in svg  # escaped
    assert len(re.findall(r'<rect class="bar"', svg)) == 30
    desc = re.search(r'<desc id="mine-desc">(.*?)</desc>', svg).group(1)
    assert desc.startswith("Spend per day from Sep 16 to Oct 15, 30 days. Total $21.25; highest $1.50 on Oct 13.")
    assert "Sep 16: $0.00; Sep 17: $0.25;" in desc and "Oct 15: $0.25." in desc  # every day's figure
    assert "Dollars per day" in svg and "Day (course time)" in svg  # axis titles
    assert "<script" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert ">$2.00</text>" in svg and ">$0.00</text>" in svg  # y axis scaled to a round $2


def test_bar_heights_are_proportional_and_the_axis_maximum_is_round():
    days = [date(2024, 10, 1) + timedelta(days=i) for i in range(3)]
    svg = str(daily_spend_chart([Bar(days[0], D(0)), Bar(days[1], D(1)), Bar(days[2], D("0.5"))], title="t"))
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([0-9.]+)"', svg)]
    assert heights[0] == 0 and heights[1] == 2 * heights[2] > 0
    assert "nothing spent" in describe([Bar(days[0], D(0))])
    for value, expected in [("0", "1"), ("0.03", "0.04"), ("0.13", "0.20"), ("0.81", "1"), ("3", "4"), ("24.8", "40")]:
        top = nice_ceiling(D(value))
        assert top == D(expected) and (top / 4) == (top / 4).quantize(CENT)  # tick labels are whole cents


def test_percent_and_term_weeks():
    assert percent_of(D("24.80"), D(24)) == 103 and percent_of(D("156"), D(1200)) == 13
    assert percent_of(D(0), D(0)) == 0 and percent_of(D(1), D(0)) == 100
    start, end = date(2024, 8, 26), date(2024, 12, 13)
    assert [week_of_term(start, date(2024, 8, d)) for d in (26, 31)] == [1, 1] and week_of_term(
        start, date(2024, 9, 2)
    ) == 2
    assert term_progress(start, end, date(2024, 8, 30)) == (1, 16)  # Monday-to-Sunday weeks Aug 26 ... Dec 9
    assert term_progress(start, end, date(2025, 1, 5)) == (16, 16) and term_progress(None, None, start) is None
