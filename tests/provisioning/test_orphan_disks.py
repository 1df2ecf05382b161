"""Orphan instances' disks against moto, on a time-machine clock: their EBS storage booked to the course by size
and type, once however passes overlap; the orphan terminated after the course's disk grace and never once a
workspace row references it; one naming no course or no workspace of this database (another installation's, maybe)
never terminated; a refused DescribeVolumes books nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import AuditEvent, CourseCharge, Workspace
from classroom.services.course_money import course_money
from classroom.services.workspaces import request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.backend import MANAGED_BY
from provisioning.course_cloud import course_key
from provisioning.jobs import orphan_disks
from provisioning.jobs.reconcile import reconcile_workspaces
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")
T0 = datetime(2024, 10, 15, 14, 0, tzinfo=UTC)
# AWS's us-east-1 EBS list prices per GB-month (730 hours), written out here rather than read from prices.json
GP3, ST1 = Decimal("0.08"), Decimal("0.045")


def money(lines, expected: Decimal) -> bool:  # type: ignore[no-untyped-def]
    """The lines' sum is the figure, within the money column's rounding (12 places) of each line."""
    return abs(sum(x.amount for x in lines) - expected) <= len(lines) * Decimal("1E-12")


@pytest.fixture
def clock(settings, backend, redis, engine) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    # Every reconcile pass is a full one here: these tests follow a stopped orphan from pass to pass, which a pass
    # between full ones leaves for the next full one (tests/provisioning/test_reconcile_passes.py).
    every_pass_full = replace(settings, reconcile_full_every_s=0)
    use_context(JobContext(every_pass_full, make_session_factory(engine), redis, backend))
    try:
        with time_machine.travel(T0, tick=False) as traveller:
            yield traveller
    finally:
        use_context(None)


def course_with_policy(session, **policy):  # type: ignore[no-untyped-def]
    course = make_course(session, time_zone="UTC", term_end=date(2024, 12, 13))
    make_policy(session, course, **policy)
    session.commit()
    return course


def ended_workspace(session, course) -> str:  # type: ignore[no-untyped-def]
    """A workspace row of this database whose launch failed without recording its instance: its id, as tagged."""
    person = make_person(session, course)
    ws, _jobs = request_workspace(
        session, course_id=course.id, person_id=person.id, link_key=f"hw-{person.id}", link_title="HW",
        template=load_catalog().get("ml-cpu-student"), region="us-east-1",  # type: ignore[arg-type]
    )  # fmt: skip
    ws.state = WorkspaceState.FAILED
    session.commit()
    return str(ws.id)


def run_orphan(backend, course_tag: str | None, disks=((30, "gp3"),), workspace: str = "999") -> str:  # type: ignore[no-untyped-def]
    tags = {
        "cwc:managed-by": MANAGED_BY,
        "cwc:workspace-id": workspace,
        **({"cwc:course": course_tag} if course_tag else {}),
    }
    mappings = [
        {
            "DeviceName": f"/dev/sd{chr(97 + i)}",
            "Ebs": {"VolumeSize": gb, "VolumeType": kind, "DeleteOnTermination": True},
        }
        for i, (gb, kind) in enumerate(disks)
    ]
    return str(
        backend.ec2.run_instances(
            ImageId="ami-1e749f67", MinCount=1, MaxCount=1, InstanceType="t3.medium", BlockDeviceMappings=mappings,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["Instances"][0]["InstanceId"]
    )  # fmt: skip


def volume_lines(session):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(
        select(CourseCharge).where(CourseCharge.ref.like("vol-%")).order_by(CourseCharge.ref, CourseCharge.period_start)
    ).all()


def state_of(backend, instance_id: str) -> str:  # type: ignore[no-untyped-def]
    (info,) = backend.describe([instance_id])
    return info.state


def test_an_orphans_volumes_are_booked_to_its_course_by_size_and_type(session, clock, backend):
    course = course_with_policy(session)
    iid = run_orphan(backend, course_key(course.id), disks=((30, "gp3"), (100, "st1")))
    reconcile_workspaces()  # stopped, compute booked; its volumes have stored nothing yet
    assert volume_lines(session) == [] and state_of(backend, iid) in ("stopping", "stopped")
    before = course_money(session, course, T0, PRICES).committed

    clock.move_to(T0 + timedelta(hours=5, minutes=20))
    assert reconcile_workspaces()["volume_lines"] == 2

    lines = volume_lines(session)
    assert [(x.course_id, x.kind, x.period_start, x.period_end) for x in lines] == [
        (course.id, "orphan", T0, T0 + timedelta(hours=5))  # to the last whole hour, from each volume's creation
    ] * 2
    assert sorted(x.quantity for x in lines) == [Decimal(150), Decimal(500)]  # GB-hours
    expected = (30 * GP3 + 100 * ST1) * 5 / 730
    assert money(lines, expected)
    session.expire_all()
    assert course_money(session, course, T0 + timedelta(hours=5), PRICES).committed - before == sum(
        x.amount for x in lines
    )

    clock.move_to(T0 + timedelta(hours=5, minutes=50))  # the same hour: nothing more
    assert reconcile_workspaces()["volume_lines"] == 0
    clock.move_to(T0 + timedelta(hours=8, minutes=1))
    reconcile_workspaces()
    assert sum(x.quantity for x in volume_lines(session)) == 130 * 8  # continuous, no overlap, no gap
    assert state_of(backend, iid) == "stopped"


def test_a_reappearing_instance_is_booked_only_after_its_workspace_ended(session, clock, backend):
    """An instance judged missing (its row marked terminated) reappears as an orphan: the student's ledger holds its
    storage until the row ended, so the course's lines start there, not at the volume's creation."""
    course = course_with_policy(session)
    wid = ended_workspace(session, course)
    iid = run_orphan(backend, course_key(course.id), workspace=wid)
    ws = session.get(Workspace, int(wid))
    ws.instance_id, ws.state = iid, WorkspaceState.TERMINATED
    ws.state_changed_at = ws.metered_until = T0 + timedelta(hours=3)  # metered to the student until then
    session.commit()
    reconcile_workspaces()

    clock.move_to(T0 + timedelta(hours=5, minutes=20))
    assert reconcile_workspaces()["volume_lines"] == 1
    (line,) = volume_lines(session)
    assert (line.period_start, line.period_end, line.quantity) == (T0 + timedelta(hours=3), T0 + timedelta(hours=5), 60)
    assert money([line], 30 * GP3 * 2 / 730)


def test_two_passes_at_once_book_each_volume_once(session, clock, backend, monkeypatch):
    course = course_with_policy(session)
    run_orphan(backend, course_key(course.id), disks=((50, "gp3"),))
    reconcile_workspaces()
    clock.move_to(T0 + timedelta(hours=3, minutes=5))
    both_read = threading.Barrier(2, timeout=30)
    real, first = orphan_disks._last_booked, threading.local()

    def read_then_wait(*args):  # type: ignore[no-untyped-def]
        last = real(*args)
        if not getattr(first, "done", False):  # both passes read the same last booking before either books
            first.done = True
            both_read.wait()
        return last

    monkeypatch.setattr(orphan_disks, "_last_booked", read_then_wait)
    results: list[dict[str, int]] = []
    passes = [threading.Thread(target=lambda: results.append(reconcile_workspaces())) for _ in range(2)]
    for p in passes:
        p.start()
    for p in passes:
        p.join(60)

    assert sorted(r["volume_lines"] for r in results) == [0, 1]
    (line,) = volume_lines(session)
    assert (line.period_start, line.period_end, line.quantity) == (T0, T0 + timedelta(hours=3), Decimal(150))
    assert money([line], 50 * GP3 * 3 / 730)


def test_an_orphan_is_terminated_after_the_grace_and_not_before(session, clock, backend):
    course = course_with_policy(session, disk_grace_days=3)
    ours = run_orphan(backend, course_key(course.id), disks=((30, "gp3"),), workspace=ended_workspace(session, course))
    nobodys = run_orphan(backend, None, disks=((8, "gp3"),))  # names no course: maybe another installation's
    reconcile_workspaces()  # stops ours and tags it stopped from T0; leaves the other running
    clock.move_to(T0 + timedelta(days=3) - timedelta(minutes=1))
    assert reconcile_workspaces()["terminated"] == 0
    assert (state_of(backend, ours), state_of(backend, nobodys)) == ("stopped", "running")

    clock.move_to(T0 + timedelta(days=3, minutes=30))
    assert reconcile_workspaces()["terminated"] == 1
    assert state_of(backend, ours) in ("shutting-down", "terminated") and state_of(backend, nobodys) == "running"
    lines = volume_lines(session)  # its last storage booked, to the pass that terminated it
    assert lines[-1].period_end == T0 + timedelta(days=3, minutes=30)
    assert sum(x.quantity for x in lines) == 30 * (72 + Decimal("0.5"))
    assert money(lines, 30 * GP3 * (72 + Decimal("0.5")) / 730)
    session.expire_all()
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.orphan_terminated")).all()
    assert event.subject == ours and event.details["grace_days"] == 3 and event.details["volumes"][0]["gb"] == 30
    assert backend.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [lines[0].ref]}])["Volumes"] == []

    clock.move_to(T0 + timedelta(days=5))  # gone: nothing more booked for it
    reconcile_workspaces()
    assert len(volume_lines(session)) == len(lines)
    clock.move_to(T0 + timedelta(days=30))  # the one naming no course: never stopped, booked or terminated
    assert reconcile_workspaces()["terminated"] == 0 and state_of(backend, nobodys) == "running"
    assert session.scalar(select(func.count(CourseCharge.id)).where(CourseCharge.course_id != course.id)) == 0


def test_an_orphan_of_another_installation_is_never_terminated(session, clock, backend, caplog):
    """Staging and production in one account: course ids collide, workspace ids need not. An orphan naming a
    course here but a workspace that is no row of that course here is stopped and booked, never terminated."""
    course = course_with_policy(session, disk_grace_days=1)
    other = course_with_policy(session, disk_grace_days=1)
    no_row = run_orphan(backend, course_key(course.id), workspace="999999")
    wrong_course = run_orphan(backend, course_key(course.id), workspace=ended_workspace(session, other))
    untagged = run_orphan(backend, course_key(course.id), workspace="")
    reconcile_workspaces()
    clock.move_to(T0 + timedelta(days=2))
    with caplog.at_level("ERROR", logger="provisioning.jobs.orphan_disks"):
        assert reconcile_workspaces()["terminated"] == 0
        clock.move_to(T0 + timedelta(days=20))
        assert reconcile_workspaces()["terminated"] == 0

    assert {state_of(backend, i) for i in (no_row, wrong_course, untagged)} == {"stopped"}
    session.expire_all()
    kept = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.orphan_kept")).all()
    assert sorted(e.subject for e in kept) == sorted([no_row, wrong_course, untagged])  # once each
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 3 and all("not terminated" in m for m in errors)
    assert (
        session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "workspace.orphan_terminated")) == 0
    )
    assert {x.course_id for x in volume_lines(session)} == {course.id}  # their storage is still booked


def test_an_orphan_that_got_a_workspace_row_is_never_terminated(session, clock, backend, engine):
    course = course_with_policy(session, disk_grace_days=1)
    person = make_person(session, course)
    session.commit()
    iid = run_orphan(backend, course_key(course.id), workspace=ended_workspace(session, course))
    reconcile_workspaces()
    clock.move_to(T0 + timedelta(days=2))

    def adopt(**_: object) -> None:  # a row takes the instance during the pass, after the orphans were listed
        with make_session_factory(engine)() as other:
            ws, _jobs = request_workspace(
                other, course_id=course.id, person_id=person.id, link_key="hw1", link_title="HW1",
                template=load_catalog().get("ml-cpu-student"), region="us-east-1",  # type: ignore[arg-type]
            )  # fmt: skip
            ws.instance_id = iid
            other.commit()

    backend.ec2.meta.events.register_first("before-call.ec2.DescribeVolumes", adopt, unique_id="adopt")
    assert reconcile_workspaces()["terminated"] == 0
    backend.ec2.meta.events.unregister("before-call.ec2.DescribeVolumes", unique_id="adopt")
    clock.move_to(T0 + timedelta(days=9))
    reconcile_workspaces()
    assert state_of(backend, iid) == "stopped"
    session.expire_all()
    assert (
        session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "workspace.orphan_terminated")) == 0
    )
    assert session.scalar(select(Workspace.instance_id).where(Workspace.instance_id.is_not(None))) == iid


def test_a_refused_describe_volumes_books_nothing_and_the_next_pass_does(session, clock, backend):
    course = course_with_policy(session, disk_grace_days=1)
    iid = run_orphan(backend, course_key(course.id), disks=((40, "gp3"),), workspace=ended_workspace(session, course))
    reconcile_workspaces()
    clock.move_to(T0 + timedelta(days=2, minutes=10))
    refused = {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}, "ResponseMetadata": {}}

    def refuse(**_: object) -> tuple[object, dict[str, object]]:
        return SimpleNamespace(status_code=403, headers={}), refused

    backend.ec2.meta.events.register("before-call.ec2.DescribeVolumes", refuse, unique_id="refuse")
    assert reconcile_workspaces()["terminated"] == 0
    assert volume_lines(session) == [] and state_of(backend, iid) == "stopped"  # past its grace, yet kept

    backend.ec2.meta.events.unregister("before-call.ec2.DescribeVolumes", unique_id="refuse")
    assert reconcile_workspaces()["terminated"] == 1
    (line,) = volume_lines(session)
    assert (line.period_start, line.period_end) == (T0, T0 + timedelta(days=2, minutes=10))
    assert money([line], 40 * GP3 * (48 + Decimal(10) / 60) / 730)


def test_an_unknown_volume_type_is_priced_at_the_highest_known_ebs_price_not_zero():
    known = [PRICES.ebs_gb_month, *PRICES.ebs_gb_month_by_type.values()]
    assert PRICES.ebs_gb_month_of("gp3") == GP3 and PRICES.ebs_gb_month_of("st1") == ST1
    assert PRICES.ebs_gb_month_of("io9-future") == max(known) == Decimal("0.125")
