"""The dashboard's flags, budget levels, filters and sorting; the text checks; the login banner. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from classroom.dashboard_rules import (
    DashboardQuery,
    StudentFacts,
    budget_level,
    budget_pct,
    build_rows,
    flags_for,
    page_of,
    select_rows,
    summary,
)
from classroom.services.messages import BANNER_MAX, banner_text
from classroom.ta_text import OfficeInputError, clean_line, clean_path, clean_subject, clean_text
from classroom.ta_time import ago, span

NOW = datetime(2024, 10, 15, 18, 0, tzinfo=UTC)


def facts(**kw: object) -> StudentFacts:
    values: dict[str, object] = dict(person_id=1, name="Emily Chen", email="e@u.edu", section="A", state=None,
                                     state_since=None, last_activity=NOW, spent=Decimal(5),
                                     cap=Decimal(24))  # fmt: skip
    values.update(kw)
    return StudentFacts(**values)  # type: ignore[arg-type]


def test_no_activity_is_flagged_only_when_a_due_date_is_near():
    quiet = facts(last_activity=NOW - timedelta(days=4))
    due = [NOW + timedelta(days=2)]
    assert flags_for(quiet, NOW, due) == ("inactive_before_due",)
    assert flags_for(quiet, NOW, [NOW + timedelta(days=5)]) == ()  # far off
    assert flags_for(quiet, NOW, [NOW - timedelta(hours=1)]) == ()  # already past
    assert flags_for(facts(last_activity=NOW - timedelta(days=1)), NOW, due) == ()
    assert flags_for(facts(last_activity=None), NOW, due) == ("inactive_before_due",)  # never active


def test_failed_starts_budget_reset_and_help_flags():
    assert flags_for(facts(failed_starts=1), NOW, []) == ()
    assert flags_for(facts(failed_starts=2), NOW, []) == ("failed_starts",)
    assert flags_for(facts(spent=Decimal("21.60")), NOW, []) == ("budget_90",)  # exactly 90 %
    assert flags_for(facts(spent=Decimal("21.59")), NOW, []) == ()
    assert flags_for(facts(last_reset=NOW - timedelta(days=6)), NOW, []) == ("recent_reset",)
    assert flags_for(facts(last_reset=NOW - timedelta(days=8)), NOW, []) == ()
    assert flags_for(facts(open_help=1, help_id=7), NOW, []) == ("help_open",)


@pytest.mark.parametrize(
    ("spent", "cap", "pct", "level"),
    [("0", "24", "0.0", ""), ("18", "24", "75.0", "warn"), ("21.6", "24", "90.0", "bad"), ("30", "24", "125.0", "bad"),
     ("1", "0", "100", "bad"), ("0", "0", "0", "")],
)  # fmt: skip
def test_budget_percentage_and_level(spent: str, cap: str, pct: str, level: str):
    value = budget_pct(Decimal(spent), Decimal(cap))
    assert value == Decimal(pct) and budget_level(value) == level


def test_search_filter_and_sort():
    rows = build_rows(
        [
            facts(person_id=1, name="Emily Chen", section="A", state="running", state_since=NOW - timedelta(hours=3)),
            facts(person_id=2, name="David Kim", email="dk@u.edu", section="B", spent=Decimal(23), failed_starts=3),
            facts(person_id=3, name="Sophie Martin", section="A", state="stopped", open_help=1, help_id=9),
        ],
        NOW,
        [],
    )
    names = lambda q: [r.facts.name for r in select_rows(rows, q, NOW)]  # noqa: E731
    assert names(DashboardQuery()) == ["David Kim", "Sophie Martin", "Emily Chen"]  # most flags first
    assert names(DashboardQuery(sort="name")) == ["David Kim", "Emily Chen", "Sophie Martin"]
    assert names(DashboardQuery(sort="name", descending=True)) == ["Sophie Martin", "Emily Chen", "David Kim"]
    assert names(DashboardQuery(q="DK@U")) == ["David Kim"]
    assert names(DashboardQuery(q="chen emily")) == ["Emily Chen"]
    assert names(DashboardQuery(section="A", sort="name")) == ["Emily Chen", "Sophie Martin"]
    assert names(DashboardQuery(flag="help_open")) == ["Sophie Martin"]
    assert names(DashboardQuery(state="none")) == ["David Kim"]
    assert names(DashboardQuery(state="running")) == ["Emily Chen"]
    assert names(DashboardQuery(sort="budget")) == ["David Kim", "Emily Chen", "Sophie Martin"]
    assert names(DashboardQuery(sort="state")) == ["Emily Chen", "Sophie Martin", "David Kim"]
    assert rows[0].running_for == timedelta(hours=3) and rows[2].running_for is None
    assert summary(rows)["running"] == 1 and summary(rows)["failed_starts"] == 1 and summary(rows)["budget_90"] == 1


def test_typed_text_is_checked_never_cut():
    assert clean_text("  hi\r\nthere ", 100, "Text") == "hi\nthere"
    with pytest.raises(OfficeInputError, match="at most 5"):
        clean_text("123456", 5, "Text")
    with pytest.raises(OfficeInputError, match="control"):
        clean_text("a\x1b[31mred", 100, "Text")  # a terminal escape would reach the SSH banner
    with pytest.raises(OfficeInputError):
        clean_subject("  ", 10)
    assert clean_subject(" Batch   size ", 50) == "Batch size"
    assert clean_path("~/homework/hw3/train.py") == "homework/hw3/train.py" and clean_path("") == ""
    for bad in ("../x", "a/../../b", "a\nb"):
        with pytest.raises(OfficeInputError):
            clean_path(bad)
    assert clean_line("") is None and clean_line(" 42 ") == 42 and clean_line(7) == 7
    for bad in ("0", "-1", "4.5", "x", "99999999999"):
        with pytest.raises(OfficeInputError):
            clean_line(bad)


def test_login_banner_lists_a_few_and_counts_the_rest():
    assert banner_text([]) == ""
    msgs = [{"subject": f"S{i}", "from": "Alex"} for i in range(BANNER_MAX + 2)]
    text = banner_text(msgs)
    assert text.startswith(f"You have {BANNER_MAX + 2} unread messages") and "... and 2 more." in text
    assert "1 unread message from" in banner_text(msgs[:1])


def test_durations():
    assert span(None) == "" and span(timedelta(seconds=5)) == "5 s" and span(timedelta(minutes=12)) == "12 min"
    assert span(timedelta(hours=2, minutes=5)) == "2 h 05 min" and span(timedelta(days=3, hours=4)) == "3 d 4 h"
    assert ago(None, NOW) == "never" and ago(NOW, NOW) == "just now"
    assert ago(NOW - timedelta(days=1), NOW) == "1 day ago" and ago(NOW - timedelta(hours=3), NOW) == "3 h ago"


def test_pages_of_rows():
    rows = build_rows([facts(person_id=i, name=f"S{i:03d}") for i in range(250)], NOW, [])
    first, number, pages = page_of(rows, 1)
    assert len(first) == 100 and number == 1 and pages == 3 and first[0].facts.person_id == 0
    last, number, _ = page_of(rows, 3)
    assert len(last) == 50 and number == 3 and last[-1].facts.person_id == 249
    assert page_of(rows, 99)[1] == 3 and page_of([], 1) == ([], 1, 1)
