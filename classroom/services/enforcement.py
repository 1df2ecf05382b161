"""The minute's sweep: accrue the ledger, plan enforcement, apply it in bulk. A constant number of statements.

Stops are recorded as intent (desired `hibernated`) and claimed as `stopping` in the same transaction (with
events and audit entries); the cloud calls run as jobs after the commit, and reconcile issues them again until
AWS reports the instance down. Rows locked elsewhere are skipped (next minute), never waited for.
Alerts are recorded once (alerts_sent) and delivered as notifications.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from classroom.audit import NewEvent, append_events
from classroom.budget.disk_end import DiskEnd, disk_reserve
from classroom.budget.enforcement import (
    COURSE_PERSON,
    ONCE,
    Alert,
    Plan,
    RunningWorkspace,
    StudentPosition,
    idle_limit,
    plan_enforcement,
)
from classroom.budget.hours import hours_between
from classroom.budget.policy import money, term_end_at
from classroom.jobs.names import STOP_WORKSPACE
from classroom.services.alerts import deliver_alerts
from classroom.services.course_money import course_positions
from classroom.services.metering import accrue, known_time_zones
from classroom.services.restores import restored_ends
from classroom.services.workspaces import Job
from classroom.sql.sweep import POSITIONS_SQL, RECORD_ALERTS_SQL, RUNNING_SQL, SENT_SQL, STOP_SQL
from classroom.workspaces.archive_rules import spared
from classroom.workspaces.lifecycle import SWEEP_STOPS, WorkspaceState
from config.catalog import load_catalog
from config.prices import PriceError, RegionPrices

log = logging.getLogger(__name__)
LOCK_TIMEOUT = "5s"


@dataclass
class SweepResult:
    """What one sweep did."""

    accrued: int = 0
    students: int = 0
    stopped: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    positions: list[StudentPosition] = field(default_factory=list, repr=False)  # what the plan was made from


def _hours_left(end: datetime | None, now: datetime) -> Decimal:
    """Exact Decimal hours (no float on the money path)."""
    return hours_between(now, end) if end is not None else Decimal(0)


def _idle_limits() -> dict[str, int]:
    """Each template's own idle limit; a workspace's limit is the smaller of it and the course's."""
    return {t.id: t.idle_stop_minutes for t in load_catalog().templates}


def _hourly(prices: RegionPrices, instance_type: str) -> Decimal | None:
    """The running rate (compute and public IPv4), or None when the type cannot be priced (stopped: fail closed)."""
    try:
        return prices.running_hourly(instance_type)
    except PriceError:
        return None


def load_positions(session: Session, now: datetime, prices: RegionPrices) -> list[StudentPosition]:
    """Every student with spend or a live workspace: running workspaces' rates (None when unpriced), and what
    their disks will still cost them to term end and through the grace (reserved, so the cap also holds for
    stopped disks and what follows the term; the archives' retention is the course's, not theirs)."""
    running: dict[tuple[int, int], list[tuple[int, Decimal | None, datetime, str]]] = {}
    reserve: dict[tuple[int, int], Decimal] = {}
    terms: dict[tuple[date | None, str], tuple[datetime | None, bool]] = {}  # per term end and zone, not per row
    for r in session.execute(RUNNING_SQL):
        key = (r.course_id, r.person_id)
        storage = prices.storage_hourly(r.volume_gb)
        end, _ = terms.setdefault((r.term_end, r.time_zone), term_end_at(r.term_end, r.time_zone))
        disk_end = DiskEnd(r.grace_days, r.retention_days) if end is not None else None
        reserve[key] = reserve.get(key, Decimal(0)) + disk_reserve(prices, r.volume_gb, _hours_left(end, now), disk_end)
        if WorkspaceState(r.state) in SWEEP_STOPS and not spared(r.archiving_until, now):  # archive-only: spared
            hourly = _hourly(prices, r.instance_type)
            running.setdefault(key, []).append(
                (r.id, None if hourly is None else hourly + storage, r.active, r.template_id)
            )
    positions = []
    idle = _idle_limits()
    restored = restored_ends(session, now)  # a restored student's term ends later (classroom.services.restores)
    for r in session.execute(POSITIONS_SQL, {"now": now, "zones": list(known_time_zones(session))}):
        key = (r.course_id, r.person_id)
        ws = tuple(
            RunningWorkspace(i, h, a, idle_limit(r.idle_minutes, idle.get(t, r.idle_minutes)))
            for i, h, a, t in running.get(key, [])
        )
        end, zone_ok = terms.setdefault((r.term_end, r.time_zone), term_end_at(r.term_end, r.time_zone))
        positions.append(
            StudentPosition(
                r.course_id,
                r.person_id,
                r.cap,
                r.spent,
                r.spent_today,
                r.daily_cap,
                r.today,
                ws,
                storage_reserve=reserve.get(key, Decimal(0)),
                term_end=restored.get(key, end),
                enrolled=r.enrolled,
                zone_known=zone_ok and r.zone_ok,
            )
        )
    return positions


