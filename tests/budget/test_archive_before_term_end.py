"""Homes archived before the disks end on real EC2: the agent is asked in the last hour before term end, and a
workspace already stopped is started for its archive only when the course's money allows (the sweep and the
lease spare it for a bounded window), then verified, stopped and, after the grace, terminated. Real moto,
PostgreSQL and Redis; the played agents (the real agent's code) answer through the web app."""

# ruff: noqa: F811 - the fixtures `cloud` and `agent_host` are imported from their modules
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from classroom.models import AuditEvent, CoursePolicy, Notification, Workspace, WorkspaceArchive
from classroom.services.enforcement import run_sweep
from classroom.services.workspaces import request_stop
from classroom.workspaces.archive_rules import (
    ARCHIVE_WINDOW,
    MAX_ARCHIVE_TRIES,
    REASK_AFTER,
    ask_in_lead,
    in_lead,
    spared,
    stale,
    start_allowed,
    window_cost,
)
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from provisioning.agent_archive import ArchiveStep, Intent, archive_step
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import start_workspace, stop_workspace
from provisioning.lease import LeaseInputs, lease_decision
from provisioning.retire import retire_due, retire_workspace
from provisioning.term_end import run_term_end, term_end_instant
from tests.budget.test_agent_archive import agent_host  # noqa: F401 - a fixture
from tests.budget.test_disks_end import _run, _running, _volumes, cloud  # noqa: F401 - `cloud` is a fixture

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def _fresh(session, ws_id: int) -> Workspace:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Workspace, ws_id)


def _stopped_by_the_student(session, course, emily) -> Workspace:  # type: ignore[no-untyped-def]
    """Emily's workspace, stopped before the term ends (no archive was ever asked for)."""
    ws = _running(session, course, emily)
    locked = session.scalar(select(Workspace).where(Workspace.id == ws.id).with_for_update())
    request_stop(session, locked, actor_person_id=emily.id, actor="student", reason="done for today")
    session.commit()
    stop_workspace(ws.id)
    reconcile_workspaces()
    assert _fresh(session, ws.id).state is S.STOPPED
    return ws


def _close(session, course, clock) -> datetime:  # type: ignore[no-untyped-def]
    """The term ends: the close pass runs and its jobs (stops, then the retire steps) run."""
    after = term_end_instant(course).astimezone(UTC) + timedelta(seconds=1)
    clock.move_to(after)
    closed = run_term_end(session, after)
    session.commit()
    _run(closed.jobs)
    return after


def test_a_running_workspace_is_archived_in_the_last_hour_and_never_started_again(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    agent_host.idle_after_beats = 0  # the played student has stopped working: no changed files
    ws = _running(session, course, emily)
    end = term_end_instant(course).astimezone(UTC)
    clock.move_to(end - timedelta(hours=2))
    retire_due()
    assert _fresh(session, ws.id).archive_requested_at is None  # not yet in the last hour
    clock.move_to(end - timedelta(minutes=50))
    retire_due()
    assert _fresh(session, ws.id).archive_requested_at is not None
    agent_host.tick()  # the answer carries the presigned PUT: the agent uploads
    agent_host.tick()  # and reports
    assert _fresh(session, ws.id).archive_reported_sha256 is not None
    retire_due()  # nothing changed in the home: not asked again
    assert _audits(session, "workspace.archive_requested") == 1
    _close(session, course, clock)
    ws = _fresh(session, ws.id)
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))
    assert archive is not None and archive.sha256 == ws.archive_reported_sha256
    assert ws.state is S.STOPPED and ws.archiving_until is None and _audits(session, "workspace.archive_start") == 0
    assert backend.verify_archive(archive.s3_key, archive.sha256, archive.size_bytes)
    clock.move_to(end + timedelta(days=15))
    retire_workspace(ws.id)
    assert _fresh(session, ws.id).state is S.TERMINATED and _volumes(backend, ws.id) == []


