"""Pure rules of money safety II: what a launch commits to, the course total, the state table, exact hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from classroom.budget.disk_end import DiskEnd, archive_gb, disk_reserve
from classroom.budget.enforcement import (
    COURSE_PERSON,
    ONCE,
    CoursePosition,
    RunningWorkspace,
    StudentPosition,
    plan_enforcement,
)
from classroom.budget.policy import (
    CourseMoney,
    PolicyView,
    StudentMoney,
    check_launch,
    commitment,
    hours_until_term_end,
    money_text,
    option,
)
from classroom.sql import sql_states
from classroom.workspaces.lifecycle import (
    BILLING_COMPUTE,
    BILLING_DISK,
    CONCURRENT,
    RESERVED_DISK,
    WorkspaceState,
)
from config.catalog import load_catalog
from config.prices import load_prices

S = WorkspaceState
NOW = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
PRICES = load_prices().region("us-east-1")
CENT = Decimal("0.01")
CATALOG = load_catalog()
POLICY = PolicyView(
    "CS 229",
    {"ml-cpu-student": "approved", "ml-final-project": "approved", "gpu-ml-workstation": "blocked"},
    "ml-cpu-student",
    1,
    Decimal(5),
    date(2024, 8, 26),
    date(2024, 12, 13),
    "America/Los_Angeles",
    DiskEnd(14, 365),
)
HOURS = hours_until_term_end(POLICY.term_end, POLICY.time_zone, NOW)  # about 38.5 days


def launch(template: str, money: StudentMoney, **kw):  # type: ignore[no-untyped-def]
    return check_launch(POLICY, template, money, catalog=CATALOG, prices=PRICES, now=NOW, hours_left=HOURS, **kw)


def test_hours_until_term_end_is_exact_decimal_and_never_negative() -> None:
    end = datetime(2024, 12, 14, 8, 0, tzinfo=UTC)  # midnight after Dec 13 in Los Angeles (PST, UTC-8)
    assert hours_until_term_end(POLICY.term_end, POLICY.time_zone, end - timedelta(hours=1)) == Decimal(
        3_599_999_999
    ) / Decimal(3_600_000_000)  # to the microsecond: time.max is 23:59:59.999999
    assert hours_until_term_end(POLICY.term_end, POLICY.time_zone, end + timedelta(days=3)) == 0
    assert hours_until_term_end(None, POLICY.time_zone, NOW) == 0
    assert isinstance(HOURS, Decimal)


def test_five_dollars_left_and_a_fifty_gb_disk_is_refused_with_the_figures() -> None:
    money = StudentMoney(Decimal(24), Decimal(19), Decimal(0), 0)  # $5.00 left
    d = launch("ml-final-project", money)
    disk = PRICES.storage_hourly(50) * HOURS
    grace = PRICES.storage_hourly(50) * 24 * 14  # $1.84
    running = (PRICES.running_hourly("t3.large") + PRICES.storage_hourly(50)) * 180 / 3600
    assert disk > 5 and not d.allowed and d.code == "over_budget"
    assert f"commits {money_text(disk + grace + running)}:" in d.message  # what the student's ledger will hold
    assert f"its 50 GB disk until the term ends (${disk.quantize(Decimal('0.01'))})" in d.message
    assert "the 14 days the disk is kept after the term ($1.84)" in d.message and grace.quantize(CENT) == Decimal(
        "1.84"
    )
    assert "S3" not in d.message  # the archive's retention is the course's, not the student's
    assert "You have $5.00 left" in d.message and "3 minutes of running" in d.message


def test_covering_the_disk_to_term_end_but_not_its_grace_is_refused_with_the_figures() -> None:
    t = option(CATALOG.get("ml-cpu-student"), PRICES)  # type: ignore[arg-type]
    to_term_end = t.disk_hourly * HOURS + t.hourly * 180 / 3600  # what the launch check used to count
    money = StudentMoney(Decimal(24), Decimal(24) - to_term_end - Decimal("0.50"), Decimal(0), 0)  # 50 cents more
    d = launch("ml-cpu-student", money)
    grace = PRICES.storage_hourly(30) * 24 * 14  # $1.10
    assert not d.allowed and d.code == "over_budget"
    assert f"commits {money_text(to_term_end + grace)}:" in d.message
    assert "the 14 days the disk is kept after the term ($1.10)" in d.message
    assert f"You have {money_text(money.remaining)} left" in d.message
    without_end = replace(POLICY, disk_end=None)  # no term end to end the disk at: nothing after it is reserved
    assert check_launch(without_end, "ml-cpu-student", money, catalog=CATALOG, prices=PRICES, now=NOW,
                        hours_left=HOURS).allowed  # fmt: skip


def test_a_student_is_not_held_back_for_the_archive_the_course_pays() -> None:
    t = option(CATALOG.get("ml-cpu-student"), PRICES)  # type: ignore[arg-type]
    need = commitment(t, HOURS, new_disk=True, end=POLICY.disk_end)
    assert need.archive == PRICES.archive_hourly(5) * 24 * 365 > 1  # $1.38, booked as the course's "archive" line
    money = StudentMoney(Decimal(24), Decimal(24) - need.student - Decimal("0.01"), Decimal(0), 0)  # a cent more
    assert money.remaining < need.total  # what the student used to be held to
    assert launch("ml-cpu-student", money, course=CourseMoney(Decimal(1200), Decimal(0))).allowed
    assert disk_reserve(PRICES, 30, HOURS, POLICY.disk_end) == need.disk + need.grace  # existing disks: the same


def test_the_course_remainder_must_cover_the_grace_and_the_archive_too() -> None:
    t = option(CATALOG.get("ml-cpu-student"), PRICES)  # type: ignore[arg-type]
    need = commitment(t, HOURS, new_disk=True, end=POLICY.disk_end)
    money = StudentMoney(Decimal(24), Decimal(0), Decimal(0), 0)
    short = CourseMoney(Decimal(1200), Decimal(1200) - need.total + need.archive / 2)  # covers all but the archive
    d = launch("ml-cpu-student", money, course=short)
    assert not d.allowed and d.code == "course_budget" and "kept 365 days in S3 ($1.38)" in d.message
    assert launch("ml-cpu-student", money, course=CourseMoney(Decimal(1200), Decimal(1200) - need.total)).allowed


def test_the_same_money_starts_a_restart_which_commits_no_new_disk() -> None:
    money = StudentMoney(Decimal(24), Decimal(19), Decimal(0), 0)
    assert launch("ml-final-project", money, new_disk=False).allowed


def test_the_commitment_is_three_minutes_of_running_plus_the_disk_to_term_end_its_grace_and_archive() -> None:
    t = option(CATALOG.get("ml-cpu-student"), PRICES)  # type: ignore[arg-type]
    c = commitment(t, Decimal(100), new_disk=True, end=DiskEnd(14, 365))
    hourly = PRICES.hourly("t3.medium") + Decimal("0.005") + PRICES.storage_hourly(30)
    assert c.disk == PRICES.storage_hourly(30) * 100 and c.running == hourly * 180 / 3600
    assert c.grace == PRICES.storage_hourly(30) * 336 and c.archive == PRICES.s3_gb_month * 5 * 8760 / 730
    assert c.total == c.disk + c.grace + c.archive + c.running  # the course's
    assert c.student == c.disk + c.grace + c.running  # the student's: the archive is the course's line
    restart = commitment(t, Decimal(100), new_disk=False, end=DiskEnd(14, 365))
    assert restart.total == restart.running and restart.grace == restart.archive == 0
    after = commitment(t, Decimal(0), new_disk=True, end=DiskEnd(14, 365))  # the term is over: nothing ahead
    assert after.total == after.running


def test_a_small_disk_reserves_its_own_size_as_archive_and_the_students_reserve_adds_up() -> None:
    assert archive_gb(3) == 3 and archive_gb(5) == 5 and archive_gb(500) == 5
    end = DiskEnd(7, 30)
    got = disk_reserve(PRICES, 30, Decimal(10), end)
    assert got == PRICES.storage_hourly(30) * (10 + 7 * 24)  # to term end and the grace; no archive (the course's)
    assert disk_reserve(PRICES, 30, Decimal(0), end) == 0 and disk_reserve(PRICES, 30, Decimal(10), None) == (
        PRICES.storage_hourly(30) * 10
    )


def test_remaining_just_below_the_commitment_is_refused_and_just_above_allowed() -> None:
    t = option(CATALOG.get("ml-cpu-student"), PRICES)  # type: ignore[arg-type]
    need = commitment(t, HOURS, new_disk=True, end=POLICY.disk_end).student
    below = StudentMoney(Decimal(24), Decimal(24) - need + Decimal("0.000001"), Decimal(0), 0)
    above = StudentMoney(Decimal(24), Decimal(24) - need - Decimal("0.000001"), Decimal(0), 0)
    assert launch("ml-cpu-student", below).code == "over_budget"
    assert launch("ml-cpu-student", above).allowed


def test_the_course_total_refuses_a_launch_the_student_could_afford() -> None:
    money = StudentMoney(Decimal(24), Decimal(1), Decimal(0), 0)
    full = CourseMoney(Decimal(1200), Decimal("1199.50"))
    d = launch("ml-cpu-student", money, course=full)
    assert not d.allowed and d.code == "course_budget"
    assert "total budget of $1200.00 is committed ($1199.50 spent or reserved)" in d.message
    assert launch("ml-cpu-student", money, course=CourseMoney(Decimal(1200), Decimal(100))).allowed


def ws(i: int, hourly: str = "0.05") -> RunningWorkspace:
    return RunningWorkspace(i, Decimal(hourly), NOW, 240)


def student(person: int, *running: RunningWorkspace, course: int = 1) -> StudentPosition:
    return StudentPosition(course, person, Decimal(24), Decimal(1), Decimal(0), Decimal(5), NOW.date(), running)


def test_at_the_course_total_every_running_workspace_of_that_course_stops() -> None:
    people = [student(1, ws(11)), student(2, ws(12), ws(13)), student(3), student(4, ws(14), course=2)]
    courses = [CoursePosition(1, Decimal(1200), Decimal("1199.999")), CoursePosition(2, Decimal(1200), Decimal(10))]
    plan = plan_enforcement(people, NOW, set(), courses)
    assert sorted((s.workspace_id, s.code) for s in plan.stops) == [
        (11, "course_budget"),
        (12, "course_budget"),
        (13, "course_budget"),
    ]
    assert sorted(a.kind for a in plan.alerts if a.person_id == COURSE_PERSON and a.course_id == 1) == [
        "course-100",
        "course-75",
        "course-90",
    ]


def test_one_minute_short_of_the_course_total_nothing_stops() -> None:
    minute = Decimal("0.05") / 60
    courses = [CoursePosition(1, Decimal(1200), Decimal(1200) - minute - Decimal("0.0001"))]
    plan = plan_enforcement([student(1, ws(11))], NOW, set(), courses)
    assert plan.stops == [] and sorted(a.kind for a in plan.alerts) == ["course-75", "course-90"]


def test_course_alerts_go_once_each_and_a_student_stop_is_not_doubled() -> None:
    sent = {(1, COURSE_PERSON, "course-75", ONCE), (1, COURSE_PERSON, "course-90", ONCE)}
    over_cap = StudentPosition(1, 1, Decimal(24), Decimal(24), Decimal(0), Decimal(5), NOW.date(), (ws(11),))
    plan = plan_enforcement([over_cap], NOW, sent, [CoursePosition(1, Decimal(100), Decimal(100))])
    assert [(s.workspace_id, s.code) for s in plan.stops] == [(11, "budget")]
    assert [a.kind for a in plan.alerts if a.person_id == COURSE_PERSON] == ["course-100"]
    quiet = plan_enforcement([student(1)], NOW, set(), [CoursePosition(1, Decimal(1200), Decimal(800))])
    assert quiet.stops == [] and quiet.alerts == []  # 66 %: below the first course threshold


def test_one_state_table_for_python_and_sql() -> None:
    assert {S.RUNNING, S.STOPPING} == BILLING_COMPUTE
    assert S.REQUESTED not in BILLING_DISK and S.STOPPED in BILLING_DISK and S.HIBERNATED in BILLING_DISK
    assert BILLING_DISK - {S.TERMINATING} == RESERVED_DISK and S.STARTING in CONCURRENT
    assert sql_states(BILLING_COMPUTE) == "('running', 'stopping')"


def test_course_lines_are_priced_from_the_one_table() -> None:
    from classroom.services.course_charges import course_id_of, orphan_charge, storage_charge, transfer_charge

    start = NOW - timedelta(hours=730)
    efs = storage_charge(7, "efs", "fs-1", start, NOW, 10 * 1024**3, PRICES.efs_gb_month)
    assert efs.amount == Decimal("3.00") and efs.quantity == 7300  # 10 GB for a 730-hour month at $0.30
    out = transfer_charge(7, "i-1", start, NOW, 2 * 1024**3, PRICES)
    assert out.amount == Decimal("0.18") and out.kind == "transfer"  # 2 GB at $0.09
    orphan = orphan_charge(7, "i-2", "t3.medium", NOW - timedelta(minutes=90), NOW, PRICES)
    assert orphan.amount == Decimal("0.0699") and orphan.quantity == 5400  # 1.5 h x ($0.0416 + $0.005)
    assert course_id_of({"cwc:course": "c42"}) == 42 and course_id_of({"cwc:course": "x"}) is None
