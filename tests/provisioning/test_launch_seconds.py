"""The seconds between AWS reporting `running` and our row saying so are billed: the running event is recorded
at AWS's LaunchTime, and seconds the sweep already metered as not running are booked as a correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import CourseCharge, LedgerEntry, SpendTotal, WorkspaceEvent
from classroom.services.metering import accrue, book_late_running
from classroom.services.workspaces import event_time, request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
T3_MEDIUM_RUNNING_HOUR = Decimal("0.0416") + Decimal("0.005")  # list price + public IPv4, written out


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    ctx = JobContext(settings, make_session_factory(engine), redis, backend)
    use_context(ctx)
    yield ctx
    use_context(None)


def _backdate_launch(instance_id: str, seconds: int) -> datetime:
    """Make the simulated account say the instance has run for `seconds` (moto runs in-process; AWS gives whole
    seconds)."""
    inst = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_instance(instance_id)
    inst.launch_time = (datetime.now(UTC) - timedelta(seconds=seconds)).replace(tzinfo=None, microsecond=0)
    return inst.launch_time.replace(tzinfo=UTC)


def test_event_time_is_aws_time_after_the_previous_change_and_not_after_now() -> None:
    now = datetime(2024, 10, 15, 12, tzinfo=UTC)
    before = now - timedelta(minutes=5)
    assert event_time(None, before, now) == now
    assert event_time(now - timedelta(seconds=90), before, now) == now - timedelta(seconds=90)
    assert event_time(now - timedelta(hours=1), before, now) == now  # an earlier run's LaunchTime: not this one
    assert event_time(now + timedelta(seconds=5), before, now) == now  # a skewed clock never dates the future


def test_a_row_learning_of_running_90_s_late_is_billed_from_launch_time(session, job_ctx, backend) -> None:
    course = make_course(session, time_zone="UTC")
    person = make_person(session, course)
    ws, _ = request_workspace(
        session,
        course_id=course.id,
        person_id=person.id,
        link_key="hw1",
        link_title="HW1",
        template=load_catalog().get("ml-cpu-student"),  # type: ignore[arg-type]
        region="us-east-1",
    )
    session.commit()
    assert provision_workspace(ws.id) == "launched"
    session.refresh(ws)
    assert ws.state is not S.RUNNING and ws.instance_type == "t3.medium"
    launched = _backdate_launch(ws.instance_id, 90)  # AWS: running 90 s ago; the row still says provisioning
    start = launched - timedelta(seconds=30)
    session.execute(
        WorkspaceEvent.__table__.update().where(WorkspaceEvent.workspace_id == ws.id).values(at=start - timedelta(1))
    )
    ws.state_changed_at, ws.metered_until = start, launched + timedelta(seconds=60)  # the sweep ran meanwhile
    session.commit()

    assert reconcile_workspaces()["changed"] == 1
    session.refresh(ws)
    assert ws.state is S.RUNNING and ws.state_changed_at == launched
    running_at = session.scalar(
        select(WorkspaceEvent.at).where(WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.to_state == S.RUNNING)
    )
    assert running_at == launched

    until = datetime.now(UTC)
    accrue(session, until, PRICES)
    session.commit()
    secs, compute = session.execute(
        select(func.sum(LedgerEntry.running_seconds), func.sum(LedgerEntry.compute)).where(
            LedgerEntry.workspace_id == ws.id
        )
    ).one()
    billed = Decimal((until - launched) // timedelta(microseconds=1)) / 1_000_000
    assert abs(secs - billed) <= Decimal("0.001") and billed > 90
    assert abs(compute - billed * T3_MEDIUM_RUNNING_HOUR / 3600) <= Decimal("1E-9")
    assert session.scalar(select(SpendTotal.spent).where(SpendTotal.person_id == person.id)) >= compute

    reconcile_workspaces()  # seen running again: nothing changes, nothing booked twice
    assert session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.workspace_id == ws.id)) == 2


def test_a_late_running_after_an_old_archive_run_is_the_students_not_the_courses(session) -> None:
    """The archive-only run ends at its first stop (as ACCRUE_SQL counts it): a later start's late seconds are
    booked to the student's ledger, and only seconds inside a run still going on are the course's."""
    course = make_course(session, time_zone="UTC")
    person = make_person(session, course)
    ws, _ = request_workspace(
        session, course_id=course.id, person_id=person.id, link_key="hw1", link_title="HW1",
        template=load_catalog().get("ml-cpu-student"), region="us-east-1",  # type: ignore[arg-type]
    )  # fmt: skip
    t0 = datetime(2024, 10, 15, 12, tzinfo=UTC)
    ws.instance_type, ws.archive_started_at = "t3.medium", t0  # started for its archive only at t0 ...
    session.add(WorkspaceEvent(workspace_id=ws.id, at=t0 + timedelta(minutes=20), to_state=S.STOPPED))  # ... until
    since, ws.metered_until = t0 + timedelta(days=2), t0 + timedelta(days=2, seconds=90)  # a normal start, 90 s late
    session.commit()

    assert book_late_running(session, ws, since, t0 + timedelta(days=2, minutes=1), PRICES)
    session.commit()

    secs, compute = session.execute(
        select(func.sum(LedgerEntry.running_seconds), func.sum(LedgerEntry.compute)).where(
            LedgerEntry.workspace_id == ws.id
        )
    ).one()
    assert secs == 90 and compute == 90 * T3_MEDIUM_RUNNING_HOUR / 3600  # the student's, as any running
    assert session.scalar(select(func.count(CourseCharge.id))) == 0  # nothing to the course

    ws.archive_started_at = since - timedelta(seconds=30)  # a run still going on: the course's, as before
    ws.metered_until = since + timedelta(seconds=200)
    session.commit()
    assert book_late_running(session, ws, since + timedelta(seconds=100), since + timedelta(minutes=5), PRICES)
    session.commit()
    (line,) = session.scalars(select(CourseCharge)).all()
    assert (line.kind, line.quantity) == ("archive_run", 100)