def run_sweep(session: Session, now: datetime, prices: RegionPrices) -> SweepResult:
    """Meter, plan and apply (flushes; the caller commits, then enqueues result.jobs)."""
    # JIT compilation costs more than these set-based statements save (half a second at 10,000 workspaces);
    # a lock held elsewhere fails this minute's sweep after a few seconds instead of stalling it (and the next)
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    result = SweepResult(accrued=accrue(session, now, prices).entries)
    positions = load_positions(session, now, prices)
    since = min((p.today for p in positions), default=now.date())
    sent = {
        (r.course_id, r.person_id, r.kind, r.day) for r in session.execute(SENT_SQL, {"once": ONCE, "since": since})
    }
    courses = course_positions(session, now, prices)
    plan = plan_enforcement(positions, now, sent, courses)
    result.students, result.positions = len(positions), positions
    _apply_stops(session, plan, now, result)
    if plan.alerts:  # in a savepoint: a delivery failure must never undo the stops; alerts retry next minute
        alerted = {(a.course_id, a.person_id) for a in plan.alerts}
        figures = {
            (p.course_id, p.person_id): (money(p.spent), money(p.cap))
            for p in positions
            if (p.course_id, p.person_id) in alerted
        }
        figures |= {(c.course_id, COURSE_PERSON): (money(c.committed), money(c.total)) for c in courses}
        try:
            with session.begin_nested():
                _record_alerts(session, plan, now, result)
                deliver_alerts(session, result.alerts, figures)
        except Exception:  # noqa: BLE001 - logged; enforcement itself must go on
            log.exception("budget alerts could not be delivered; they will be retried")
            result.alerts = []
    return result


def _apply_stops(session: Session, plan: Plan, now: datetime, result: SweepResult) -> None:
    if not plan.stops:
        return
    by_id = {s.workspace_id: s for s in plan.stops}
    rows = session.execute(
        STOP_SQL, {"now": now, "ids": list(by_id), "rid": list(by_id), "reasons": [s.reason for s in by_id.values()]}
    ).all()
    result.stopped = [r.workspace_id for r in rows]
    session.expire_all()  # rows changed behind the ORM's back
    result.jobs = [Job(STOP_WORKSPACE, i) for i in result.stopped]
    append_events(
        session,
        [
            NewEvent(
                "workspace.enforced_stop",
                course_id=by_id[i].course_id,
                subject=str(i),
                details={"code": by_id[i].code, "reason": by_id[i].reason, "person": by_id[i].person_id},
            )
            for i in result.stopped
        ],
    )


def _record_alerts(session: Session, plan: Plan, now: datetime, result: SweepResult) -> None:
    if not plan.alerts:
        return
    rows = session.execute(
        RECORD_ALERTS_SQL,
        {
            "courses": [a.course_id for a in plan.alerts],
            "people": [a.person_id for a in plan.alerts],
            "kinds": [a.kind for a in plan.alerts],
            "days": [a.day for a in plan.alerts],
            "ats": [now] * len(plan.alerts),
        },
    ).all()
    fresh = {(r.course_id, r.person_id, r.kind, r.day) for r in rows}
    result.alerts = [a for a in plan.alerts if (a.course_id, a.person_id, a.kind, a.day) in fresh]


__all__ = ["SweepResult", "load_positions", "run_sweep"]