def test_a_change_after_the_archive_asks_again_in_the_lead(cloud, agent_host, session):
    course, emily, clock = cloud
    ws = _running(session, course, emily)  # the played student is still working: each beat counts changed files
    end = term_end_instant(course).astimezone(UTC)
    clock.move_to(end - timedelta(minutes=55))
    retire_due()
    agent_host.tick()
    agent_host.tick()
    ws = _fresh(session, ws.id)
    assert ws.archive_reported_sha256 is not None and stale(ws.archive_reported_at, ws.home_changed_at)
    retire_due()
    assert _audits(session, "workspace.archive_requested") == 1  # at most every REASK_AFTER
    clock.move_to(end - timedelta(minutes=55) + REASK_AFTER)
    retire_due()
    ws = _fresh(session, ws.id)
    assert _audits(session, "workspace.archive_requested") == 2 and ws.archive_reported_sha256 is None


def test_a_stopped_workspace_is_started_archived_and_terminated_and_the_sweep_spares_it(
    cloud, agent_host, session, backend
):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    after = _close(session, course, clock)
    ws = _fresh(session, ws.id)
    assert retire_workspace(ws.id) == "await-archive"  # the close's retire job started it for its archive
    assert ws.state is S.STARTING and ws.archiving_until == after + ARCHIVE_WINDOW
    assert ws.agent_token_revoked_at is None and _audits(session, "workspace.archive_start") == 1
    start_workspace(ws.id)  # the worker runs the queued start
    reconcile_workspaces()
    assert _fresh(session, ws.id).state is S.RUNNING
    swept = run_sweep(session, after + timedelta(minutes=1), PRICES)  # the term is over: the race with the sweep
    session.commit()
    assert ws.id not in swept.stopped and _fresh(session, ws.id).state is S.RUNNING
    assert run_term_end(session, after + timedelta(minutes=2)).tokens_revoked == 0  # the agent must be heard
    session.commit()
    assert agent_host.tick().stopped == []  # the lease does not stop it for the term: it uploads
    agent_host.tick()  # and reports
    assert retire_workspace(ws.id) == "stop"  # verified in S3 and recorded, then stopped
    assert session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id)) is not None
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    assert _fresh(session, ws.id).state is S.STOPPED
    clock.move_to(after + timedelta(days=14, hours=1))
    retire_workspace(ws.id)
    assert _fresh(session, ws.id).state is S.TERMINATED and _volumes(backend, ws.id) == []
    assert _audits(session, "workspace.archive_failed") == 0


