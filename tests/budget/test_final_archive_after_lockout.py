"""The final archive is the last thing that happens to the home (audit of issue 11, gap 4): at term end on the
agent's path a running workspace is not stopped at once; its student is locked out through the heartbeat answer
(sessions ended, no keys), then the agent archives, and a report made before the lockout is refused as stale. No
final archive in time: it stops and its disk is kept. Real moto, PostgreSQL and Redis; the played agent runs the
real agent's heartbeat through the web app."""

# ruff: noqa: F811 - the fixtures `cloud` and `agent_host` are imported from their modules
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import AuditEvent, CoursePolicy, Notification, WorkspaceArchive
from classroom.services.enforcement import run_sweep
from classroom.workspaces.archive_rules import ARCHIVE_WINDOW, lockout_answer, report_after_lockout
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from provisioning.agent import cwc_agent
from provisioning.jobs.workspace import stop_workspace
from provisioning.retire import retire_due, retire_workspace
from provisioning.sim_host import ENDED_TAG, KEYS_TAG
from provisioning.term_end import run_term_end, term_end_instant
from tests.budget.test_agent_archive import agent_host  # noqa: F401 - a fixture
from tests.budget.test_archive_before_term_end import PRICES, _fresh
from tests.budget.test_disks_end import _run, _running, _volumes, cloud  # noqa: F401 - `cloud` is a fixture
from tests.budget.test_reopen_keeps_disks import _extend_term
from tests.money.test_agent_lease import RecordedPoweroff

S = WorkspaceState
T0 = datetime(2025, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _tags(backend, instance_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    found = backend.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in found.get("Tags", [])}


def _locked_out_at_term_end(session, course, emily, clock, agent_host):  # type: ignore[no-untyped-def]
    """Emily works until the end; her agent archives in the last hour; the term ends on the agent's path."""
    ws = _running(session, course, emily)
    end = term_end_instant(course).astimezone(UTC)
    clock.move_to(end - 50 * MIN)
    retire_due()  # asked in the last hour
    agent_host.tick()  # the answer carries the PUT: the agent tars the home now, before the lockout
    after = end + timedelta(seconds=1)
    clock.move_to(after)
    closed = run_term_end(session, after, agent_archives=True)
    session.commit()
    _run(closed.jobs)
    ws = _fresh(session, ws.id)
    assert ws.state is S.RUNNING and ws.locked_out_at == after and ws.archive_requested_at == after
    assert ws.archive_reported_sha256 is None and ws.archiving_until == after + ARCHIVE_WINDOW  # not stopped yet
    return ws, after


def test_at_term_end_the_student_is_locked_out_then_the_final_archive_is_made_then_it_stops(
    cloud, agent_host, session, backend
):
    course, emily, clock = cloud
    ws, after = _locked_out_at_term_end(session, course, emily, clock, agent_host)
    swept = run_sweep(session, after + MIN, PRICES)
    session.commit()
    assert ws.id not in swept.stopped  # the sweep's term-over rule spares it for the final archive
    beat = agent_host.tick()  # reports the archive made before the lockout; the answer carries the lockout
    assert beat.stopped == []  # nor does the lease stop it
    ws = _fresh(session, ws.id)
    assert ws.archive_reported_sha256 is None and ws.lockout_answered_at == after  # stale: refused
    tags = _tags(backend, ws.instance_id)
    assert tags[ENDED_TAG] == "1" and tags[KEYS_TAG] == "0"  # sessions ended, no keys, before it tars again
    agent_host.tick()  # reports the archive made after the lockout
    assert _fresh(session, ws.id).archive_reported_sha256 is not None
    assert retire_workspace(ws.id) == "stop"  # verified and recorded: the archive was the last thing, now it stops
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))
    assert archive is not None and archive.created_at >= after
    assert _fresh(session, ws.id).locked_out_at is not None  # still locked out until it has stopped
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    ws = _fresh(session, ws.id)
    assert ws.state is S.STOPPED and (ws.locked_out_at, ws.lockout_answered_at) == (None, None)  # the run is over
    locked = session.scalars(select(AuditEvent.subject).where(AuditEvent.action == "workspace.locked_out")).all()
    assert locked == [str(ws.id)]


def test_reopening_the_course_ends_the_lockout(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws, after = _locked_out_at_term_end(session, course, emily, clock, agent_host)
    agent_host.tick()  # the answer carries the lockout
    assert _fresh(session, ws.id).lockout_answered_at == after
    _extend_term(session, course, 30)  # the owner moves the term end in the wizard: the course reopens

    ws = _fresh(session, ws.id)
    assert (ws.locked_out_at, ws.lockout_answered_at) == (None, None)
    assert lockout_answer(ws.locked_out_at, ["ssh-ed25519 AAAA k"]) == (["ssh-ed25519 AAAA k"], False)
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "course.reopened")).all()
    assert event.details["lockouts_cleared"] == 1
    agent_host.tick()  # the next heartbeat carries no lockout
    assert _fresh(session, ws.id).lockout_answered_at is None


