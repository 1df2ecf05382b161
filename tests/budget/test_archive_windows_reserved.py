"""An open start for the archive only is reserved in the course position until its window ends: a second start (or
a student's launch, or the sweep) judges the remainder with the first one's window taken, and the starts of one
course are judged one at a time under the policy row's lock. Real moto, PostgreSQL and Redis."""

# ruff: noqa: F811 - the fixture `cloud` is imported from its module
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from classroom.db import make_session_factory
from classroom.models import CourseCharge, CoursePolicy, Workspace
from classroom.services.course_money import course_positions
from classroom.services.metering import accrue
from classroom.workspaces.archive_rules import ARCHIVE_WINDOW, window_cost
from provisioning.archive_start import start_for_archive
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import start_workspace
from provisioning.term_end import term_end_instant
from tests.budget.test_archive_before_term_end import PRICES, _fresh, _stopped_by_the_student
from tests.budget.test_disks_end import cloud  # noqa: F401 - a fixture
from tests.support.factories import make_person

HALF_HOUR = Decimal(ARCHIVE_WINDOW // timedelta(seconds=1)) / 3600


def _committed(session, course_id: int, now: datetime) -> Decimal:  # type: ignore[no-untyped-def]
    session.expire_all()
    (position,) = course_positions(session, now, PRICES, course_id)
    return position.committed


def _two_stopped_after_term(session, course, emily, clock) -> tuple[Workspace, Workspace, datetime]:  # type: ignore[no-untyped-def]
    sophie = make_person(session, course, name="Sophie Martin")
    session.commit()
    a = _stopped_by_the_student(session, course, emily)
    b = _stopped_by_the_student(session, course, sophie)
    after = term_end_instant(course).astimezone(UTC) + timedelta(seconds=1)
    clock.move_to(after)
    return a, b, after


def _leave_room_for_one(session, course_id: int, ws: Workspace, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """The course total covers one start's check (its whole window) but not a second one once the first's running
    is reserved."""
    cost = window_cost(PRICES.running_hourly(ws.instance_type), PRICES.storage_hourly(ws.volume_gb))
    total = _committed(session, course_id, now) + cost + PRICES.running_hourly(ws.instance_type) / 4
    session.get(CoursePolicy, course_id).total_budget = total.quantize(Decimal("0.0001"))
    session.commit()


def test_an_open_window_is_reserved_and_its_metered_part_is_not_counted_twice(cloud, session):
    course, emily, clock = cloud
    a, b, now = _two_stopped_after_term(session, course, emily, clock)
    accrue(session, now, PRICES)  # the ledger is up to date when the start is judged
    session.commit()
    before = _committed(session, course.id, now)
    assert start_for_archive(session, a.id, now, PRICES)
    running = PRICES.running_hourly(a.instance_type)
    assert _committed(session, course.id, now) - before == running * HALF_HOUR  # the whole window, not yet metered
    start_workspace(a.id)
    reconcile_workspaces()
    later = now + timedelta(minutes=10)
    clock.move_to(later)
    unmetered = _committed(session, course.id, later)
    accrue(session, later, PRICES)
    session.commit()
    run = session.scalars(select(CourseCharge.amount).where(CourseCharge.kind == "archive_run")).all()
    assert len(run) == 1 and run[0] > 0  # the course's line for the ten minutes
    metered = _committed(session, course.id, later)
    # The ten minutes' running moved from the reserve to the course's line; what grew is the two disks' storage
    # booked to the students for them, also still in the grace reserve (over, never under).
    storage = (PRICES.storage_hourly(a.volume_gb) + PRICES.storage_hourly(b.volume_gb)) / 6
    assert Decimal(0) <= metered - unmetered <= storage + Decimal("0.000001")


def test_a_second_start_is_refused_when_the_first_window_takes_the_remainder(cloud, session):
    course, emily, clock = cloud
    a, b, now = _two_stopped_after_term(session, course, emily, clock)
    _leave_room_for_one(session, course.id, a, now)
    assert start_for_archive(session, a.id, now, PRICES)  # its window fits
    assert start_for_archive(session, b.id, now + timedelta(minutes=1), PRICES) == []  # a's window is taken
    b = _fresh(session, b.id)
    assert b.archiving_until is None and b.archive_failed_at is not None and b.state.value == "stopped"
    assert _fresh(session, a.id).archiving_until == now + ARCHIVE_WINDOW


def test_two_starts_at_once_are_judged_one_after_the_other(cloud, session, engine):
    course, emily, clock = cloud
    a, b, now = _two_stopped_after_term(session, course, emily, clock)
    _leave_room_for_one(session, course.id, a, now)
    sessions = make_session_factory(engine)
    holder = sessions()
    holder.execute(select(CoursePolicy).where(CoursePolicy.course_id == course.id).with_for_update())
    started: dict[int, bool] = {}

    def start(ws_id: int) -> None:
        with sessions() as s:
            started[ws_id] = bool(start_for_archive(s, ws_id, now, PRICES))

    threads = [threading.Thread(target=start, args=(w.id,)) for w in (a, b)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both are waiting on the policy row's lock (or, without it, both judged the same remainder)
    holder.commit()
    holder.close()
    for t in threads:
        t.join(30)
    assert sorted(started.values()) == [False, True]
    windows = [_fresh(session, w.id).archiving_until for w in (a, b)]
    assert sum(w is not None for w in windows) == 1
