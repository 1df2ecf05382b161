"""Stops that stick, on PostgreSQL, Redis and simulated AWS: intent survives failures, races and launches."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from classroom.db import make_session_factory, utcnow
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.queue import ENFORCEMENT_QUEUE, get_queue, make_worker
from classroom.models import AuditEvent, LedgerEntry, Notification, Workspace
from classroom.roles import StaffLevel
from classroom.services.metering import accrue
from classroom.services.workspaces import request_stop, request_workspace
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from lti_app.workspaces.presenter import status
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace, stop_workspace
from tests.provisioning.test_aws_adapter import _error
from tests.support.aws_retries import instant_retries
from tests.support.factories import make_course, make_person

S = WorkspaceState
D = DesiredState
DEFAULT = load_catalog().get("ml-cpu-student")
PRICES = load_prices().region("us-east-1")


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    ctx = JobContext(settings, make_session_factory(engine), redis, backend)
    use_context(ctx)
    yield ctx
    use_context(None)


@pytest.fixture
def student(session):  # type: ignore[no-untyped-def]
    course = make_course(session)
    make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    person = make_person(session, course)
    session.commit()
    return course, person


def _requested(session, student) -> Workspace:  # type: ignore[no-untyped-def]
    course, person = student
    ws, _ = request_workspace(
        session,
        course_id=course.id,
        person_id=person.id,
        link_key="hw",
        link_title="Homework",
        template=DEFAULT,
        region="us-east-1",
    )
    session.commit()
    return ws


def _running(session, student) -> Workspace:  # type: ignore[no-untyped-def]
    ws = _requested(session, student)
    assert provision_workspace(ws.id) == "launched"
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.RUNNING
    return ws


def _stop(session, ws, hibernate=False):  # type: ignore[no-untyped-def]
    session.refresh(ws, with_for_update=True)
    todo = request_stop(session, ws, actor_person_id=ws.person_id, actor="student", reason="done", hibernate=hibernate)
    session.commit()
    return todo


def _aws_state(backend, ws) -> str:  # type: ignore[no-untyped-def]
    return backend.describe([ws.instance_id])[0].state


def _page_is_honest(session, backend, ws) -> str:  # type: ignore[no-untyped-def]
    """The label the student's page and poller show, checked against what AWS reports right now."""
    session.refresh(ws)
    label = str(status(ws, DEFAULT, "CS 229")["label"])
    if _aws_state(backend, ws) in ("pending", "running"):
        assert label != "Stopped", f"page said Stopped while AWS reports {_aws_state(backend, ws)}"
    return label


def _backoff_passed(session, ws) -> None:  # type: ignore[no-untyped-def]
    session.execute(update(Workspace).where(Workspace.id == ws.id).values(stop_next_try_at=utcnow()))
    session.commit()


def _run_queue(redis) -> None:  # type: ignore[no-untyped-def]
    make_worker(redis, simple=True).work(burst=True)


