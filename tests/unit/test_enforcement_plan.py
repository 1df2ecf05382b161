"""Every rule and boundary of the enforcement plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from classroom.budget.enforcement import ONCE, RunningWorkspace, StudentPosition, plan_enforcement

NOW = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
TODAY = date(2024, 11, 5)
T3M = Decimal("0.0416") + Decimal("0.08") * 30 / 730  # t3.medium with a 30 GB disk, per hour


def ws(i: int = 1, idle_for: int = 0, hourly: Decimal = T3M, limit: int = 240) -> RunningWorkspace:
    return RunningWorkspace(i, hourly, NOW - timedelta(minutes=idle_for), limit)


def pos(
    spent: str = "1",
    today: str = "0.5",
    cap: str = "24",
    daily: str = "5",
    running: tuple[RunningWorkspace, ...] | None = None,
    person: int = 1,
) -> StudentPosition:
    running = (ws(),) if running is None else running
    return StudentPosition(
        1, person, Decimal(cap), Decimal(spent), Decimal(today), Decimal(daily), TODAY, tuple(running)
    )


def codes(*positions: StudentPosition, sent=frozenset()):  # type: ignore[no-untyped-def]
    plan = plan_enforcement(list(positions), NOW, set(sent))
    return [(s.workspace_id, s.code) for s in plan.stops], sorted(a.kind for a in plan.alerts)


def test_nothing_to_do_well_within_budget() -> None:
    assert codes(pos()) == ([], [])


def test_stops_when_the_next_minute_would_reach_the_cap() -> None:
    minute = T3M / 60
    assert codes(pos(spent=str(Decimal(24) - minute)))[0] == [(1, "budget")]
    assert codes(pos(spent=str(Decimal(24) - minute - Decimal("0.0001"))))[0] == []


def test_all_running_workspaces_stop_at_the_cap() -> None:
    stops, alerts = codes(pos(spent="24", running=(ws(1), ws(2))))
    assert stops == [(1, "budget"), (2, "budget")] and "budget-100" in alerts


def test_daily_cap_stops_until_tomorrow() -> None:
    minute = T3M / 60
    assert codes(pos(today=str(Decimal(5) - minute)))[0] == [(1, "daily_cap")]
    assert codes(pos(today="4.99"))[0] == []
    stops, alerts = codes(pos(today="5", running=()))
    assert stops == [] and alerts == ["daily-cap"]


def test_idle_boundary() -> None:
    assert codes(pos(running=(ws(idle_for=239),)))[0] == []
    assert codes(pos(running=(ws(idle_for=240),)))[0] == [(1, "idle")]
    assert codes(pos(running=(ws(1, idle_for=300), ws(2, idle_for=5))))[0] == [(1, "idle")]


def test_threshold_alerts_once_each() -> None:
    assert codes(pos(spent="11.99", running=()))[1] == []
    assert codes(pos(spent="12", running=()))[1] == ["budget-50"]
    assert codes(pos(spent="21.6", running=()))[1] == ["budget-50", "budget-75", "budget-90"]
    sent = {(1, 1, "budget-50", ONCE), (1, 1, "budget-75", ONCE)}
    assert codes(pos(spent="21.6", running=()), sent=sent)[1] == ["budget-90"]


def test_anomalies_over_cap_and_against_the_median() -> None:
    normal = [pos(spent="2", person=n, running=()) for n in range(2, 7)]
    over = pos(spent="24.80", cap="24", person=1, running=())
    assert "anomaly-over-cap" in codes(over, *normal)[1]
    heavy = pos(spent="7", person=1, running=())
    assert codes(heavy, *normal)[1] == ["anomaly-median"]
    tiny = [pos(spent="0.10", person=n, running=()) for n in range(2, 7)]
    assert codes(pos(spent="0.5", person=1, running=()), *tiny)[1] == []  # under a dollar is not an anomaly
    assert codes(heavy, *normal, sent={(1, 1, "anomaly-median", TODAY)})[1] == []


def test_no_budget_means_everything_stops() -> None:
    stops, _ = codes(pos(spent="0", cap="0"))
    assert stops == [(1, "budget")]


def test_storage_until_term_end_is_reserved_from_the_budget() -> None:
    """Stopped disks keep costing money: their cost to term end is held back, so the cap holds at term end."""
    p = StudentPosition(
        1, 1, Decimal(24), Decimal("20"), Decimal(0), Decimal(5), TODAY, (ws(),), storage_reserve=Decimal("3.9995")
    )
    assert codes(p)[0] == [(1, "budget")]
    q = StudentPosition(
        1, 1, Decimal(24), Decimal("20"), Decimal(0), Decimal(5), TODAY, (ws(),), storage_reserve=Decimal("3.90")
    )
    assert codes(q)[0] == []


def test_term_over_stops_everything_running_whatever_the_budget() -> None:
    end = NOW - timedelta(seconds=1)
    p = StudentPosition(1, 1, Decimal(24), Decimal(1), Decimal(0), Decimal(5), TODAY, (ws(1), ws(2)), term_end=end)
    assert codes(p)[0] == [(1, "term_over"), (2, "term_over")]
    q = StudentPosition(1, 1, Decimal(24), Decimal(1), Decimal(0), Decimal(5), TODAY, (ws(),), term_end=NOW)
    assert codes(q)[0] == []  # the last instant of the term is still in it


def test_an_inactive_enrollment_or_an_unknown_zone_stops() -> None:
    base = (1, 1, Decimal(24), Decimal(1), Decimal(0), Decimal(5), TODAY, (ws(),))
    assert codes(StudentPosition(*base, enrolled=False))[0] == [(1, "enrollment_inactive")]
    assert codes(StudentPosition(*base, zone_known=False))[0] == [(1, "time_zone")]


def test_an_unpriced_workspace_stops_and_the_others_follow_their_rules() -> None:
    unpriced = RunningWorkspace(7, None, NOW, 240)
    assert codes(pos(running=(unpriced, ws(1))))[0] == [(7, "unpriced")]
    assert codes(pos(running=(unpriced, ws(1, idle_for=300))))[0] == [(7, "unpriced"), (1, "idle")]
    assert codes(pos(spent="24", running=(unpriced, ws(1))))[0] == [(7, "budget"), (1, "budget")]
