"""Disks that end: term end archives each home to S3 (SHA-256, lifecycle rule) once stopped, then deletes the disk
after the grace period, and the ledger stops growing; a student's Remove archives first. Real moto, PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.names import PROVISION_WORKSPACE
from classroom.models import AuditEvent, CoursePolicy, LedgerEntry, Workspace, WorkspaceArchive, WorkspaceEvent
from classroom.roles import StaffLevel
from classroom.services.metering import accrue
from classroom.services.opening import Link, open_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace, stop_workspace
from provisioning.retire import Step, close_after_due, next_step, request_retire, retire_workspace
from provisioning.term_end import run_term_end, term_end_instant
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
ACTIONS = {"stop_all": True, "revoke_access": True, "final_report": True, "delete_all_data": False}
HW1 = Link("hw1-link", "HW1: Linear Regression", due_at=datetime(2024, 9, 3, 6, 59, tzinfo=UTC), assignment=True)


@pytest.fixture
def cloud(session, settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    """CS 229 with Emily, the jobs run in-process against simulated AWS, the clock frozen inside the term."""
    use_context(JobContext(settings, make_session_factory(engine), redis, backend))
    try:
        with time_machine.travel(datetime(2024, 12, 2, 17, 0, tzinfo=UTC), tick=False) as clock:
            course = make_course(
                session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
            )
            make_policy(session, course, term_end_actions=ACTIONS)
            make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
            emily = make_person(session, course, name="Emily Chen")
            session.commit()
            yield course, emily, clock
    finally:
        use_context(None)


def _running(session, course, emily) -> Workspace:  # type: ignore[no-untyped-def]
    """Emily presses Start on HW1; the worker provisions; AWS reports it running."""
    opened = open_workspace(
        session, course, emily.id, HW1, load_catalog().get("ml-cpu-student"),
        catalog=load_catalog(), prices=PRICES, region="us-east-1",
    )  # fmt: skip
    session.commit()
    assert opened.ws is not None and [j.func for j in opened.jobs] == [PROVISION_WORKSPACE]
    provision_workspace(opened.ws.id)
    reconcile_workspaces()
    session.expire_all()
    ws = session.get(Workspace, opened.ws.id)
    assert ws.state is S.RUNNING and ws.instance_id
    return ws


def _run(result_jobs) -> None:  # type: ignore[no-untyped-def]
    for job in result_jobs:
        module, name = job.func.rsplit(".", 1)
        getattr(__import__(module, fromlist=[name]), name)(job.workspace_id)


def _volumes(backend, ws_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    found = backend.ec2.describe_volumes(Filters=[{"Name": "tag:cwc:workspace-id", "Values": [str(ws_id)]}])
    return [v for v in found["Volumes"] if v["State"] != "deleted"]


def _ledger(session, ws_id: int):  # type: ignore[no-untyped-def]
    spent = func.sum(LedgerEntry.compute + LedgerEntry.storage)
    return session.scalar(select(spent).where(LedgerEntry.workspace_id == ws_id))


def test_term_end_archives_each_home_to_s3_then_deletes_the_disk_after_the_grace(cloud, session, backend):
    course, emily, clock = cloud
    ws = _running(session, course, emily)
    end = term_end_instant(course).astimezone(UTC)
    clock.move_to(end + timedelta(seconds=1))
    closed = run_term_end(session, end + timedelta(seconds=1))
    session.commit()
    _run(closed.jobs)  # the stop, then the retirement: stop observed, archived; the disk waits for the grace
    session.expire_all()
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))
    assert archive is not None and archive.retain_days == 365
    body = backend.s3.get_object(Bucket=backend.bucket, Key=archive.s3_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == archive.sha256 and len(body) == archive.size_bytes
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = tar.getnames()
    assert "home/ubuntu/homework/hw1-linear-regression" in names and "home/ubuntu/.cwc-archive.json" in names
    rules = backend.s3.get_bucket_lifecycle_configuration(Bucket=backend.bucket)["Rules"]
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules] == [
        (f"courses/c{course.id}/archives/", 365, "Enabled")
    ]
    assert session.get(Workspace, ws.id).state is S.STOPPED and _volumes(backend, ws.id)  # kept for the grace

    clock.move_to(end + timedelta(days=7))
    assert retire_workspace(ws.id) == "wait-grace"
    clock.move_to(end + timedelta(days=14, hours=1))
    retire_workspace(ws.id)
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.TERMINATED
    assert _volumes(backend, ws.id) == []
    (inst,) = backend.describe([ws.instance_id])
    assert inst.state == "terminated"
    accrue(session, end + timedelta(days=15), PRICES)
    session.commit()
    after_grace = _ledger(session, ws.id)
    accrue(session, end + timedelta(days=60), PRICES)
    session.commit()
    assert _ledger(session, ws.id) == after_grace  # no charge accruing once the disk is gone
    assert session.scalar(select(func.count()).where(AuditEvent.action == "workspace.removed")) == 1


def test_a_students_remove_archives_first_then_deletes(cloud, session, backend):
    course, emily, _clock = cloud
    ws = _running(session, course, emily)
    todo = request_retire(session, ws, actor_person_id=emily.id, actor="student", reason="done", after=ws.created_at)
    session.commit()
    assert retire_workspace(todo[0].workspace_id) == "stop"  # asks for the stop; the archive waits for it
    assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 0
    assert retire_workspace(ws.id) == "observe-stop"  # AWS has not stopped it: still nothing archived
    assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 0
    stop_workspace(ws.id)  # the worker runs the queued stop
    retire_workspace(ws.id)
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.TERMINATED and _volumes(backend, ws.id) == []
    order = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.in_(("workspace.archived", "workspace.removed")))
        .order_by(AuditEvent.id)
    ).all()  # fmt: skip
    assert order == ["workspace.archived", "workspace.removed"]
    states = session.scalars(
        select(WorkspaceEvent.to_state).where(WorkspaceEvent.workspace_id == ws.id).order_by(WorkspaceEvent.id)
    ).all()
    assert states[-4:] == [S.STOPPING, S.STOPPED, S.TERMINATING, S.TERMINATED]
    assert retire_workspace(ws.id) == "nothing"  # a retried job finds nothing to do


def test_nothing_is_deleted_before_its_archive_exists():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    early, late = now - timedelta(days=1), now + timedelta(days=1)
    assert next_step(S.STOPPED, True, early, False, now) is Step.ARCHIVE  # due, but not archived yet
    assert next_step(S.STOPPED, True, early, True, now) is Step.TERMINATE
    assert next_step(S.HIBERNATED, True, late, True, now) is Step.WAIT_GRACE
    assert next_step(S.RUNNING, True, early, False, now) is Step.STOP
    assert next_step(S.STOPPING, True, early, False, now) is Step.OBSERVE_STOP
    assert next_step(S.REQUESTED, False, early, False, now) is Step.FORGET
    assert next_step(S.PROVISIONING, False, early, False, now) is Step.NOTHING  # its instance is on the way
    assert next_step(S.STOPPED, True, None, False, now) is Step.NOTHING
    assert next_step(S.TERMINATED, True, early, True, now) is Step.NOTHING


def test_per_assignment_workspaces_close_after_their_due_date_where_the_course_chose_so(cloud, session):
    course, emily, _clock = cloud
    policy = session.get(CoursePolicy, course.id)
    policy.workspace_scope, policy.close_after_due = "assignment", True
    session.commit()
    hw1 = _running(session, course, emily)  # HW1 was due on 3 September
    policy.max_concurrent = 2
    later = Link("hw9-link", "HW9", due_at=datetime(2024, 12, 9, 7, 59, tzinfo=UTC), assignment=True)
    hw9 = open_workspace(session, course, emily.id, later, load_catalog().get("ml-cpu-student"),
                         catalog=load_catalog(), prices=PRICES, region="us-east-1").ws  # fmt: skip
    session.commit()
    assert close_after_due(session, datetime(2024, 12, 5, tzinfo=UTC)) == [hw1.id]  # HW9 is not due yet
    session.commit()
    assert hw1.retire_after == datetime(2024, 12, 5, tzinfo=UTC) and hw9.retire_after is None
    assert close_after_due(session, datetime(2024, 12, 6, tzinfo=UTC)) == []  # marked once
    policy.close_after_due = False
    session.commit()
    assert close_after_due(session, datetime(2024, 12, 10, tzinfo=UTC)) == []  # the course's choice


def test_without_an_archive_the_disk_is_kept_and_the_failure_audited_once(cloud, session, backend):
    course, emily, _clock = cloud
    ws = _running(session, course, emily)
    backend.simulated = False  # a real volume: the tool-side archive refuses (real EC2 takes the agent's path)
    request_retire(session, ws, actor_person_id=None, actor="staff", reason="test", after=ws.created_at)
    session.commit()
    retire_workspace(ws.id)
    stop_workspace(ws.id)
    assert retire_workspace(ws.id) == "archive: failed" and retire_workspace(ws.id) == "archive: failed"
    session.expire_all()
    assert session.get(Workspace, ws.id).state is S.STOPPED and _volumes(backend, ws.id)  # nothing deleted
    assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 0
    failed = select(func.count()).where(AuditEvent.action == "workspace.retire_failed")
    assert session.scalar(failed) == 1
