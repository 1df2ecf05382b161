"""Term end: warnings 24 hours and 10 minutes before, then stop all, archive, revoke access and a final report, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from classroom.models import AuditEvent, Course, CoursePolicy, Notification, SpendDaily, SshKey, Workspace
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.ssh_keys import add_key, generate_key_pair
from provisioning.term_end import run_term_end, term_end_instant
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person

ACTIONS = {"stop_all": True, "archive": True, "revoke_access": True, "final_report": True, "delete_all_data": False}


def _course(session):  # type: ignore[no-untyped-def]
    course = make_course(
        session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
    )
    make_policy(session, course, term_end_actions=ACTIONS)
    owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    emily = make_person(session, course, name="Emily Chen")
    return course, owner, emily


def test_term_end_is_the_end_of_the_last_day_in_course_time(session):
    course, _, _ = _course(session)
    assert term_end_instant(course).astimezone(UTC) == datetime(2024, 12, 14, 7, 59, 59, 999999, tzinfo=UTC)


def test_warning_an_hour_before_then_everything_closes_once(session):
    course, owner, emily = _course(session)
    ws = make_running(session, course.id, emily.id, datetime(2024, 12, 13, 20, 0, tzinfo=UTC))
    add_key(session, person_id=emily.id, course_id=course.id, public_key=generate_key_pair("e")[1], source="uploaded")
    session.add(
        SpendDaily(
            course_id=course.id,
            person_id=emily.id,
            day=date(2024, 12, 1),
            compute=Decimal("22.80"),
            storage=Decimal(0),
            running_seconds=Decimal(3600 * 100),
        )
    )
    session.commit()
    end = term_end_instant(course).astimezone(UTC)
    assert run_term_end(session, end - timedelta(hours=25)).warned == 0
    assert run_term_end(session, end - timedelta(hours=2)).warned == 1  # 24 hours before (the pass ran late)
    assert run_term_end(session, end - timedelta(hours=1)).warned == 0
    warn = run_term_end(session, end - timedelta(minutes=10))
    session.commit()
    assert warn.warned == 1 and run_term_end(session, end - timedelta(minutes=5)).warned == 0
    warned = session.scalars(select(Notification.person_id).where(Notification.subject.like("%term ends in%"))).all()
    assert warned == [emily.id, emily.id]  # the student, once per threshold; never the staff
    closed = run_term_end(session, end + timedelta(seconds=1))
    session.commit()
    assert closed.closed == [course.id]
    assert sorted(j.func.rsplit(".", 1)[1] for j in closed.jobs) == ["retire_workspace", "stop_workspace"]
    session.expire_all()
    assert session.get(Workspace, ws.id).state is WorkspaceState.STOPPING
    assert session.scalar(select(func.count(SshKey.id)).where(SshKey.revoked_at.is_(None))) == 0  # keys first
    assert session.get(Workspace, ws.id).agent_token_revoked_at is None  # the agent must still learn that
    session.get(Workspace, ws.id).state = WorkspaceState.STOPPED  # the instance has stopped (reconcile saw it)
    session.commit()
    assert run_term_end(session, end + timedelta(minutes=10)).tokens_revoked == 1
    session.commit()
    session.expire_all()
    assert session.get(Workspace, ws.id).agent_token_revoked_at is not None
    assert session.get(Workspace, ws.id).retire_after == end + timedelta(seconds=1, days=14)  # the grace period
    report = session.scalar(select(Notification.body).where(Notification.person_id == owner.id))
    assert "Total spent: $22.80 (1.9 %)" in report and "Total compute hours: 100.0 h" in report
    assert session.get(CoursePolicy, course.id).closed_at is not None
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "course.closed")) == 1
    again = run_term_end(session, end + timedelta(hours=1))
    assert again.closed == [] and again.jobs == []


def test_courses_close_in_one_lock_order_whatever_order_postgres_keeps_them(session):
    """Two passes at once must lock courses in the same order, or they can deadlock on two courses' policy rows."""
    first, _, _ = _course(session)
    second, _, _ = _course(session)
    session.commit()
    for course in (second, first):  # a rewritten row moves behind the others in the heap: `first` is now last
        session.execute(update(Course).where(Course.id == course.id).values(label=Course.label))
        session.execute(update(CoursePolicy).where(CoursePolicy.course_id == course.id).values(auto_close=True))
    session.commit()
    closed = run_term_end(session, term_end_instant(first).astimezone(UTC) + timedelta(seconds=1))
    assert closed.closed == [first.id, second.id]
