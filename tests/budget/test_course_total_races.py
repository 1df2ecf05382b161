"""The course total under concurrent Starts: two students' Starts are judged one after the other against the
course's remainder (the course policy row's lock, `lock_for_start`), and a requested workspace's disk is already
committed (COMMITTED_DISK), so the second Start sees the first one's disk. Real PostgreSQL, two sessions."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from classroom.budget.disk_end import DiskEnd
from classroom.budget.policy import commitment, hours_until_term_end, option
from classroom.db import make_session_factory, utcnow
from classroom.models import Course, Workspace
from classroom.services.budgets import student_money
from classroom.services.opening import Link, open_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")
CATALOG = load_catalog()
TEMPLATE = CATALOG.get("ml-cpu-student")
HW1 = Link("hw1", "HW1", assignment=True)


def _course(session, now: datetime, **extra) -> tuple[Course, int, int, Decimal]:  # type: ignore[no-untyped-def]
    """A course whose total fits one Start's commitment, not two (the per-student budgets would fit both)."""
    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=30), **extra)
    assert TEMPLATE is not None
    need = commitment(
        option(TEMPLATE, PRICES), hours_until_term_end(course.term_end, "UTC", now), new_disk=True, end=DiskEnd(14, 365)
    )
    make_policy(session, course, total_budget=(need.total * 3 / 2).quantize(Decimal("0.01")))
    emily, david = make_person(session, course), make_person(session, course, name="David Kim")
    session.commit()
    return course, emily.id, david.id, need.total


def test_a_requested_workspaces_disk_is_already_reserved(session):
    course, emily, _david, _need = _course(session, utcnow())
    before = student_money(session, course, emily, utcnow(), PRICES)
    opened = open_workspace(session, course, emily, HW1, TEMPLATE, catalog=CATALOG, prices=PRICES, region="us-east-1")
    session.commit()
    assert opened.ws is not None and opened.ws.state is WorkspaceState.REQUESTED
    after = student_money(session, course, emily, utcnow(), PRICES)
    assert before is not None and after is not None and before.reserved == 0
    assert after.reserved > Decimal(2)  # 30 GB for 30 days and the 14-day grace, before the job made the disk


def test_two_students_starting_at_once_cannot_both_fit_the_courses_last_remainder(engine, session):
    course, emily, david, _need = _course(session, utcnow())
    factory = make_session_factory(engine)
    first = factory()
    try:
        mine = first.get(Course, course.id)
        held = open_workspace(first, mine, emily, HW1, TEMPLATE, catalog=CATALOG, prices=PRICES, region="us-east-1")
        assert held.ws is not None  # allowed; its transaction still holds the course's lock
        codes: list[str] = []

        def david_starts() -> None:
            with factory() as s:
                c = s.get(Course, course.id)
                opened = open_workspace(s, c, david, HW1, TEMPLATE, catalog=CATALOG, prices=PRICES, region="us-east-1")
                s.commit()
                codes.append("ok" if opened.ws is not None else opened.decision.code)  # type: ignore[union-attr]

        other = threading.Thread(target=david_starts)
        other.start()
        other.join(1.0)
        assert other.is_alive() and codes == []  # David's Start waits for Emily's to commit
        first.commit()
    finally:
        first.close()
    other.join(30)
    assert codes == ["course_budget"]  # judged after Emily's, whose requested disk is committed
    session.expire_all()
    assert [w.person_id for w in session.scalars(select(Workspace))] == [emily]


def test_a_start_and_a_set_up_copy_at_once_both_finish(engine, session):
    """A Start holds the course's policy row, then inserts its workspace, which takes a key-share lock on the course
    row (the foreign key). A set-up copy locks the course row, then the policy row. Were the copy's course lock a
    full FOR UPDATE, each would wait for the other and PostgreSQL would abort one (a 500); it is FOR NO KEY UPDATE,
    which key-share locks pass."""
    from classroom.models import Enrollment
    from classroom.roles import StaffLevel
    from classroom.services.budgets import lock_for_start
    from classroom.services.next_term import duplicate_course

    fall = make_course(session)
    make_policy(session, fall)
    owner = make_person(session, fall, name="Jennifer Martinez", level=StaffLevel.OWNER)
    winter, emily, _david, _need = _course(session, utcnow(), platform=fall.platform)
    session.add(Enrollment(course_id=winter.id, person_id=owner.id, lti_roles=[], level=StaffLevel.OWNER))
    session.commit()
    factory = make_session_factory(engine)
    outcome: list[str] = []

    def copy() -> None:
        with factory() as s:
            try:
                term = (date.today(), date.today() + timedelta(days=30))
                duplicate_course(s, fall.id, s.get(Course, winter.id), actor_id=owner.id, term=term, staff=False,
                                 overwrite=True)  # fmt: skip
                s.commit()
                outcome.append("copied")
            except Exception as exc:  # a deadlock would land here
                outcome.append(type(exc).__name__)

    start = factory()
    try:
        lock_for_start(start, winter.id, emily)  # the Start's first step: the course's money is now held
        other = threading.Thread(target=copy)
        other.start()
        other.join(1.0)  # the copy has its course lock and waits for the policy row
        assert other.is_alive(), outcome
        mine = start.get(Course, winter.id)
        opened = open_workspace(start, mine, emily, HW1, TEMPLATE, catalog=CATALOG, prices=PRICES, region="us-east-1")
        start.commit()
    finally:
        start.close()
    other.join(30)
    assert opened.ws is not None and outcome == ["copied"]


def test_the_start_button_waits_for_the_courses_money_lock(app, client, canvas, session, engine):
    """POST /app/workspaces/<id>/start takes the course's lock before the workspace row: while another Start holds
    it, the button's request waits, then starts the workspace."""
    from classroom.services.course_money import lock_course_money
    from tests.provisioning.test_workspace_web import _form, _running_workspace

    emily, ws = _running_workspace(client, canvas, session)
    ws.state = WorkspaceState.STOPPED
    session.commit()
    holder = make_session_factory(engine)()
    answers: list[int] = []
    try:
        lock_course_money(holder, ws.course_id)  # another Start of the course, not yet committed
        button = threading.Thread(
            target=lambda: answers.append(
                client.post(f"/app/workspaces/{ws.id}/start", data=_form(app, emily)).status_code
            )
        )
        button.start()
        button.join(1.0)
        assert button.is_alive() and answers == []  # waiting for the course's lock
    finally:
        holder.rollback()
        holder.close()
    button.join(30)
    session.refresh(ws)
    assert answers == [303] and ws.state is WorkspaceState.STARTING