def test_a_stop_that_fails_three_times_still_ends_stopped_and_the_page_never_said_stopped(
    session, student, job_ctx, backend, redis
):
    ws = _running(session, student)
    # attempt 1: throttled on every try botocore makes; 2: IncorrectInstanceState; 3: an unmapped code; 4: works
    faults = {1: "RequestLimitExceeded", 2: "IncorrectInstanceState", 3: "UnauthorizedOperation"}
    phase = {"attempt": 1}
    tries: Counter[int] = Counter()  # StopInstances requests botocore sent, by attempt

    def inject(**_):  # type: ignore[no-untyped-def]
        tries[phase["attempt"]] += 1
        code = faults.get(phase["attempt"])
        return _error(code, 503 if code == "RequestLimitExceeded" else 400) if code else None

    retries = instant_retries(backend.ec2)  # botocore's backoffs and rate limit, without the sleeping
    backend.ec2.meta.events.register("before-send.ec2.StopInstances", inject)
    todo = _stop(session, ws)
    assert [j.job_id for j in todo] == [f"stop_workspace-{ws.id}"]
    labels = [_page_is_honest(session, backend, ws)]
    for attempt in (1, 2, 3):
        phase["attempt"] = attempt
        if attempt == 1:
            assert stop_workspace(ws.id) == "failed"
        else:
            _backoff_passed(session, ws)
            assert reconcile_workspaces()["retried"] == 1  # intent kept: the stop is issued again
            _run_queue(redis)
        session.refresh(ws)
        assert ws.stop_attempts == attempt and ws.desired_state is D.STOPPED and ws.stop_last_error
        assert _aws_state(backend, ws) == "running"
        labels.append(_page_is_honest(session, backend, ws))
        reconcile_workspaces()  # AWS still runs it: observed goes back to running, intent stays
        session.refresh(ws)
        assert ws.state is S.RUNNING and ws.desired_state is D.STOPPED
        message = str(status(ws, DEFAULT, "CS 229")["message"])
        assert f"AWS still reports running, retrying (attempt {attempt})" in message
        labels.append(_page_is_honest(session, backend, ws))
    assert "RequestLimitExceeded" in session.scalar(
        select(AuditEvent.details["error"].astext)
        .where(AuditEvent.action == "workspace.stop_failed")
        .order_by(AuditEvent.id)
        .limit(1)
    )
    phase["attempt"] = 4
    _backoff_passed(session, ws)
    reconcile_workspaces()
    _run_queue(redis)
    reconcile_workspaces()
    session.refresh(ws)
    assert _aws_state(backend, ws) == "stopped" and ws.state is S.STOPPED and ws.stop_attempts == 4
    assert _page_is_honest(session, backend, ws) == "Stopped"
    assert set(labels) == {"Stopping…"}
    failed = session.scalar(select(func.count()).where(AuditEvent.action == "workspace.stop_failed"))
    assert failed == 3
    # botocore really retried the throttled stop: every try the client allows (the fixture's max_attempts=4 retries
    # after the first), with a backoff before each retry; the other errors are not retryable: one request each
    total = backend.ec2.meta.config.retries["total_max_attempts"]
    assert total == 5 and tries == {1: total, 2: 1, 3: 1, 4: 1} and len(retries.backoffs) == total - 1


def test_a_stop_stuck_for_minutes_is_forced_and_reported_to_staff_once(session, student, job_ctx, backend, redis):
    ws = _running(session, student)
    sent = []
    backend.ec2.meta.events.register(
        "before-send.ec2.StopInstances", lambda request, **_: sent.append(request.body) or _error("InternalError", 400)
    )
    _stop(session, ws)
    session.execute(
        update(Workspace)
        .where(Workspace.id == ws.id)
        .values(desired_changed_at=utcnow() - timedelta(minutes=11), stop_next_try_at=utcnow())
    )
    session.commit()
    reconcile_workspaces()
    reconcile_workspaces()  # a second pass alerts no one again
    assert session.scalar(select(func.count()).where(AuditEvent.action == "workspace.stop_not_effective")) == 1
    alerts = session.scalars(select(Notification.subject).where(Notification.subject.like("%still running%"))).all()
    assert len(alerts) == 1
    _run_queue(redis)
    assert sent and "Force=true" in str(sent[-1])
    session.refresh(ws)
    assert ws.desired_state is D.STOPPED and ws.stop_alerted_at is not None


