"""Every cost in the ledger, against moto: T3 in standard credit mode (so 10 hours at 100 % CPU cost what the
ledger says), and orphan instances stopped with their cost booked to the course."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import CourseCharge, LedgerEntry, Workspace, WorkspaceEvent
from classroom.services.course_money import course_money
from classroom.services.metering import accrue
from classroom.services.workspaces import request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.backend import MANAGED_BY
from provisioning.course_cloud import course_key
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace
from tests.provisioning.test_aws_adapter import _body
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
T0 = datetime(2024, 10, 15, 14, 0, tzinfo=UTC)
# AWS's us-east-1 list prices, written out here rather than read from config/prices.json
T3_MEDIUM_HOUR, PUBLIC_IPV4_HOUR, GP3_GB_MONTH = Decimal("0.0416"), Decimal("0.005"), Decimal("0.08")


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    ctx = JobContext(settings, make_session_factory(engine), redis, backend)
    use_context(ctx)
    yield ctx
    use_context(None)


def aws_bill_standard_mode(hours_running: Decimal, hours_with_disk: Decimal, disk_gb: int, cpu: Decimal) -> Decimal:
    """What AWS bills a t3.medium in standard credit mode: on-demand hours and the public IPv4 while running,
    gp3 per GB-month of 730 hours. CPU use (`cpu`) adds nothing: standard mode throttles instead of billing
    surplus credits (in unlimited mode 100 % for 10 hours would add about $0.80)."""
    assert Decimal(0) <= cpu <= Decimal(1)
    return (T3_MEDIUM_HOUR + PUBLIC_IPV4_HOUR) * hours_running + GP3_GB_MONTH * disk_gb * hours_with_disk / 730


def test_a_student_training_at_full_cpu_for_ten_hours_is_billed_what_the_ledger_says(session, job_ctx, backend):
    course = make_course(session, time_zone="UTC")
    person = make_person(session, course)
    ws, _ = request_workspace(
        session,
        course_id=course.id,
        person_id=person.id,
        link_key="train",
        link_title="Training",
        template=load_catalog().get("ml-cpu-student"),  # type: ignore[arg-type]
        region="us-east-1",
    )
    session.commit()
    sent: list[str] = []
    backend.ec2.meta.events.register("before-send.ec2.RunInstances", lambda request, **_: sent.append(_body(request)))
    assert provision_workspace(ws.id) == "launched"
    assert len(sent) == 1 and "CreditSpecification.CpuCredits=standard" in unquote(sent[0])

    session.refresh(ws)  # then: up a minute after launch, training at 100 % CPU for 10 hours, stopped
    history = [
        (T0, S.PROVISIONING),
        (T0 + timedelta(minutes=1), S.RUNNING),
        (T0 + timedelta(hours=10, minutes=1), S.STOPPED),
    ]
    session.execute(WorkspaceEvent.__table__.delete().where(WorkspaceEvent.workspace_id == ws.id))
    ws.state, ws.metered_until, ws.state_changed_at = S.STOPPED, T0, history[-1][0]
    session.add_all(WorkspaceEvent(workspace_id=ws.id, at=at, to_state=state) for at, state in history)
    session.commit()
    accrue(session, T0 + timedelta(hours=12), PRICES)
    session.commit()

    compute, storage = session.execute(select(func.sum(LedgerEntry.compute), func.sum(LedgerEntry.storage))).one()
    bill = aws_bill_standard_mode(Decimal(10), Decimal(12), 30, cpu=Decimal(1))
    assert compute == Decimal("0.466") and compute + storage == bill.quantize(Decimal("1E-12"))


def test_orphan_instances_are_stopped_and_their_cost_booked_to_the_course(session, job_ctx, backend):
    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=10))
    make_policy(session, course)
    session.commit()
    tags = {"cwc:managed-by": MANAGED_BY, "cwc:workspace-id": "999", "cwc:course": course_key(course.id)}
    raw = backend.ec2.run_instances(
        ImageId="ami-1e749f67",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.large",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )["Instances"][0]
    before = course_money(session, course, datetime.now(UTC), PRICES)

    assert reconcile_workspaces()["orphans"] == 1

    (orphan,) = backend.describe([raw["InstanceId"]])
    assert orphan.state in ("stopping", "stopped")
    charge = session.scalar(select(CourseCharge))
    assert (charge.course_id, charge.kind, charge.ref) == (course.id, "orphan", raw["InstanceId"])
    assert charge.period_start == raw["LaunchTime"] and charge.period_end > charge.period_start
    micros = (charge.period_end - charge.period_start) // timedelta(microseconds=1)
    expected = (Decimal("0.0832") + PUBLIC_IPV4_HOUR) * micros / Decimal(3_600_000_000)  # t3.large list price
    assert abs(charge.amount - expected) <= Decimal("1E-12")
    after = course_money(session, course, datetime.now(UTC), PRICES)
    assert after.committed - before.committed == charge.amount > 0  # the course position counts it

    reconcile_workspaces()  # stopped now: seen again, neither stopped nor booked twice
    assert session.scalar(select(func.count(CourseCharge.id))) == 1
    assert session.scalar(select(func.count(Workspace.id))) == 0


def test_orphans_naming_no_known_course_are_left_alone_and_reported_once(session, job_ctx, backend, caplog):
    """`cwc:managed-by` is the same for every installation: an orphan naming no course of this database may be a
    staging or production student's running workspace, so it is neither stopped nor booked, only reported."""
    from classroom.models import AuditEvent

    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=10))
    make_policy(session, course)
    session.commit()
    ids = []
    for extra in ({}, {"cwc:course": "c999999"}, {"cwc:course": "not-a-course"}):
        tags = {"cwc:managed-by": MANAGED_BY, "cwc:workspace-id": "999", **extra}
        raw = backend.ec2.run_instances(
            ImageId="ami-1e749f67", MinCount=1, MaxCount=1, InstanceType="t3.medium",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["Instances"][0]  # fmt: skip
        ids.append(raw["InstanceId"])
    before = course_money(session, course, datetime.now(UTC), PRICES)

    with caplog.at_level("ERROR", logger="provisioning.jobs.reconcile"):
        assert reconcile_workspaces()["orphans"] == 3

    assert {o.state for o in backend.describe(ids)} == {"running"}  # not stopped: maybe not ours
    assert session.scalar(select(func.count(CourseCharge.id))) == 0  # no course to book them to
    session.expire_all()
    unknown = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.orphan_unknown")).all()
    assert sorted(e.subject for e in unknown) == sorted(ids)
    assert {e.details["tags"].get("cwc:course", "") for e in unknown} == {"", "c999999", "not-a-course"}
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "names no course" in r.getMessage()]
    assert sorted(next(i for i in ids if i in r.getMessage()) for r in errors) == sorted(ids)
    assert course_money(session, course, datetime.now(UTC), PRICES).committed == before.committed
    caplog.clear()
    with caplog.at_level("ERROR", logger="provisioning.jobs.reconcile"):
        reconcile_workspaces()  # seen again: still running, not audited or logged again
    assert {o.state for o in backend.describe(ids)} == {"running"}
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "workspace.orphan_unknown")) == 3
    assert (
        session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "workspace.orphan_unbooked")) == 0
    )
