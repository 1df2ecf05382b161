"""A start for the archive only is the course's cost, not the student's: a student at cap whose stopped workspace
is started at term end for its home's archive keeps an unchanged compute ledger, and the course gets one
'archive_run' line per metered period, summing to the run's cost. Real moto, PostgreSQL and Redis; the played
agent answers through the web app."""

# ruff: noqa: F811 - the fixtures `cloud` and `agent_host` are imported from their modules
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import AuditEvent, CourseCharge, CoursePolicy, LedgerEntry, SpendTotal, WorkspaceEvent
from classroom.services.metering import accrue
from classroom.workspaces.archive_rules import ARCHIVE_RUN_ENDS, archive_run_end, archive_run_share
from classroom.workspaces.lifecycle import BILLING_COMPUTE, WorkspaceState
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import start_workspace, stop_workspace
from provisioning.retire import retire_workspace
from tests.budget.test_agent_archive import agent_host  # noqa: F401 - a fixture
from tests.budget.test_archive_before_term_end import PRICES, _close, _fresh, _stopped_by_the_student
from tests.budget.test_disks_end import cloud  # noqa: F401 - a fixture

S = WorkspaceState
T0 = datetime(2025, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _student_compute(session, ws_id: int) -> tuple[Decimal, Decimal]:  # type: ignore[no-untyped-def]
    row = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.compute), 0), func.coalesce(func.sum(LedgerEntry.running_seconds), 0))
        .where(LedgerEntry.workspace_id == ws_id)
    ).one()  # fmt: skip
    return Decimal(row[0]), Decimal(row[1])


def _billed_run_seconds(session, ws_id: int, since: datetime) -> Decimal:  # type: ignore[no-untyped-def]
    """Running seconds after `since`, from the recorded events (as AWS bills them), independently of metering."""
    events = session.execute(
        select(WorkspaceEvent.at, WorkspaceEvent.to_state)
        .where(WorkspaceEvent.workspace_id == ws_id).order_by(WorkspaceEvent.at, WorkspaceEvent.id)
    ).all()  # fmt: skip
    total = timedelta(0)
    for (at, state), (until, _) in zip(events, events[1:], strict=False):
        if state in BILLING_COMPUTE and at >= since:
            total += until - at
    return Decimal(total // timedelta(microseconds=1)) / Decimal(1_000_000)


def test_a_student_at_cap_started_for_the_archive_pays_nothing_the_course_pays_the_run(
    cloud, agent_host, session, backend
):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    clock.shift(timedelta(hours=1))  # its disk is metered for an hour
    accrue(session, datetime.now(UTC), PRICES)
    session.commit()
    spent = session.get(SpendTotal, (course.id, emily.id)).spent
    session.get(CoursePolicy, course.id).budget_per_student = spent  # Emily is at her cap
    session.commit()
    before = _student_compute(session, ws.id)
    after = _close(session, course, clock)  # the retire job starts it for its archive only
    assert _fresh(session, ws.id).archive_started_at == after
    clock.move_to(after + MIN)
    start_workspace(ws.id)
    reconcile_workspaces()
    assert _fresh(session, ws.id).state is S.RUNNING
    clock.move_to(after + 3 * MIN)
    accrue(session, after + 3 * MIN, PRICES)  # a sweep while it runs: the period is split at once
    session.commit()
    agent_host.tick()  # uploads
    clock.move_to(after + 5 * MIN)
    agent_host.tick()  # and reports
    assert retire_workspace(ws.id) == "stop"
    clock.move_to(after + 6 * MIN)
    stop_workspace(ws.id)
    clock.move_to(after + 7 * MIN)
    reconcile_workspaces()
    assert _fresh(session, ws.id).state is S.STOPPED
    accrue(session, after + 20 * MIN, PRICES)
    session.commit()
    accrue(session, after + 20 * MIN, PRICES)  # a retried sweep books nothing twice
    session.commit()

    assert _student_compute(session, ws.id) == before  # not a cent, not a second of running on Emily
    run = _billed_run_seconds(session, ws.id, after)
    assert run >= 4 * 60  # it did run (from about +1 to +7 minutes)
    lines = session.execute(
        select(func.count(), func.sum(CourseCharge.quantity), func.sum(CourseCharge.amount)).where(
            CourseCharge.course_id == course.id, CourseCharge.kind == "archive_run", CourseCharge.person_id.is_(None)
        )
    ).one()
    assert lines[0] == 2  # one per metered period
    assert lines[1] == run
    hourly = PRICES.running_hourly(ws.instance_type)
    assert abs(lines[2] - run * hourly / 3600) < Decimal("0.000001")  # compute and public IPv4 of the window
    started = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "workspace.archive_start")).one()
    assert started["booked_to"] == "course"


def test_the_archive_run_is_from_its_start_to_the_next_stop():
    h = timedelta(hours=1)
    events = [(T0, S.RUNNING), (T0 + h, S.STOPPED), (T0 + 3 * h, S.STARTING), (T0 + 4 * h, S.STOPPED)]
    assert archive_run_end(None, events) is None
    assert archive_run_end(T0 + 2 * h, events) == T0 + 4 * h  # the first stop after the start's request
    assert archive_run_end(T0 + 4 * h, events) is None  # still running: the run goes on
    assert archive_run_end(T0, [(T0, S.STOPPED)]) is None  # a stop at the very instant is before it
    assert archive_run_end(T0, [(T0 + h, S.STOPPING), (T0 + 2 * h, S.TERMINATED)]) == T0 + 2 * h
    assert S.STOPPING not in ARCHIVE_RUN_ENDS and S.HIBERNATED in ARCHIVE_RUN_ENDS


def test_only_the_running_inside_the_archive_run_is_the_courses():
    h = timedelta(hours=1)
    assert archive_run_share(T0, T0 + h, None, None) == timedelta(0)  # no start for the archive: all the student's
    assert archive_run_share(T0, T0 + h, T0 + 15 * MIN, None) == 45 * MIN
    assert archive_run_share(T0, T0 + h, T0 + 15 * MIN, T0 + 30 * MIN) == 15 * MIN
    assert archive_run_share(T0, T0 + h, T0 - h, T0 + 2 * h) == h
    assert archive_run_share(T0, T0 + h, T0 + 2 * h, None) == timedelta(0)  # a later run
    assert archive_run_share(T0 + h, T0 + 2 * h, T0 - h, T0) == timedelta(0)  # an earlier one
