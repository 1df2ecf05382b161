from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from classroom.budget.policy import course_zone, term_end_at


def test_a_known_zone_is_returned():
    assert course_zone("America/Los_Angeles") == ZoneInfo("America/Los_Angeles")


def test_an_unknown_or_malformed_zone_is_none():
    assert course_zone("Mars/Olympus_Mons") is None
    assert course_zone("../etc/passwd") is None
    assert course_zone("") is None


def test_term_end_is_the_last_instant_of_the_last_day_in_course_time():
    end, known = term_end_at(date(2026, 12, 11), "America/Los_Angeles")
    assert known and end == datetime.combine(date(2026, 12, 11), time.max, ZoneInfo("America/Los_Angeles"))


def test_term_end_fails_closed_on_an_unknown_zone():
    assert term_end_at(date(2026, 12, 11), "Mars/Olympus_Mons") == (None, False)


def test_no_term_end_with_a_known_zone():
    assert term_end_at(None, "UTC") == (None, True)
