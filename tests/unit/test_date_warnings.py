"""Past dates in the set-up wizard and the assignment picker are warned about, saying what happens."""

from __future__ import annotations

from datetime import UTC, date, datetime

from classroom.budget.date_warnings import course_today, due_date_warning, last_day_warning


def test_a_past_last_day_closes_the_course_at_once() -> None:
    today = course_today(datetime(2024, 12, 14, 7, 0, tzinfo=UTC), "America/Los_Angeles")
    assert today == date(2024, 12, 13)  # still the last day in Los Angeles: no warning
    assert last_day_warning(date(2024, 12, 13), today) == ""
    warning = last_day_warning(date(2024, 12, 12), today)
    assert "December 12, 2024, is already past" in warning and "closes the course at once" in warning


def test_a_past_due_date_is_late_at_once() -> None:
    now = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
    assert due_date_warning(datetime(2024, 10, 1, 12, 0, tzinfo=UTC), now) == ""
    assert "already past" in due_date_warning(datetime(2024, 9, 30, 23, 59, tzinfo=UTC), now)
