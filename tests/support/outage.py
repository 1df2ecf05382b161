"""An outage scenario on the simulated account: N running workspaces, each a real moto instance whose user data
carries its agent's config, students with chosen remaining budgets, and the sim host playing their agents
while the clock (time-machine) walks through hours of the tool's scheduler and workers being down.

Shared by tests/money/test_outage.py and bench/outage.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.orm import Session

from classroom.models import SpendDaily
from config.prices import RegionPrices
from provisioning.agent_service import issue_agent_token
from provisioning.aws import AwsBackend
from provisioning.backend import MANAGED_BY
from provisioning.lease import lease_inputs
from provisioning.sim_host import SimHost, Stopped
from provisioning.userdata import UserDataInput, render_user_data
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person

CAP = Decimal(24)
AGENT_URL = "http://localhost/api/agent/heartbeat"


@dataclass(frozen=True)
class OutageStudent:
    """One student with one running workspace, and what they had left when the outage began."""

    person_id: int
    workspace_id: int
    instance_id: str
    hourly: Decimal  # compute + storage while running: one lease of this is the bound on overshoot
    compute_hourly: Decimal  # what running adds, IPv4 included (the storage is already reserved in `remaining`)
    spent_before: Decimal
    remaining: Decimal  # cap - spent - storage reserve at the start


def launch_instance(backend: AwsBackend, workspace_id: int, token: str, grace_s: int) -> str:
    """A managed moto instance whose user data is the real rendered script (the sim host reads it back)."""
    user_data = render_user_data(
        UserDataInput(
            workspace_id=workspace_id,
            agent_url=AGENT_URL,
            agent_token=token,
            os_user="ubuntu",
            ssh_public_keys=(),
            course_slug="cs229",
            region=backend.region,
            file_system_id="fs-0",
            access_point_id="fsap-0",
            boot_grace_s=grace_s,
        )
    )
    ami = sorted(i["ImageId"] for i in backend.ec2.describe_images(Owners=["099720109477"])["Images"])[0]
    tags = [{"Key": "cwc:managed-by", "Value": MANAGED_BY}, {"Key": "cwc:workspace-id", "Value": str(workspace_id)}]
    raw = backend.ec2.run_instances(
        ImageId=ami,
        InstanceType="t3.medium",
        MinCount=1,
        MaxCount=1,
        UserData=user_data,
        InstanceInitiatedShutdownBehavior="stop",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return str(raw["Instances"][0]["InstanceId"])


def seed_outage(
    session: Session,
    backend: AwsBackend,
    prices: RegionPrices,
    now: datetime,
    remaining: list[Decimal],
    *,
    term_end: date,
    grace_s: int = 900,
) -> list[OutageStudent]:
    """One course, one running workspace per entry of `remaining` (the budget each student has left); committed."""
    course = make_course(session, term_start=now.date() - timedelta(days=30), term_end=term_end)
    make_policy(session, course, budget_per_student=CAP, max_daily_cost=Decimal(1000), idle_stop_minutes=100000)
    students = []
    for i, left in enumerate(remaining):
        person = make_person(session, course, name=f"Student {i}")
        ws = make_running(session, course.id, person.id, now, link=f"hw{i}")
        ws.instance_id = launch_instance(backend, ws.id, issue_agent_token(ws), grace_s)
        session.flush()
        x = lease_inputs(session, course.id, person.id, "running", now, prices)
        spent = CAP - x.storage_reserve - left
        session.add(SpendDaily(course_id=course.id, person_id=person.id, day=now.date(), compute=spent))
        session.flush()
        compute = prices.running_hourly(ws.instance_type)  # what the ledger meters: compute and public IPv4
        students.append(OutageStudent(person.id, ws.id, ws.instance_id, x.hourly, compute, spent, left))
    session.commit()
    return students


def flask_post(client: Any, tool_up: Callable[[], bool]) -> Callable[[str, dict[str, Any], str], tuple[int, Any]]:
    """The played agents' POST into the app under test; a ConnectionRefusedError while the tool is down."""

    def post(url: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
        if not tool_up():
            raise ConnectionRefusedError("the tool is down")
        resp = client.post(urlsplit(url).path, json=body, headers={"Authorization": f"Bearer {token}"})
        return resp.status_code, resp.get_json(silent=True) or {}

    return post


@dataclass
class OutageRun:
    """What the sim host did while the clock walked."""

    stops: dict[str, Stopped]
    ticks: int
    running_at_end: int
    wall_s: float
    idle_ticks: int = 0  # the ticks left once nothing ran: not played, each would have done nothing


def walk(host: SimHost, traveller: Any, start: datetime, hours: float, step: timedelta) -> OutageRun:
    """Tick the sim host every `step` of simulated time from `start` for `hours`; then count what still runs.

    A tick plays only the running instances, and nothing in an outage starts one (the scheduler and workers are
    down; the web app only answers the agents; the sim host only stops), so once a tick finds none running every
    later tick would play nothing: those are counted, not played, and the clock goes straight to the end, where
    the last tick and the count run as always.
    """
    stops: dict[str, Stopped] = {}
    end = start + timedelta(hours=hours)
    at, ticks, idle, began = start, 0, 0, time.perf_counter()
    while at <= end:
        if idle:
            idle += 1
        else:
            traveller.move_to(at)
            report = host.tick()
            for s in report.stopped:
                stops.setdefault(s.instance_id, s)
            ticks += 1
            idle = int(report.beats == 0)
        at += step
    traveller.move_to(end)
    host.tick()
    running = sum(1 for i in host.backend.describe_managed() if i.state == "running")
    return OutageRun(stops, ticks, running, time.perf_counter() - began, max(0, idle - 1))


def overshoot(student: OutageStudent, stopped_at: float, start: datetime) -> Decimal:
    """Dollars above the cap: the compute run since the start beyond what was left (negative: under the cap).

    `remaining` already set aside the disk's storage until term end and through the grace, so running adds only
    compute (and the public IPv4) to it.
    """
    hours = Decimal(str(max(0.0, stopped_at - start.timestamp()))) / 3600
    return student.compute_hourly * hours - student.remaining


def metered_until(session: Session, workspace_id: int) -> datetime:
    """The ledger's coverage of one workspace (unchanged while the sweep is down)."""
    return session.execute(text("SELECT metered_until FROM workspaces WHERE id = :i"), {"i": workspace_id}).scalar_one()