def test_reconcile_racing_a_stop_in_another_worker_never_loses_the_intent(session, student, job_ctx, backend, redis):
    ws = _running(session, student)
    real_describe = backend.describe_managed
    observed, stop_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def describe_then_wait(*states):  # type: ignore[no-untyped-def]
        seen = real_describe(*states)  # AWS says running ...
        observed.set()
        stop_done.wait(10)  # ... and the answer is applied after the other worker stopped the workspace
        return seen

    backend.describe_managed = describe_then_wait  # type: ignore[method-assign]
    factory = make_session_factory(session.get_bind())

    def worker_a() -> None:
        try:
            reconcile_workspaces()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def worker_b() -> None:
        try:
            observed.wait(10)
            with factory() as s:
                mine = s.get(Workspace, ws.id)
                _stop(s, mine)
            stop_workspace(ws.id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop_done.set()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    backend.describe_managed = real_describe  # type: ignore[method-assign]
    session.refresh(ws)
    assert ws.desired_state is D.STOPPED  # the stale "running" may be recorded as observed, never as intent
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.STOPPED and _aws_state(backend, ws) == "stopped"


def test_a_stop_before_launch_cancels_it_with_no_instance_and_no_compute_charge(session, student, job_ctx, backend):
    ws = _requested(session, student)
    assert _stop(session, ws) == []
    session.refresh(ws)
    assert ws.state is S.TERMINATED and ws.desired_state is D.STOPPED
    assert provision_workspace(ws.id) == "nothing to do"
    assert backend.describe_managed() == []
    # a launch claimed by a job that died before calling AWS: the retry finds the stop and cancels
    other = _requested(session, (student[0], make_person(session, student[0])))
    session.commit()
    other.state = S.PROVISIONING
    session.commit()
    assert _stop(session, other) == []
    session.refresh(other)
    assert other.state is S.PROVISIONING and status(other, DEFAULT, "CS 229")["label"] == "Stopping…"
    assert provision_workspace(other.id) == "cancelled"
    session.refresh(other)
    assert other.state is S.TERMINATED and other.instance_id is None and backend.describe_managed() == []
    accrue(session, utcnow() + timedelta(minutes=5), PRICES)
    session.commit()
    assert session.scalar(select(func.coalesce(func.sum(LedgerEntry.compute), 0))) == 0


def test_a_stop_while_aws_launches_stops_the_instance_as_soon_as_it_exists(session, student, job_ctx, backend, redis):
    ws = _requested(session, student)
    real_launch = backend.launch
    factory = make_session_factory(session.get_bind())

    def launch_while_the_student_clicks_stop(spec):  # type: ignore[no-untyped-def]
        with factory() as s:  # no row lock is held during the AWS call, so the click is not blocked
            mine = s.get(Workspace, ws.id)
            assert _stop(s, mine) == []
        return real_launch(spec)

    backend.launch = launch_while_the_student_clicks_stop  # type: ignore[method-assign]
    assert provision_workspace(ws.id) == "launched"
    session.refresh(ws)
    assert ws.instance_id and ws.state is S.STOPPING and ws.desired_state is D.STOPPED
    assert get_queue(redis, ENFORCEMENT_QUEUE).job_ids == [f"stop_workspace-{ws.id}"]  # stops: their own queue
    _run_queue(redis)
    reconcile_workspaces()
    session.refresh(ws)
    assert ws.state is S.STOPPED and _aws_state(backend, ws) == "stopped"


def test_an_instance_launched_for_a_workspace_given_up_meanwhile_is_terminated(session, student, job_ctx, backend):
    from classroom.services.workspaces import mark_failed

    ws = _requested(session, student)
    real_launch = backend.launch
    factory = make_session_factory(session.get_bind())

    def launch_while_reconcile_gives_up(spec):  # type: ignore[no-untyped-def]
        with factory() as s:
            mine = s.get(Workspace, ws.id, with_for_update=True)
            mark_failed(s, mine, "AWS did not start this workspace in 15 minutes.")
            s.commit()
        return real_launch(spec)

    backend.launch = launch_while_reconcile_gives_up  # type: ignore[method-assign]
    assert provision_workspace(ws.id) == "terminated"
    session.refresh(ws)
    assert ws.state is S.FAILED and ws.instance_id
    assert _aws_state(backend, ws) in ("shutting-down", "terminated")  # nothing left running for nobody
