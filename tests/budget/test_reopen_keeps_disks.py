"""Reopening a closed course (its term moved past now) keeps the disks the closure marked to end: their marks and
archive tries are forgotten, so the retire flow leaves them and the next term end archives them anew; a disk a
student or staff member asked to delete earlier keeps its own mark. Real moto, PostgreSQL and Redis."""

# ruff: noqa: F811 - the fixtures `cloud` and `agent_host` are imported from their modules
from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import select

from classroom.budget.setup_form import SetupValues
from classroom.models import AuditEvent, CoursePolicy, Enrollment, Platform, Workspace
from classroom.roles import StaffLevel
from classroom.services.budgets import save_policy
from classroom.services.next_term import duplicate_course
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import start_workspace, stop_workspace
from provisioning.retire import request_retire, retire_workspace
from provisioning.term_end import term_end_instant
from tests.budget.test_agent_archive import agent_host  # noqa: F401 - a fixture
from tests.budget.test_archive_before_term_end import _close, _fresh, _stopped_by_the_student
from tests.budget.test_disks_end import _volumes, cloud  # noqa: F401 - a fixture
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState


def _extend_term(session, course, days: int, grace: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """The owner moves the term end `days` later in the set-up wizard (and sets the grace, if given)."""
    owner = session.scalar(
        select(Enrollment.person_id).where(Enrollment.course_id == course.id, Enrollment.level == StaffLevel.OWNER)
    )
    policy = session.get(CoursePolicy, course.id)
    values = SetupValues(
        term_start=course.term_start, term_end=course.term_end + timedelta(days=days), time_zone=course.time_zone,
        auto_close=True, expected_students=policy.expected_students, budget_per_student=policy.budget_per_student,
        total_budget=policy.total_budget, budget_source="IT", templates=dict(policy.templates),
        default_template=policy.default_template, max_concurrent=policy.max_concurrent,
        max_daily_cost=policy.max_daily_cost, idle_stop_minutes=policy.idle_stop_minutes, shared_materials=False,
        term_end_actions=dict(policy.term_end_actions),
        disk_grace_days=policy.disk_grace_days if grace is None else grace,
    )  # fmt: skip
    save_policy(session, course, values, owner)
    session.commit()


def test_reopening_keeps_the_disks_the_closure_marked_and_only_those(cloud, session, backend):
    course, emily, clock = cloud
    sophie = make_person(session, course, name="Sophie Martin")
    session.commit()
    kept = _stopped_by_the_student(session, course, emily)
    asked = _stopped_by_the_student(session, course, sophie)
    locked = session.scalar(select(Workspace).where(Workspace.id == asked.id).with_for_update())
    student_mark = term_end_instant(course).astimezone(UTC) + timedelta(days=3)  # before the closure's own mark
    request_retire(session, locked, actor_person_id=sophie.id, actor="student", reason="done with it",
                   after=student_mark)  # fmt: skip
    session.commit()
    after = _close(session, course, clock)  # the closure marks every disk; its retire jobs ran
    grace = session.get(CoursePolicy, course.id).disk_grace_days
    assert _fresh(session, kept.id).retire_after == after + timedelta(days=grace)
    assert _fresh(session, asked.id).retire_after == student_mark  # the earlier mark stays (min)

    _extend_term(session, course, 30)

    ws = _fresh(session, kept.id)
    assert ws.retire_after is None and ws.archive_failed_at is None and ws.archive_tries == 0
    assert _fresh(session, asked.id).retire_after == student_mark
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "course.reopened")).all()
    assert (event.details["disks_kept"], event.details["archive_runs_stopped"]) == (1, 0)
    clock.move_to(after + timedelta(days=grace + 1))  # past the old grace: the retire flow leaves the disk
    assert retire_workspace(kept.id) == "nothing"
    assert _fresh(session, kept.id).state is S.STOPPED and _volumes(backend, kept.id)


def test_a_grace_changed_after_the_closure_does_not_hide_its_marks(cloud, session, backend):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    _close(session, course, clock)
    assert _fresh(session, ws.id).retire_by == "term-end"
    _extend_term(session, course, 0, grace=30)  # still closed: only the grace changes
    assert _fresh(session, ws.id).retire_after is not None
    _extend_term(session, course, 30)  # now reopened
    ws = _fresh(session, ws.id)
    assert (ws.retire_after, ws.retire_by) == (None, None)


def test_a_run_for_the_archive_only_is_stopped_when_the_course_reopens(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    _close(session, course, clock)
    assert retire_workspace(ws.id) == "await-archive"  # started for its archive only, its student locked out
    start_workspace(ws.id)
    reconcile_workspaces()
    ws = _fresh(session, ws.id)
    assert ws.state is S.RUNNING and ws.archive_started_at is not None and ws.locked_out_at is not None

    _extend_term(session, course, 30)

    ws = _fresh(session, ws.id)
    assert ws.desired_state is DesiredState.STOPPED and ws.state is S.STOPPING  # the course stops paying for it
    assert ws.locked_out_at is None and ws.archiving_until is None and ws.retire_after is None
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "course.reopened")).all()
    assert event.details["archive_runs_stopped"] == 1
    reconcile_workspaces()  # reconcile issues the stop; the stop job ends the run
    stop_workspace(ws.id)
    reconcile_workspaces()
    assert _fresh(session, ws.id).state is S.STOPPED


def test_copying_a_set_up_over_a_closed_course_reopens_its_workspaces_too(cloud, session, backend):
    course, emily, clock = cloud
    ws = _stopped_by_the_student(session, course, emily)
    _close(session, course, clock)
    owner = session.scalar(
        select(Enrollment.person_id).where(Enrollment.course_id == course.id, Enrollment.level == StaffLevel.OWNER)
    )
    platform = session.get(Platform, course.platform_id)  # the same LMS
    source = make_course(session, platform=platform, context_id="cs229-spring", time_zone=course.time_zone)
    make_policy(session, source)
    session.add(Enrollment(course_id=source.id, person_id=owner, level=StaffLevel.OWNER))
    session.commit()
    start = course.term_end + timedelta(days=10)
    duplicate_course(session, source.id, course, actor_id=owner, term=(start, start + timedelta(days=90)),
                     staff=False, overwrite=True)  # fmt: skip
    session.commit()
    ws = _fresh(session, ws.id)
    assert (ws.retire_after, ws.retire_by) == (None, None)
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "course.duplicated")).all()
    assert event.details["disks_kept"] == 1
