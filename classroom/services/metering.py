"""Accrue the cost of every workspace since it was last metered, in one set-based statement.

Cost comes from the recorded state intervals (workspace_events) and the price table: compute while
running (and while stopping), storage for every second a volume exists (stopped and hibernated too).
Each workspace's period starts where the last one ended; (workspace, period start) is unique, so a
retried or duplicated sweep inserts nothing twice. Per-student daily totals are updated from exactly
the rows inserted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from classroom.models import Workspace, WorkspaceEvent
from classroom.sql.metering import ACCRUE_SQL, LATE_RUNNING_SQL
from classroom.workspaces.archive_rules import archive_run_end, archive_run_share
from config.prices import RegionPrices


@dataclass(frozen=True)
class AccrualResult:
    """How many workspaces got a new ledger entry."""

    entries: int


_ZONES: list[tuple[str, ...]] = []  # PostgreSQL's time zone names, read once per process


def known_time_zones(session: Session) -> tuple[str, ...]:
    """The time zone names PostgreSQL knows (pg_timezone_names costs ~50 ms, so it is read once per process)."""
    if not _ZONES:
        _ZONES.append(tuple(session.scalars(text("SELECT name FROM pg_timezone_names"))))
    return _ZONES[0]


def accrual_params(now: datetime, prices: RegionPrices, zones: tuple[str, ...] = ()) -> dict[str, object]:
    """ACCRUE_SQL's parameters: the time to accrue up to, the region's prices (running $/hour by type, public
    IPv4 included; disk per GB-hour) and the time zones PostgreSQL knows (a course in another one has its days
    counted in UTC)."""
    return {
        "zones": list(zones),
        "now": now,
        "prices": json.dumps({k: str(prices.running_hourly(k)) for k in prices.instance_hourly}),
        "gb_hour": str(prices.storage_hourly(1)),
    }


def accrue(session: Session, now: datetime, prices: RegionPrices) -> AccrualResult:
    """Write ledger entries up to `now` for every workspace (flushes; the caller commits)."""
    rows = session.execute(ACCRUE_SQL, accrual_params(now, prices, known_time_zones(session))).all()
    return AccrualResult(len(rows))


def _seconds(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / Decimal(1_000_000)


def _archive_run_end(session: Session, ws: Workspace) -> datetime | None:
    """The end of the workspace's start for the archive only, from its recorded events (None: none, or running)."""
    if ws.archive_started_at is None:
        return None
    events = session.execute(
        select(WorkspaceEvent.at, WorkspaceEvent.to_state).where(
            WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.at > ws.archive_started_at
        )
    ).all()
    return archive_run_end(ws.archive_started_at, [(at, state) for at, state in events])


def book_late_running(session: Session, ws: Workspace, since: datetime, now: datetime, prices: RegionPrices) -> bool:
    """A correction for `running` recorded late: AWS ran (and billed) the instance from `since`, but metering
    already counted [since, metered_until) in the state before, without compute. Books those seconds' compute
    (and public IPv4) once; (workspace, period start) is unique. The part inside a start for the archive only
    (from its request to the first stop or end after it, as ACCRUE_SQL counts it) is a course line instead. True
    if something was booked."""
    if since >= ws.metered_until or ws.instance_type not in prices.instance_hourly:
        return False
    hourly = prices.running_hourly(ws.instance_type)
    run_until = _archive_run_end(session, ws)
    course = _seconds(archive_run_share(since, ws.metered_until, ws.archive_started_at, run_until))
    secs = _seconds(ws.metered_until - since) - course
    if course > 0:
        from classroom.services.course_charges import Charge, book  # it reads this module's time zones

        line = Charge(ws.course_id, "archive_run", f"workspace {ws.id} late", since, ws.metered_until, course,
                      course * hourly / 3600)  # fmt: skip
        booked = book(session, [line], now) > 0
        if secs <= 0:
            return booked
    params = {
        "ws": ws.id,
        "course": ws.course_id,
        "person": ws.person_id,
        "start": since,
        "end": ws.metered_until,
        "secs": secs,
        "hourly": hourly,
        "now": now,
        "zones": list(known_time_zones(session)),
    }
    return session.execute(LATE_RUNNING_SQL, params).first() is not None