def test_refused_for_money_the_disk_is_kept_and_staff_told(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    session.get(CoursePolicy, course.id).total_budget = Decimal("0.01")  # the course's money is used up
    session.commit()
    after = _close(session, course, clock)
    ws = _fresh(session, ws.id)
    assert ws.state is S.STOPPED and ws.archiving_until is None and ws.archive_failed_at is not None
    told = session.scalars(select(Notification.body).where(Notification.course_id == course.id)).all()
    assert any("the course has" in b and "left" in b for b in told)
    assert _audits(session, "workspace.archive_start") == 0 and _audits(session, "workspace.archive_failed") == 1
    clock.move_to(after + timedelta(days=30))
    assert retire_workspace(ws.id) == "nothing"
    assert _fresh(session, ws.id).state is S.STOPPED and _volumes(backend, ws.id)  # never deleted without an archive


def test_no_archive_within_the_window_stops_it_and_keeps_the_disk(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    session.execute(update(Workspace).where(Workspace.id == ws.id).values(archive_tries=MAX_ARCHIVE_TRIES - 1))
    session.commit()  # its last try (the earlier ones: tests/budget/test_archive_retries.py)
    after = _close(session, course, clock)
    start_workspace(ws.id)
    reconcile_workspaces()  # started, but its agent never answers (no tick)
    clock.move_to(after + ARCHIVE_WINDOW - timedelta(minutes=1))
    assert retire_workspace(ws.id) == "await-archive"
    swept = run_sweep(session, after + ARCHIVE_WINDOW + timedelta(seconds=1), PRICES)  # past the window
    session.commit()
    assert swept.stopped == [ws.id]  # the sweep's term-over rule stops it regardless
    clock.move_to(after + ARCHIVE_WINDOW + timedelta(minutes=1))
    assert retire_workspace(ws.id) == "keep-disk"
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    clock.move_to(after + timedelta(days=30))
    assert retire_workspace(ws.id) == "nothing"
    ws = _fresh(session, ws.id)
    assert ws.state in (S.STOPPED, S.HIBERNATED) and _volumes(backend, ws.id)
    assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 0
    assert _audits(session, "workspace.archive_failed") == 1


def test_the_rules_of_archiving_before_term_end():
    end = T0 + timedelta(hours=10)
    hour = timedelta(hours=1)
    assert not in_lead(end - 2 * hour, end, hour) and in_lead(end - hour, end, hour) and in_lead(end, end, hour)
    assert not in_lead(end + timedelta(seconds=1), end, hour) and not in_lead(T0, None, hour)
    assert not in_lead(end, end, timedelta(0))  # lead 0: never asked
    assert ask_in_lead(None, None, None, T0)
    assert not ask_in_lead(T0, None, T0, T0 + hour)  # asked, not reported yet: wait
    assert not ask_in_lead(T0, T0, None, T0 + hour)  # reported, nothing changed
    assert stale(T0, T0) and not stale(T0, T0 - timedelta(seconds=1)) and not stale(None, T0)
    assert not ask_in_lead(T0, T0, T0 + timedelta(minutes=1), T0 + REASK_AFTER - timedelta(seconds=1))
    assert ask_in_lead(T0, T0, T0 + timedelta(minutes=1), T0 + REASK_AFTER)
    cost = window_cost(Decimal("0.0466"), Decimal("0.0033"))
    assert cost == Decimal("0.02495") and start_allowed(Decimal(10), Decimal("10.03"), cost)
    assert not start_allowed(Decimal(10), Decimal("10.02"), cost) and not start_allowed(None, None, cost)
    assert spared(T0 + hour, T0) and not spared(T0, T0) and not spared(None, T0)


def test_a_stopped_workspace_without_a_fresh_archive_is_started_once():
    now, due = T0, T0 - timedelta(days=1)
    none = Intent(None, False, False)
    assert archive_step(S.STOPPED, True, due, False, none, now) is ArchiveStep.START
    assert archive_step(S.HIBERNATED, True, due, False, none, now) is ArchiveStep.START
    stale_report = Intent(now - timedelta(hours=1), True, False, stale=True)
    assert archive_step(S.STOPPED, True, due, False, stale_report, now) is ArchiveStep.START
    assert archive_step(S.RUNNING, True, due, False, stale_report, now) is ArchiveStep.VERIFY  # a Remove: as before
    fresh = Intent(now - timedelta(hours=1), True, False)
    assert archive_step(S.STOPPED, True, due, False, fresh, now) is ArchiveStep.VERIFY
    window = Intent(now, False, False, archiving_until=now + ARCHIVE_WINDOW)
    assert archive_step(S.STARTING, True, due, False, window, now) is ArchiveStep.AWAIT
    assert archive_step(S.RUNNING, True, due, False, window, now + timedelta(minutes=29)) is ArchiveStep.AWAIT
    assert archive_step(S.RUNNING, True, due, False, window, now + ARCHIVE_WINDOW) is ArchiveStep.GIVE_UP
    assert archive_step(S.STOPPED, True, due, False, window, now + timedelta(minutes=5)) is ArchiveStep.GIVE_UP  # once
    reported_in_window = Intent(now, True, False, archiving_until=now + ARCHIVE_WINDOW)
    assert archive_step(S.RUNNING, True, due, False, reported_in_window, now) is ArchiveStep.VERIFY


def test_the_lease_spares_an_archive_only_start_until_its_window_ends():
    x = LeaseInputs(
        "running", Decimal(24), Decimal(30), Decimal(0), Decimal(0), Decimal("0.05"), T0 - timedelta(days=1)
    )
    assert lease_decision(T0, timedelta(minutes=15), x).stop  # term over and budget used up
    spared_x = LeaseInputs(**{**x.__dict__, "archiving_until": T0 + timedelta(minutes=10)})
    answer = lease_decision(T0, timedelta(minutes=15), spared_x)
    assert not answer.stop and answer.lease_until == T0 + timedelta(minutes=10)
    assert lease_decision(T0 + timedelta(minutes=10), timedelta(minutes=15), spared_x).stop
