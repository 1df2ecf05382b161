"""The agent's lease holds back what the sweep and the launch check hold back: each disk's storage to term end and
through the course's grace, in exact Decimal hours. A lease that left out the grace would let an instance run,
while the tool is down, on money the disk's last days are already promised."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from classroom.db import utcnow
from classroom.services.budgets import student_money
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from provisioning.lease import lease_inputs
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")


def test_the_lease_reserves_the_disks_as_the_sweep_does(session):
    course = make_course(session, time_zone="America/Los_Angeles", term_end=date.today() + timedelta(days=30))
    make_policy(session, course, disk_grace_days=14)
    emily = make_person(session, course)
    make_running(session, course.id, emily.id, utcnow() - timedelta(hours=1))
    make_running(session, course.id, emily.id, utcnow() - timedelta(hours=2), link="final")
    requested = make_running(session, course.id, emily.id, utcnow() - timedelta(hours=3), link="hw3")
    requested.state = WorkspaceState.REQUESTED  # its disk is coming: reserved, nothing billed yet
    session.commit()
    now = utcnow()
    lease = lease_inputs(session, course.id, emily.id, "running", now, PRICES)
    money = student_money(session, course, emily.id, now, PRICES)
    assert money is not None and lease.storage_reserve == money.reserved  # the same Decimal, to the last digit
    three_graces = PRICES.storage_hourly(30) * 24 * 14 * 3  # the grace of the three 30 GB disks
    assert lease.storage_reserve > three_graces > Decimal(3)
    billed = PRICES.running_hourly("t3.medium") + PRICES.storage_hourly(30)
    assert lease.hourly == 2 * billed  # the requested one runs nothing yet
