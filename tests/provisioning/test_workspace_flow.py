"""First click to running workspace on PostgreSQL, Redis and simulated AWS: one workspace, no duplicates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, current, use_context
from classroom.jobs.queue import get_queue
from classroom.models import AuditEvent, Workspace
from classroom.services.workspaces import request_start, request_stop, request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from provisioning.backend import MANAGED_BY
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace, start_workspace, stop_workspace
from tests.provisioning.test_aws_adapter import _error
from tests.support.aws_retries import instant_retries
from tests.support.factories import make_course, make_person

S = WorkspaceState
DEFAULT = load_catalog().get("ml-cpu-student")


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    ctx = JobContext(settings, make_session_factory(engine), redis, backend)
    use_context(ctx)
    yield ctx
    use_context(None)


@pytest.fixture
def student(session):  # type: ignore[no-untyped-def]
    course = make_course(session)
    person = make_person(session, course)
    session.commit()
    return course, person


def _request(session, course, person):  # type: ignore[no-untyped-def]
    ws, todo = request_workspace(
        session,
        course_id=course.id,
        person_id=person.id,
        link_key="link-1",
        link_title="Homework 1",
        template=DEFAULT,
        region="us-east-1",
    )
    session.commit()
    return ws, todo


def test_twenty_simultaneous_first_clicks_make_one_workspace_and_one_job(engine, redis, student, job_ctx):
    course, person = student
    factory = make_session_factory(engine)

    def click(_: int):  # type: ignore[no-untyped-def]
        with factory() as s:
            return _request(s, course, person)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(click, range(20)))
    assert len({ws.id for ws, _ in results}) == 1
    todo = [job for _, jobs_ in results for job in jobs_]
    assert len(todo) == 1
    current().release(todo + todo)  # even released twice, one job is queued
    assert len(get_queue(redis)) == 1
    with factory() as s:
        assert s.query(Workspace).count() == 1


def test_provision_launches_once_and_reconcile_marks_running(session, student, job_ctx, backend, ec2_calls):
    course, person = student
    ws, _ = _request(session, course, person)
    ec2_calls.calls.clear()
    assert provision_workspace(ws.id) == "launched"
    assert provision_workspace(ws.id) == "nothing to do"  # a retried job is harmless
    assert ec2_calls.calls["RunInstances"] == 1
    session.refresh(ws)
    assert ws.state is S.PROVISIONING and ws.instance_id
    instance = backend.describe([ws.instance_id])[0]
    assert instance.tags["cwc:workspace-id"] == str(ws.id) and instance.tags["cwc:managed-by"] == MANAGED_BY
    assert reconcile_workspaces()["changed"] == 1
    session.refresh(ws)
    assert ws.state is S.RUNNING


def test_stop_hibernate_and_start_round_trip(session, student, job_ctx, backend):
    course, person = student
    ws, _ = _request(session, course, person)
    provision_workspace(ws.id)
    reconcile_workspaces()
    session.refresh(ws)
    request_stop(session, ws, actor_person_id=person.id, actor="student", reason="done for today", hibernate=True)
    session.commit()
    assert stop_workspace(ws.id) == "hibernating"
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.HIBERNATED
    request_start(session, ws, actor_person_id=person.id, actor="student")
    session.commit()
    assert start_workspace(ws.id) == "starting"
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.RUNNING
    states = [e for e in session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("workspace.%")))]
    assert "workspace.stop_requested" in states and "workspace.start_requested" in states


def test_a_provision_that_died_after_launch_adopts_its_instance(session, student, job_ctx, backend):
    course, person = student
    ws, _ = _request(session, course, person)
    real_launch = backend.launch
    launched = {}

    def launch_then_die(spec):  # type: ignore[no-untyped-def]
        launched["info"] = real_launch(spec)
        raise RuntimeError("worker killed after AWS accepted the launch")

    backend.launch = launch_then_die  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        provision_workspace(ws.id)
    backend.launch = real_launch  # type: ignore[method-assign]
    assert provision_workspace(ws.id) == "adopted"  # RQ's retry
    session.refresh(ws)
    assert ws.instance_id == launched["info"].instance_id
    assert len(backend.describe_managed()) == 1


def test_throttled_launch_is_retried_without_a_duplicate(session, student, job_ctx, backend):
    course, person = student
    ws, _ = _request(session, course, person)
    seen = {"n": 0}

    def throttle(**_):  # type: ignore[no-untyped-def]
        seen["n"] += 1
        return _error("RequestLimitExceeded", 503) if seen["n"] <= 2 else None

    retries = instant_retries(backend.ec2)  # botocore's backoffs and rate limit, without the sleeping
    backend.ec2.meta.events.register("before-send.ec2.RunInstances", throttle)
    assert provision_workspace(ws.id) == "launched"
    assert seen["n"] == 3 and len(retries.backoffs) == 2  # two throttled tries, both retried by botocore
    assert len(backend.describe_managed()) == 1


def test_no_capacity_fails_with_a_reason_and_launches_nothing(session, student, job_ctx, backend):
    course, person = student
    ws, _ = _request(session, course, person)
    backend.ec2.meta.events.register("before-send.ec2.RunInstances", lambda **_: _error("InsufficientInstanceCapacity"))
    assert provision_workspace(ws.id) == "failed"
    session.refresh(ws)
    assert (
        ws.state is S.FAILED
        and "no t3.medium capacity" in ws.failure_reason
        and "nothing is charged" in ws.failure_reason
    )
    assert backend.describe_managed() == []
    again, todo = _request(session, course, person)  # a failed workspace does not block a new try
    assert again.id != ws.id and todo


def test_reconcile_flags_an_instance_with_our_tag_and_no_workspace_once(session, job_ctx, backend):
    backend.ec2.run_instances(
        ImageId="ami-1e749f67",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "cwc:managed-by", "Value": MANAGED_BY}, {"Key": "cwc:workspace-id", "Value": "999"}],
            }
        ],
    )
    assert reconcile_workspaces()["orphans"] == 1
    reconcile_workspaces()
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "workspace.orphan_instance")) is not None
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.orphan_instance")).all()) == 1


def test_reconcile_requeues_a_stalled_launch_then_gives_up(session, student, job_ctx, redis):
    from datetime import timedelta

    from classroom.db import utcnow

    course, person = student
    ws, _ = _request(session, course, person)
    ws.state_changed_at = utcnow() - timedelta(minutes=3)  # the job died and RQ gave up
    session.commit()
    assert reconcile_workspaces()["retried"] == 1
    assert get_queue(redis).job_ids == [f"provision_workspace-{ws.id}"]
    ws.created_at = ws.state_changed_at = utcnow() - timedelta(minutes=20)
    session.commit()
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.FAILED and "did not start this workspace" in ws.failure_reason


def test_a_vanished_instance_ends_its_workspace_only_when_missing_twice(session, student, job_ctx, backend):
    course, person = student
    ws, _ = _request(session, course, person)
    provision_workspace(ws.id)
    reconcile_workspaces()
    session.refresh(ws)
    backend.describe_managed = lambda *states: []  # type: ignore[method-assign]  # AWS no longer lists the instance
    backend.describe = lambda ids: []  # type: ignore[method-assign]  # nor finds it by id
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.RUNNING  # one miss may be AWS's list lagging behind
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.TERMINATED
