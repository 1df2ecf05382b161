"""The lease on a running instance: how long its agent may keep it running without hearing from the tool again.

`lease_decision` is pure; `lease_for` loads what it needs for one workspace. The lease ends at the earliest of
now + LEASE, the instant the student's remaining budget (cap − spent − storage reserve − what the ledger has
not metered yet) is used up at the rate of everything the student runs, and the end of the term. The agent
schedules a poweroff at lease_until and postpones it only when a later answer carries a later lease, so when the
tool (web, worker or scheduler) is down the instance stops by itself within one lease.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from classroom.budget.disk_end import DiskEnd, disk_reserve
from classroom.budget.hours import hours_between
from classroom.budget.policy import term_end_at
from classroom.sql.workspaces import LEASE_DISKS_SQL, LEASE_STUDENT_SQL
from classroom.workspaces.archive_rules import spared
from classroom.workspaces.lifecycle import BILLING_DISK, UP_IN_AWS, WorkspaceState
from config.prices import PriceError, RegionPrices

DEFAULT_LEASE = timedelta(minutes=15)
RUNNING_STATES = frozenset(s.value for s in UP_IN_AWS - {WorkspaceState.STOPPING})  # meant to be running


@dataclass(frozen=True)
class LeaseInputs:
    """What the decision needs about one workspace and its student (money in dollars, Decimal)."""

    state: str
    cap: Decimal | None  # None: no policy or no price — fail closed
    spent: Decimal
    storage_reserve: Decimal
    unmetered: Decimal  # cost since the ledger's metered_until, every live workspace of the student
    hourly: Decimal  # the student's running rate: compute and storage of everything running
    term_end_at: datetime | None
    archiving_until: datetime | None = None  # started for its home's archive only (term over, budget aside)


@dataclass(frozen=True)
class LeaseAnswer:
    """The heartbeat answer's money part: stop now, or keep running until lease_until at most."""

    stop: bool
    lease_until: datetime
    reason: str = ""


def lease_decision(now: datetime, lease: timedelta, x: LeaseInputs) -> LeaseAnswer:
    """Stop now (not meant to run, no budget left, term over, cannot be priced) or run until the lease ends."""
    if x.state not in RUNNING_STATES:
        return LeaseAnswer(True, now, f"workspace is {x.state}")
    if spared(x.archiving_until, now):  # the course pays for a bounded window; then it stops regardless
        assert x.archiving_until is not None
        return LeaseAnswer(False, min(now + lease, x.archiving_until), "archiving the home")
    if x.cap is None:
        return LeaseAnswer(True, now, "the budget cannot be evaluated")
    if x.term_end_at is not None and x.term_end_at <= now:
        return LeaseAnswer(True, now, "term over")
    remaining = x.cap - x.spent - x.storage_reserve - x.unmetered
    if remaining <= 0:
        return LeaseAnswer(True, now, "budget used up")
    until = now + lease
    if x.hourly > 0:
        until = min(until, now + timedelta(seconds=float(remaining * 3600 / x.hourly)))
    if x.term_end_at is not None:
        until = min(until, x.term_end_at)
    return LeaseAnswer(False, until)


def student_row(session: Session, course_id: int, person_id: int, now: datetime) -> Row[Any]:
    """The student's budget, spend and term in the course (LEASE_STUDENT_SQL), with the course's other settings
    a heartbeat answers with: read once, then handed to `lease_inputs` and to the heartbeat's other parts."""
    return session.execute(LEASE_STUDENT_SQL, {"course": course_id, "person": person_id, "now": now}).one()


def lease_inputs(
    session: Session,
    course_id: int,
    person_id: int,
    state: str,
    now: datetime,
    prices: RegionPrices | None,
    row: Row[Any] | None = None,
) -> LeaseInputs:
    """Load the student's cap, spend, storage reserve, unmetered cost and running rate (no prices: cap None);
    `row`: the student's row already read by `student_row`."""
    if row is None:
        row = student_row(session, course_id, person_id, now)
    end, zone_known = term_end_at(row.term_end, row.time_zone)
    end = row.restored_until or end  # a restored student's term ends later (classroom.services.restores)
    hours_left = hours_between(now, end) if end else Decimal(0)
    # the sweep's and the launch check's reserve: each disk to term end, then through the grace (disk_reserve)
    disk_end = DiskEnd(row.disk_grace_days, row.archive_retention_days) if end and row.has_policy else None
    cap: Decimal | None = None if row.budget is None or prices is None else row.budget + row.granted
    if not zone_known:  # the term's end cannot be placed: fail closed, as the sweep does
        cap = None
    if prices is None:
        return LeaseInputs(state, None, row.spent, Decimal(0), Decimal(0), Decimal(0), end)
    reserve = unmetered = hourly = Decimal(0)
    for w in session.execute(LEASE_DISKS_SQL, {"course": course_id, "person": person_id}):
        storage = prices.storage_hourly(w.volume_gb)
        rate = storage
        if WorkspaceState(w.state) in UP_IN_AWS:  # an instance that may run costs compute
            try:
                rate += prices.running_hourly(w.instance_type)
            except PriceError:
                cap = None
                continue
            hourly += rate
        reserve += disk_reserve(prices, w.volume_gb, hours_left, disk_end)
        if WorkspaceState(w.state) in BILLING_DISK:  # a requested one's disk is reserved, not yet billed
            unmetered += rate * hours_between(w.metered_until, now)
    return LeaseInputs(state, cap, row.spent, reserve, unmetered, hourly, end)


def lease_for(
    session: Session,
    course_id: int,
    person_id: int,
    state: str,
    now: datetime,
    prices: RegionPrices | None,
    lease: timedelta,
    *,
    archiving_until: datetime | None = None,
    row: Row[Any] | None = None,
) -> LeaseAnswer:
    """The heartbeat's answer for one workspace (`row`: the student's row already read by `student_row`)."""
    inputs = lease_inputs(session, course_id, person_id, state, now, prices, row)
    return lease_decision(now, lease, replace(inputs, archiving_until=archiving_until))
