"""Budget projections: bounded by the term's end and by the daily cap (issue 15, item 2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal as D

from classroom.budget.runway import pace_sentence, running_sentence, runway, term_days_left
from tests.unit.test_launch_policy import OK_MONEY, POLICY, check

LA = "America/Los_Angeles"


def test_term_days_left_counts_to_the_end_of_the_last_day_in_course_time() -> None:
    end = date(2024, 12, 13)
    assert term_days_left(datetime(2024, 12, 13, 8, 0, tzinfo=UTC), end, LA) == D(1)  # 00:00 Dec 13 in LA
    assert term_days_left(datetime(2024, 12, 5, 8, 0, tzinfo=UTC), end, LA) == D(9)
    assert term_days_left(datetime(2024, 12, 14, 9, 0, tzinfo=UTC), end, LA) == 0  # over: never negative
    assert term_days_left(datetime(2024, 12, 5, tzinfo=UTC), None, LA) is None


def test_a_tiny_burn_is_enough_for_the_rest_of_the_term_not_thousands_of_days() -> None:
    r = runway(D("12.2104"), D("0.0004"), daily_cap=D(5), term_days=D(8))  # the "32649.4 days"
    assert r.days == D("30526.0") and r.lasts_the_term
    assert pace_sentence(r, "$0.00").startswith("Enough for the rest of the term")


def test_at_the_terms_end_the_budget_lasts_when_it_covers_the_last_hours() -> None:
    last_hour = D(1) / 24
    assert runway(D("0.10"), D("1.08"), daily_cap=D(5), term_days=last_hour).lasts_the_term  # 0.1 day > 1 hour
    short = runway(D("0.01"), D("1.08"), daily_cap=D(5), term_days=last_hour)
    assert not short.lasts_the_term and short.days == D("0.0")
    assert runway(D(0), D(0), daily_cap=D(5), term_days=D(0)).lasts_the_term  # nothing spent, term over
    assert "in about 0.0 days" in running_sentence(short, "$5.00")


def test_the_daily_cap_sets_the_pace_when_lower_than_the_rate() -> None:
    r = runway(D("23.2"), D("2.13"), daily_cap=D(2), term_days=D(30))  # t3.large: $2.13 a day, $2/day cap
    assert r.capped and r.pace == D(2) and r.days == D("11.6")  # not 10.9 days
    text = running_sentence(r, "$2.00")
    assert "in about 11.6 days" in text and "daily limit of $2.00" in text
    uncapped = runway(D("23.2"), D("2.13"), daily_cap=D(5), term_days=D(30))
    assert not uncapped.capped and uncapped.days == D("10.9") and "daily limit" not in running_sentence(uncapped, "$5")


def test_without_a_term_end_the_days_are_shown() -> None:
    r = runway(D(100), D(1), daily_cap=D(5), term_days=None)
    assert not r.lasts_the_term and r.days == D("100.0")
    assert runway(D(100), D(0), daily_cap=D(5), term_days=None).days is None


def test_the_launch_check_is_bounded_by_the_term_and_the_cap() -> None:
    eight_days_left = datetime(2024, 12, 5, 20, 0, tzinfo=UTC)
    d = check(now=eight_days_left)  # $12 left at $1.08 a day: 11.1 days, the term ends sooner
    assert d.allowed and d.projection_days is None and "enough for the rest of the term" in d.message
    capped = check("ml-final-project", request_approved=True, policy=replace(POLICY, max_daily_cost=D(2)))
    assert capped.projection_days == D("6.0") and "daily limit of $2.00" in capped.message  # $12 / $2 a day


def test_an_on_request_template_shows_its_projection_before_the_request() -> None:
    d = check("ml-final-project")
    assert d.code == "needs_request" and "in about 5.3 days if left running 24/7" in d.projection  # $12 at $2.25 a day
    assert d.money == OK_MONEY
