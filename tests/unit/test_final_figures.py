"""Pure figures of the final report: savings' cap and term end, efficiency bounds, recommendations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from classroom.budget.final_figures import (
    Archives,
    IdleStop,
    ReportInput,
    StudentUse,
    compute_final_report,
    efficiency_bucket,
    saved_hours,
)

D = Decimal
AT = datetime(2024, 12, 13, 20, tzinfo=UTC)


def _input(**overrides: object) -> ReportInput:
    values: dict[str, object] = dict(
        course_name="CS 229", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13), term_end_at=None,
        total_budget=D(100), budget_per_student=D(24), course_lines=D(0), idle_minutes=240, students=(), weeks=(),
        idle_stops=(), actions=(), templates_refused=0, flagged_pairs=None, archives=Archives(0, 0, "", None),
        previous=None,
    )  # fmt: skip
    values.update(overrides)
    return ReportInput(**values)  # type: ignore[arg-type]


def test_savings_run_to_the_next_start_or_the_term_end_and_at_most_a_day():
    assert saved_hours(IdleStop(AT, AT + timedelta(hours=2), D(1)), None) == 2
    assert saved_hours(IdleStop(AT, None, D(1)), AT + timedelta(minutes=90)) == D("1.5")
    assert saved_hours(IdleStop(AT, AT + timedelta(days=3), D(1)), None) == 24
    assert saved_hours(IdleStop(AT, None, D(1)), None) == 24
    assert saved_hours(IdleStop(AT, AT - timedelta(hours=1), D(1)), None) == 0  # clock skew never goes negative


def test_efficiency_buckets_at_their_bounds():
    def bucket(active: int, beats: int) -> str:
        return efficiency_bucket(StudentUse(1, "x", D(0), D(24), D(0), beats, active))

    assert [bucket(91, 100), bucket(90, 100), bucket(70, 100), bucket(69, 100), bucket(0, 0)] == [
        "high", "medium", "medium", "low", "no data"]  # fmt: skip


def test_a_quiet_term_within_budget_suggests_nothing():
    students = tuple(StudentUse(n, f"s{n}", D(20), D(24), D(3600), 10, 10) for n in range(10))
    r = compute_final_report(_input(students=students, total_budget=D(250)))
    assert (r.total_spent, r.at_cap, r.recommendations) == (D(200), 0, ())


def test_students_at_their_cap_and_an_unspent_budget_are_recommendations():
    students = (StudentUse(1, "a", D(24), D(24), D(0)), *(StudentUse(n, "b", D(1), D(24), D(0)) for n in range(2, 10)))
    r = compute_final_report(_input(students=students, total_budget=D(1200)))
    assert r.at_cap == 1 and r.over_budget == 0
    assert [t.split(" ")[0] for t in r.recommendations] == ["1", "The"]  # 10 % at cap; 2.7 % of the budget used
