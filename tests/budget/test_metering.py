"""The ledger: exact accrual from state intervals, idempotent under duplicate and concurrent sweeps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.models import LedgerEntry, SpendDaily, SpendTotal, Workspace, WorkspaceEvent
from classroom.services.metering import accrue
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from tests.support.factories import make_course, make_person

S = WorkspaceState
T0 = datetime(2024, 10, 15, 14, 0, tzinfo=UTC)
PRICES = load_prices().region("us-east-1")


def _workspace(session, course, person, history):  # type: ignore[no-untyped-def]
    ws = Workspace(
        course_id=course.id,
        person_id=person.id,
        link_key="hw3",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=history[-1][1],
        created_at=T0,
        state_changed_at=T0 + history[-1][0],
        metered_until=T0,
    )
    session.add(ws)
    session.flush()
    previous = None
    for offset, state in history:
        session.add(WorkspaceEvent(workspace_id=ws.id, at=T0 + offset, from_state=previous, to_state=state))
        previous = state
    session.commit()
    return ws


def _spent(session) -> Decimal:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.sum(LedgerEntry.compute + LedgerEntry.storage))) or Decimal(0)


def test_accrual_follows_state_intervals_exactly(session):
    course = make_course(session, time_zone="America/Los_Angeles")
    person = make_person(session, course)
    _workspace(
        session,
        course,
        person,
        [
            (timedelta(0), S.REQUESTED),
            (timedelta(seconds=10), S.PROVISIONING),
            (timedelta(seconds=70), S.RUNNING),
            (timedelta(seconds=3670), S.STOPPED),
        ],
    )
    accrue(session, T0 + timedelta(hours=2, seconds=70), PRICES)
    session.commit()
    entry = session.scalar(select(LedgerEntry))
    assert entry.running_seconds == Decimal(3600)
    assert entry.compute == Decimal("0.0466")  # one hour of t3.medium and its public IPv4
    disk_seconds = 2 * 3600 + 60  # from provisioning (volume exists) to the sweep, stopped time included
    assert abs(entry.storage - PRICES.storage_hourly(30) * disk_seconds / 3600) < Decimal("1E-11")
    day = session.scalar(select(SpendDaily))
    assert day.day.isoformat() == "2024-10-15" and day.compute == entry.compute  # course-local day


def test_repeated_and_concurrent_sweeps_never_count_twice(session, engine):
    course = make_course(session)
    people = [make_person(session, course, name=f"Student {n}") for n in range(5)]
    for p in people:
        _workspace(session, course, p, [(timedelta(0), S.REQUESTED), (timedelta(seconds=5), S.RUNNING)])
    now = T0 + timedelta(minutes=30)
    accrue(session, now, PRICES)
    session.commit()
    once = _spent(session)
    factory = make_session_factory(engine)

    def sweep(_: int) -> None:
        with factory() as s:
            accrue(s, now, PRICES)
            s.commit()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(sweep, range(8)))
    assert _spent(session) == once
    assert session.scalar(select(func.count(LedgerEntry.id))) == 5
    daily = session.scalar(select(func.sum(SpendDaily.compute + SpendDaily.storage)))
    assert daily == once
    assert _totals(session) == _daily_sums(session)  # the triggers kept spend_totals in step


def test_later_sweeps_continue_where_the_last_one_ended(session):
    course = make_course(session)
    person = make_person(session, course)
    _workspace(session, course, person, [(timedelta(0), S.RUNNING)])
    for minute in range(1, 61):
        accrue(session, T0 + timedelta(minutes=minute), PRICES)
        session.commit()
    entries = session.scalars(select(LedgerEntry).order_by(LedgerEntry.period_start)).all()
    assert len(entries) == 60
    assert all(a.period_end == b.period_start for a, b in zip(entries, entries[1:], strict=False))
    total = sum(e.compute for e in entries)
    assert abs(total - Decimal("0.0466")) < Decimal("1E-9")  # sixty one-minute entries lose nothing visible


def _totals(session) -> dict[tuple[int, int], Decimal]:  # type: ignore[no-untyped-def]
    return {(t.course_id, t.person_id): t.spent for t in session.scalars(select(SpendTotal)) if t.spent}


def _daily_sums(session) -> dict[tuple[int, int], Decimal]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(SpendDaily.course_id, SpendDaily.person_id, func.sum(SpendDaily.compute + SpendDaily.storage)).group_by(
            SpendDaily.course_id, SpendDaily.person_id
        )
    )
    return {(c, p): v for c, p, v in rows if v}


def test_spend_totals_follow_every_write_to_spend_daily(session):
    """Inserts (ORM and accrual upserts), updates and deletes of spend_daily all reach spend_totals."""
    course = make_course(session)
    a, b = make_person(session, course, name="Emily"), make_person(session, course, name="David")
    day = T0.date()
    session.add_all(
        [
            SpendDaily(course_id=course.id, person_id=a.id, day=day, compute=Decimal("1.25"), storage=Decimal("0.05")),
            SpendDaily(course_id=course.id, person_id=a.id, day=day + timedelta(days=1), compute=Decimal(2), storage=0),
            SpendDaily(course_id=course.id, person_id=b.id, day=day, compute=Decimal("0.5"), storage=Decimal(0)),
        ]
    )
    session.flush()
    assert _totals(session) == {(course.id, a.id): Decimal("3.30"), (course.id, b.id): Decimal("0.50")}
    row = session.get(SpendDaily, (course.id, a.id, day))
    row.compute += Decimal("0.70")
    session.flush()
    assert _totals(session)[(course.id, a.id)] == Decimal("4.00")
    session.delete(session.get(SpendDaily, (course.id, b.id, day)))
    session.flush()
    assert (course.id, b.id) not in _totals(session)  # zero: nothing left for David
    _workspace(session, course, b, [(timedelta(0), S.RUNNING)])
    accrue(session, T0 + timedelta(minutes=90), PRICES)  # upserts spend_daily, as every sweep does
    session.commit()
    assert _totals(session) == _daily_sums(session)
    assert _totals(session)[(course.id, b.id)] > 0
