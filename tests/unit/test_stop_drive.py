"""The stop drive's pure rules: backoff, force, retry and alert timing; the page's honest wording."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from classroom.workspaces.lifecycle import DesiredState, WorkspaceState, intent_note, stop_converged
from classroom.workspaces.stop_drive import (
    ALERT_AFTER,
    FORCE_AFTER,
    StopProgress,
    alert_due,
    backoff,
    retry_due,
    should_force,
)
from config.catalog import load_catalog
from config.money_check import money_config_problems
from config.prices import PriceTable, load_prices

NOW = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
S, D = WorkspaceState, DesiredState


def progress(observed=S.RUNNING, desired=D.STOPPED, *, since=NOW, attempts=1, next_try=None, alerted=False):  # type: ignore[no-untyped-def]
    return StopProgress(desired, observed, True, since, attempts, next_try, alerted)


def test_backoff_doubles_from_thirty_seconds_to_five_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def test_force_after_five_minutes_of_wanting_the_stop() -> None:
    assert not should_force(NOW - FORCE_AFTER + timedelta(seconds=1), NOW)
    assert should_force(NOW - FORCE_AFTER, NOW)


def test_retry_only_while_aws_runs_it_and_after_the_backoff() -> None:
    assert retry_due(progress(next_try=NOW), NOW)
    assert not retry_due(progress(next_try=NOW + timedelta(seconds=1)), NOW)
    assert not retry_due(progress(S.STOPPED), NOW) and not retry_due(progress(S.HIBERNATED, D.STOPPED), NOW)
    assert not retry_due(progress(desired=D.RUNNING), NOW)  # intent is to run: reconcile never stops it
    assert not retry_due(StopProgress(D.STOPPED, S.PROVISIONING, False, NOW, 0, None, False), NOW)  # no instance


def test_staff_are_alerted_once_when_a_stop_is_not_effective() -> None:
    assert not alert_due(progress(since=NOW - ALERT_AFTER + timedelta(seconds=1)), NOW)
    assert alert_due(progress(since=NOW - ALERT_AFTER), NOW)
    assert not alert_due(progress(since=NOW - ALERT_AFTER, alerted=True), NOW)
    assert not alert_due(progress(S.STOPPED, since=NOW - ALERT_AFTER), NOW)


def test_lists_name_the_observed_state_while_a_stop_is_wanted() -> None:
    assert intent_note(D.STOPPED, S.RUNNING, 3) == "stopping: AWS still reports running, attempt 3"
    assert intent_note(D.STOPPED, S.STOPPED, 3) == "" and intent_note(D.RUNNING, S.RUNNING, 0) == ""
    assert stop_converged(D.HIBERNATED, S.STOPPED) and not stop_converged(D.HIBERNATED, S.STOPPING)


def test_start_up_check_names_what_cannot_be_priced() -> None:
    catalog, prices = load_catalog(), load_prices()
    assert money_config_problems("us-east-1", catalog, prices) == []
    assert money_config_problems("mars-north-1", catalog, prices) == [
        "config/prices.json has no prices for the configured AWS region mars-north-1 (AWS_REGION)."
    ]
    table = prices.region("us-east-1")
    gone = catalog.templates[0]
    fewer = {k: v for k, v in table.instance_hourly.items() if k != gone.instance_type}
    problems = money_config_problems(
        "us-east-1", catalog, PriceTable({"us-east-1": replace(table, instance_hourly=fewer)})
    )
    assert any(gone.instance_type in p and gone.id in p for p in problems)
