"""A workshop against simulated AWS (moto): two walk-ins' workspaces launch; at the end both stop and the one
without the extension is archived to S3 and deleted at once; 7 days later the other goes the same way. The clock is
frozen (time-machine) and moved: the retirement's own steps read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from sqlalchemy import select

from classroom.db import make_session_factory
from classroom.jobs import context as jobs
from classroom.models import Person, Workspace, WorkspaceArchive
from classroom.roles import StaffLevel
from classroom.services.workshops import WorkshopValues, create_workshop
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.workshop_end import run_workshop_ends
from provisioning.workshop_join import join_workshop
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState
START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def _run(found) -> None:  # type: ignore[no-untyped-def]
    for job in found:
        module, name = job.func.rsplit(".", 1)
        getattr(__import__(module, fromlist=[name]), name)(job.workspace_id)


def _volumes(backend, ws_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    found = backend.ec2.describe_volumes(Filters=[{"Name": "tag:cwc:workspace-id", "Values": [str(ws_id)]}])
    return [v for v in found["Volumes"] if v["State"] != "deleted"]


def test_walk_ins_launch_then_end_and_seven_day_cleanup_delete_their_disks(session, settings, backend, redis, engine):
    jobs.use_context(jobs.JobContext(settings, make_session_factory(engine), redis, backend))
    try:
        with time_machine.travel(START + timedelta(minutes=5), tick=False) as clock:
            course = make_course(session)
            make_policy(session, course)
            owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
            values = WorkshopValues(title="Intro to ML", starts_at=START, hours=Decimal(3), max_participants=10,
                                    budget=Decimal(50), template_id="ml-cpu-student", extension_days=7,
                                    extension_daily_price=Decimal(1), extension_allowance=Decimal(7))  # fmt: skip
            workshop, code = create_workshop(session, course, session.get(Person, owner.id), values, clock_now())
            session.commit()
            ids = {}
            for name, extension in (("Keen", True), ("Brief", False)):
                joined = join_workshop(session, code, name, "", extension=extension, catalog=load_catalog(),
                                       prices=load_prices().region("us-east-1"), region="us-east-1",
                                       now=clock_now())  # fmt: skip
                session.commit()
                _run(joined.jobs)
                ids[name] = joined.workspace_id
            reconcile_workspaces()
            session.expire_all()
            assert {session.get(Workspace, i).state for i in ids.values()} == {S.RUNNING}

            clock.move_to(workshop.ends_at)
            ended = run_workshop_ends(session, workshop.ends_at)
            session.commit()
            _run(ended.jobs)  # stops, then Brief's retirement: stop observed, archived, disk deleted (no grace)
            reconcile_workspaces()
            _run(ended.jobs)
            session.expire_all()
            brief, keen = session.get(Workspace, ids["Brief"]), session.get(Workspace, ids["Keen"])
            assert brief.state is S.TERMINATED and _volumes(backend, brief.id) == []
            assert (
                session.scalar(select(WorkspaceArchive.retain_days).where(WorkspaceArchive.workspace_id == brief.id))
                == 1
            )
            assert keen.state is S.STOPPED and _volumes(backend, keen.id)  # kept for the extension

            clock.move_to(workshop.ends_at + timedelta(days=7))
            purged = run_workshop_ends(session, workshop.ends_at + timedelta(days=7))
            session.commit()
            _run(purged.jobs)
            session.expire_all()
            assert session.get(Workspace, keen.id).state is S.TERMINATED and _volumes(backend, keen.id) == []
            assert session.scalar(select(WorkspaceArchive.id).where(WorkspaceArchive.workspace_id == keen.id))
    finally:
        jobs.use_context(None)


def clock_now() -> datetime:
    """The frozen clock's now (time-machine moves datetime.now)."""
    return datetime.now(UTC)
