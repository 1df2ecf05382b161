"""Rules that hold whatever the options: term over, enrollment inactive, unknown zone, unpriced rows (fail closed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from classroom.budget.setup_form import SetupValues
from classroom.models import AuditEvent, CoursePolicy, Enrollment, EnrollmentStatus, Workspace
from classroom.roles import StaffLevel
from classroom.services.budgets import decide_launch, save_policy
from classroom.services.enforcement import run_sweep
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.term_end import run_term_end, term_end_instant
from tests.support.budget import APPROVED_CS229, make_policy, make_running
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
ACTIONS = {"stop_all": True, "archive": True, "revoke_access": True, "final_report": True, "delete_all_data": False}


def _course(session, *, auto_close: bool = True, **course):  # type: ignore[no-untyped-def]
    values = {"time_zone": "America/Los_Angeles", "term_start": date(2024, 8, 26), "term_end": date(2024, 12, 13)}
    c = make_course(session, **(values | course))
    make_policy(session, c, auto_close=auto_close, term_end_actions=ACTIONS)
    owner = make_person(session, c, name="Jennifer Martinez", level=StaffLevel.OWNER)
    return c, owner


def _state(session, ws):  # type: ignore[no-untyped-def]
    session.expire_all()
    row = session.get(Workspace, ws.id)
    return row.state, row.desired_state


def test_term_end_with_auto_close_off_still_stops_everything_but_archives_nothing(session):
    course, _ = _course(session, auto_close=False)
    emily, david = make_person(session, course), make_person(session, course)
    end = term_end_instant(course).astimezone(UTC)
    a = make_running(session, course.id, emily.id, end - timedelta(hours=3))
    b = make_running(session, course.id, david.id, end - timedelta(hours=3))
    session.commit()
    assert run_sweep(session, end - timedelta(minutes=1), PRICES).stopped == []
    result = run_sweep(session, end + timedelta(seconds=30), PRICES)
    session.commit()
    assert sorted(result.stopped) == sorted([a.id, b.id])
    assert _state(session, a) == (S.STOPPING, DesiredState.HIBERNATED)
    codes = session.scalars(
        select(AuditEvent.details["code"].astext).where(AuditEvent.action == "workspace.enforced_stop")
    ).all()
    assert codes == ["term_over", "term_over"]
    closing = run_term_end(session, end + timedelta(minutes=10))
    assert closing.closed == [] and closing.jobs == []  # archive, revoke and report stay options


def test_a_workspace_restarted_after_closure_is_stopped_by_the_next_sweep(session):
    course, _ = _course(session)
    emily = make_person(session, course)
    end = term_end_instant(course).astimezone(UTC)
    closed = run_term_end(session, end + timedelta(minutes=5))
    session.commit()
    assert closed.closed == [course.id]
    ws = make_running(session, course.id, emily.id, end + timedelta(hours=2))  # started again (say, in AWS)
    session.commit()
    assert run_sweep(session, end + timedelta(hours=2, seconds=50), PRICES).stopped == [ws.id]


def test_a_term_extended_after_closure_reopens(session):
    course, owner = _course(session)
    emily = make_person(session, course)
    end = term_end_instant(course).astimezone(UTC)
    run_term_end(session, end + timedelta(minutes=5))
    session.commit()
    policy = session.get(CoursePolicy, course.id)
    assert policy.closed_at is not None
    catalog = load_catalog()
    refused = decide_launch(session, course, emily.id, "ml-cpu-student", catalog=catalog, prices=PRICES)
    assert refused.code == "term_ended"
    later = date.today() + timedelta(days=30)
    values = SetupValues(
        term_start=date(2024, 8, 26),
        term_end=later,
        time_zone=course.time_zone,
        auto_close=True,
        expected_students=50,
        budget_per_student=policy.budget_per_student,
        total_budget=policy.total_budget,
        budget_source="IT",
        templates=dict(APPROVED_CS229),
        default_template="ml-cpu-student",
        max_concurrent=1,
        max_daily_cost=policy.max_daily_cost,
        idle_stop_minutes=240,
        shared_materials=False,
        term_end_actions=ACTIONS,
    )
    save_policy(session, course, values, owner.id)
    session.commit()
    session.expire_all()
    assert session.get(CoursePolicy, course.id).closed_at is None
    assert session.scalar(select(func.count()).where(AuditEvent.action == "course.reopened")) == 1
    allowed = decide_launch(session, course, emily.id, "ml-cpu-student", catalog=catalog, prices=PRICES)
    assert allowed.allowed, allowed.message


def test_launch_is_refused_after_term_end_whatever_auto_close_says(session):
    course, _ = _course(session, auto_close=False)
    emily = make_person(session, course)
    after = term_end_instant(course).astimezone(UTC) + timedelta(seconds=1)
    decision = decide_launch(
        session, course, emily.id, "ml-cpu-student", catalog=load_catalog(), prices=PRICES, now=after
    )
    assert not decision.allowed and decision.code == "term_ended"


def test_one_unpriced_workspace_is_stopped_and_does_not_stop_enforcement_of_the_others(session):
    now = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
    course, _ = _course(session)
    other_course, _ = _course(session)
    emily, david = make_person(session, course), make_person(session, other_course)
    odd = make_running(session, course.id, emily.id, now - timedelta(minutes=5), instance_type="x9.imaginary")
    fine = make_running(session, course.id, emily.id, now - timedelta(minutes=5), link="hw2")
    idle = make_running(session, other_course.id, david.id, now - timedelta(hours=5))  # idle past 240 minutes
    session.commit()
    result = run_sweep(session, now, PRICES)
    session.commit()
    assert sorted(result.stopped) == sorted([odd.id, idle.id])  # fail closed for one row; the rules for the rest
    assert _state(session, fine)[0] is S.RUNNING
    codes = dict(
        session.execute(
            select(AuditEvent.subject, AuditEvent.details["code"].astext).where(
                AuditEvent.action == "workspace.enforced_stop"
            )
        ).all()
    )
    assert codes == {str(odd.id): "unpriced", str(idle.id): "idle"}


def test_an_unknown_time_zone_stops_that_course_only(session):
    now = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
    broken, _ = _course(session, time_zone="Mars/Olympus_Mons")
    fine, _ = _course(session)
    emily, david = make_person(session, broken), make_person(session, fine)
    a = make_running(session, broken.id, emily.id, now - timedelta(minutes=5))
    b = make_running(session, fine.id, david.id, now - timedelta(minutes=5))
    session.commit()
    result = run_sweep(session, now, PRICES)  # accrual and positions both survive the unknown zone
    session.commit()
    assert result.stopped == [a.id] and _state(session, b)[0] is S.RUNNING


def test_a_dropped_student_is_stopped_by_the_sweep(session):
    now = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
    course, _ = _course(session)
    emily = make_person(session, course)
    ws = make_running(session, course.id, emily.id, now - timedelta(minutes=5))
    enrollment = session.scalar(select(Enrollment).where(Enrollment.person_id == emily.id))
    enrollment.status = EnrollmentStatus.DROPPED
    session.commit()
    assert run_sweep(session, now, PRICES).stopped == [ws.id]


def test_a_row_locked_elsewhere_never_blocks_the_sweep(session, engine):
    now = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
    course, _ = _course(session)
    emily, david = make_person(session, course), make_person(session, course)
    busy = make_running(session, course.id, emily.id, now - timedelta(hours=5))  # both idle past the limit
    free = make_running(session, course.id, david.id, now - timedelta(hours=5))
    session.commit()
    with engine.connect() as other:  # say, a job holding the row
        other.execute(select(Workspace.id).where(Workspace.id == busy.id).with_for_update())
        result = run_sweep(session, now, PRICES)
        session.commit()
        assert result.stopped == [free.id] and result.accrued == 1
        other.rollback()
    later = run_sweep(session, now + timedelta(minutes=1), PRICES)  # the busy row's turn, nothing lost
    session.commit()
    assert later.stopped == [busy.id]
    assert session.get(Workspace, busy.id).metered_until == now + timedelta(minutes=1)