def test_a_course_without_money_for_the_window_stops_the_workspace_at_once(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _running(session, course, emily)
    session.get(CoursePolicy, course.id).total_budget = Decimal("0.01")  # the course's money is used up
    session.commit()
    after = term_end_instant(course).astimezone(UTC) + timedelta(seconds=1)
    clock.move_to(after)
    closed = run_term_end(session, after, agent_archives=True)
    session.commit()

    ws = _fresh(session, ws.id)
    assert ws.locked_out_at is None and ws.archiving_until is None and ws.archive_started_at is None
    assert ws.desired_state is DesiredState.STOPPED  # stopped at once, booked to the student as any running
    refused = session.scalars(select(AuditEvent.subject).where(AuditEvent.action == "workspace.final_archive_refused"))
    assert refused.all() == [str(ws.id)]
    assert session.scalar(select(func.count()).where(AuditEvent.action == "workspace.locked_out")) == 0
    _run(closed.jobs)  # stopped; its start for the archive is refused for money too: the disk is kept, staff told
    retire_workspace(ws.id)
    ws = _fresh(session, ws.id)
    assert ws.state is S.STOPPED and ws.archive_failed_at is not None and _volumes(backend, ws.id)
    told = session.scalars(select(Notification.body).where(Notification.course_id == course.id)).all()
    assert any("the course has" in b and "left" in b for b in told)


def test_without_money_for_the_window_a_fresh_report_is_still_the_archive(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    agent_host.idle_after_beats = 0  # no changed files: the report stays fresh
    ws = _running(session, course, emily)
    end = term_end_instant(course).astimezone(UTC)
    clock.move_to(end - 50 * MIN)
    retire_due()
    agent_host.tick()
    agent_host.tick()
    reported = _fresh(session, ws.id).archive_reported_sha256
    assert reported is not None
    session.get(CoursePolicy, course.id).total_budget = Decimal("0.01")
    session.commit()
    after = end + timedelta(seconds=1)
    clock.move_to(after)
    closed = run_term_end(session, after, agent_archives=True)
    session.commit()
    _run(closed.jobs)
    retire_workspace(ws.id)
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))
    assert archive is not None and archive.sha256 == reported  # the report was kept, not asked again
    assert _fresh(session, ws.id).locked_out_at is None


def test_no_final_archive_in_time_stops_it_and_keeps_the_disk(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws, after = _locked_out_at_term_end(session, course, emily, clock, agent_host)
    clock.move_to(after + ARCHIVE_WINDOW + MIN)  # its agent is never heard again
    assert retire_workspace(ws.id) == "keep-disk"
    assert retire_workspace(ws.id) == "stop"
    stop_workspace(ws.id)
    retire_workspace(ws.id)
    ws = _fresh(session, ws.id)
    assert ws.state is S.STOPPED and ws.archive_failed_at is not None and _volumes(backend, ws.id)
    assert session.scalar(select(WorkspaceArchive.id)) is None  # the report made before the lockout was not used
    assert ws.locked_out_at is None  # stopped: nothing left to lock out; a retry's start locks out anew


def test_a_report_is_taken_only_after_an_answer_carried_the_lockout():
    assert report_after_lockout(None, None)  # no lockout: as before
    assert not report_after_lockout(T0, None)  # this heartbeat's report was made before its answer's lockout
    assert report_after_lockout(T0, T0)  # a later heartbeat: made after the agent acted on the lockout
    assert lockout_answer(None, ["ssh-ed25519 AAAA k"]) == (["ssh-ed25519 AAAA k"], False)
    assert lockout_answer(T0, ["ssh-ed25519 AAAA k"]) == ([], True)


def test_the_agent_ends_sessions_and_removes_keys_before_it_archives():
    done: list[str] = []
    answer = {"authorized_keys": [], "end_sessions": True, "archive": {"put_url": "u", "key": "k", "max_bytes": 1},
              "stop": False, "lease_until_epoch": 10**10}  # fmt: skip
    keeper = cwc_agent.LeaseKeeper(RecordedPoweroff(), 900)
    keeper.boot(0.0)
    cwc_agent.heartbeat(
        {"url": "-", "token": "-", "home": "/nonexistent", "user": "student"}, keeper, {}, 60.0,
        post=lambda *a: (200, answer), write_keys=lambda home, user, keys: done.append(f"keys {len(keys)}"),
        make_dirs=lambda *a: None, archive=lambda cfg, req: done.append("archive") or {"key": "k"},
        end_sessions=lambda user: done.append(f"end {user}"),
    )  # fmt: skip
    assert done == ["keys 0", "end student", "archive"]
    runs: list[list[str]] = []
    cwc_agent.end_user_sessions("student", run=lambda argv, **kw: runs.append(argv))
    assert runs == [["loginctl", "terminate-user", "student"], ["pkill", "-KILL", "-u", "student"]]
