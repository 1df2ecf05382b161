"""The launch policy: every refusal, in order, and the projection."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from classroom.budget.disk_end import DiskEnd
from classroom.budget.enforcement import idle_limit, idle_text
from classroom.budget.policy import PolicyView, StudentMoney, check_launch, projection_days
from classroom.budget.setup_form import parse_setup
from config.catalog import load_catalog
from config.prices import load_prices
from tests.support.budget import SETUP_FORM

NOW = datetime(2024, 10, 15, 18, 0, tzinfo=UTC)
CATALOG, PRICES = load_catalog(), load_prices().region("us-east-1")
POLICY = PolicyView(
    "CS 229",
    {"ml-cpu-student": "approved", "ml-final-project": "on_request", "gpu-ml-workstation": "blocked"},
    "ml-cpu-student",
    1,
    Decimal(5),
    date(2024, 8, 26),
    date(2024, 12, 13),
    "America/Los_Angeles",
    DiskEnd(14, 365),
)
OK_MONEY = StudentMoney(Decimal(24), Decimal("12"), Decimal("0.5"), 0)


def check(template: str = "ml-cpu-student", money: StudentMoney | None = OK_MONEY, policy=POLICY, now=NOW, **kw):  # type: ignore[no-untyped-def]
    return check_launch(policy, template, money, catalog=CATALOG, prices=PRICES, now=now, **kw)


def test_allowed_with_projection() -> None:
    d = check()
    assert d.allowed and d.code == "ok" and d.projection_days == Decimal("10.0")  # $12 left / $1.20 a day (IPv4 in)
    assert "in about 10.0 days" in d.message


def test_a_new_disk_is_set_aside_before_the_days_of_running_are_counted() -> None:
    """30 days to the term's end and the 14-day grace: 30 GB of gp3 at $0.08 a GB-month for 720 + 336 hours is
    $3.47, so $8.53 of the $12 is left for running, 7.1 days at $1.20 a day. A restart sets nothing aside."""
    d = check(hours_left=Decimal(720))
    assert d.allowed and d.projection_days == Decimal("7.1")
    assert d.message.startswith("Its 30 GB disk sets aside $3.47 of the budget until the term ends and the 14 days")
    assert "so $8.53 is left for running it. This workspace would use the rest of the budget in about 7.1" in d.message
    restart = check(hours_left=Decimal(720), new_disk=False)
    assert restart.projection_days == Decimal("10.0") and "sets aside" not in restart.message


def test_blocked_template_is_educational() -> None:
    d = check("gpu-ml-workstation")
    assert not d.allowed and d.code == "blocked"
    assert "p3.2xlarge, $73.82/day" in d.message and "not approved for CS 229" in d.message
    assert [o.id for o in d.alternatives] == ["ml-cpu-student"] and d.money == OK_MONEY


def test_on_request_template_needs_an_approved_request() -> None:
    assert check("ml-final-project").code == "needs_request"
    assert check("ml-final-project", request_pending=True).code == "request_pending"
    approved = check("ml-final-project", request_approved=True)
    assert approved.allowed and approved.projection_days == Decimal("5.3")  # $12 / $2.25 a day


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"policy": None}, "not_set_up"),
        ({"money": None}, "cannot_evaluate"),
        ({"template": "no-such-template"}, "cannot_evaluate"),
        ({"now": datetime(2024, 8, 26, 6, 0, tzinfo=UTC)}, "term_not_started"),  # still Aug 25 in Los Angeles
        ({"now": datetime(2024, 12, 14, 9, 0, tzinfo=UTC)}, "term_ended"),
        ({"money": StudentMoney(Decimal(24), Decimal(24), Decimal(0), 0)}, "over_budget"),
        ({"money": StudentMoney(Decimal(24), Decimal(3), Decimal(5), 0)}, "daily_cap"),
        ({"money": StudentMoney(Decimal(24), Decimal(3), Decimal(1), 1)}, "concurrency"),
    ],
)
def test_refusals(kwargs, code) -> None:  # type: ignore[no-untyped-def]
    d = check(**kwargs)
    assert not d.allowed and d.code == code and d.message


def test_projection_days() -> None:
    assert projection_days(Decimal("5.50"), Decimal("1.67")) == Decimal("3.3")  # the seed's David


FORM = {**SETUP_FORM, "term_end": "2024-12-13", "end_stop_all": "on"}


def test_setup_form_valid() -> None:
    values, errors = parse_setup(FORM, CATALOG, "CS 229")
    assert errors == {} and values is not None
    assert values.budget_per_student == Decimal("24.00") and values.templates["gpu-ml-workstation"] == "blocked"
    assert values.term_end_actions["stop_all"] and not values.term_end_actions["delete_all_data"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term_end": "2024-08-01"}, "term_end"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"budget_per_student": "-1"}, "budget_per_student"),
        ({"budget_per_student": "24.001"}, "budget_per_student"),
        ({"total_budget": "10"}, "total_budget"),
        ({"default_template": "gpu-ml-workstation"}, "default_template"),
        ({"max_concurrent": "9"}, "max_concurrent"),
        ({"idle_stop_minutes": "5"}, "idle_stop_minutes"),
        ({"end_delete_all_data": "on", "delete_confirm": "cs229"}, "delete_confirm"),
    ],
)
def test_setup_form_errors(change, field) -> None:  # type: ignore[no-untyped-def]
    values, errors = parse_setup({**FORM, **change}, CATALOG, "CS 229")
    assert values is None and field in errors


def test_delete_all_data_needs_the_typed_course_name() -> None:
    values, errors = parse_setup({**FORM, "end_delete_all_data": "on", "delete_confirm": "CS 229"}, CATALOG, "CS 229")
    assert errors == {} and values is not None and values.term_end_actions["delete_all_data"]


def test_idle_limits_and_their_words() -> None:
    assert idle_limit(240, 60) == 60 and idle_limit(90, 240) == 90
    assert [idle_text(m) for m in (60, 120, 90, 45)] == ["1 hour", "2 hours", "90 minutes", "45 minutes"]
