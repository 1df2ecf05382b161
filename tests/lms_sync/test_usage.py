"""Usage passback: hours and spend per student from the ledger, posted nightly as a comment on each opened
assignment's score (the grade left as it is) or as a separate "Workspace usage" column."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import (
    CourseLms,
    CoursePolicy,
    LmsGrade,
    LmsLineItem,
    Person,
    SpendDaily,
    Workspace,
    WorkspaceEvent,
    WorkspaceFolder,
)
from classroom.workspaces.lifecycle import WorkspaceState
from lms_sync.context import lti_services
from lms_sync.grades import enter_grade
from lms_sync.jobs import passback_course, post_usage_nightly
from lms_sync.line_items import refresh_line_items
from lms_sync.roster_sync import sync_roster
from tests.lms_sync.conftest import run_jobs


def setup_usage(session, lms, course, lms_ctx, *, enabled=True, mode="column"):
    for n in range(3):
        lms.add(f"s{n}", "student", name=f"Student {n}")
    sync_roster(session, course.course_id, lms=lti_services(session, lms_ctx, course.course_id))
    people = {p.sub: p.id for p in session.scalars(select(Person).where(Person.sub.like("s%")))}
    session.add(
        CoursePolicy(
            course_id=course.course_id,
            budget_per_student=Decimal(24),
            total_budget=Decimal(72),
            templates={},
            default_template="ml-cpu-student",
            max_daily_cost=Decimal(2),
        )
    )
    session.get(CourseLms, course.course_id).usage_passback = enabled
    session.get(CourseLms, course.course_id).usage_mode = mode
    ws = Workspace(
        course_id=course.course_id,
        person_id=people["s0"],
        link_key="hw1",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.STOPPED,
    )
    session.add(ws)
    session.flush()
    for _ in range(3):  # three sessions
        session.add(
            WorkspaceEvent(
                workspace_id=ws.id, at=utcnow(), from_state=WorkspaceState.STARTING, to_state=WorkspaceState.RUNNING
            )
        )
    session.add(
        SpendDaily(
            course_id=course.course_id,
            person_id=people["s0"],
            day=date(2024, 9, 2),
            compute=Decimal("0.52"),
            storage=Decimal("0.08"),
            running_seconds=Decimal(4 * 3600),
        )
    )
    session.add(
        SpendDaily(
            course_id=course.course_id,
            person_id=people["s0"],
            day=date(2024, 9, 3),
            compute=Decimal("0.26"),
            storage=Decimal("0.08"),
            running_seconds=Decimal(5400),
        )
    )
    session.commit()
    return people


def test_nightly_usage_posts_hours_spend_and_sessions_once(session, redis, lms, course, lms_ctx):
    setup_usage(session, lms, course, lms_ctx)
    assert post_usage_nightly() == 1
    run_jobs(redis)
    usage_items = [i for i in lms.line_items.values() if i["label"] == "Workspace usage"]
    assert len(usage_items) == 1 and usage_items[0]["tag"] == "cwc-usage"
    bodies = {a.body["userId"]: a.body for a in lms.accepted()}
    assert sorted(bodies) == ["s0", "s1", "s2"]
    assert bodies["s0"]["scoreGiven"] == 5.5 and bodies["s0"]["scoreMaximum"] == 100
    assert bodies["s0"]["comment"] == (
        "Cloud Workstation usage: 5.5 hours in 3 sessions; $0.94 spent of the $24.00 budget."
    )
    assert bodies["s1"]["comment"].startswith("Cloud Workstation usage: 0.0 hours in 0 sessions; $0.00 spent")
    # the next night, nothing changed: nothing is posted again
    assert post_usage_nightly() == 0
    run_jobs(redis)
    assert len(lms.accepted()) == 3


def test_usage_mode_is_a_comment_on_assignments_by_default_and_passback_is_off(session, lms, course):
    lms_row = session.get(CourseLms, course.course_id)
    assert lms_row.usage_passback is False and lms_row.usage_mode == "comment"


def open_assignment(session, course_id, person_id, link_key):
    """A workspace of the student's with the assignment's folder (as opening it from the link records)."""
    ws = session.scalar(select(Workspace).where(Workspace.course_id == course_id, Workspace.person_id == person_id))
    if ws is None:
        ws = Workspace(
            course_id=course_id,
            person_id=person_id,
            link_key="template:ml-cpu-student",
            template_id="ml-cpu-student",
            instance_type="t3.medium",
            volume_gb=30,
            region="us-east-1",
            state=WorkspaceState.STOPPED,
        )
        session.add(ws)
        session.flush()
    session.add(WorkspaceFolder(workspace_id=ws.id, link_key=link_key, title=link_key, folder=f"homework/{link_key}"))
    session.flush()


def test_comment_mode_posts_usage_on_opened_assignments_without_changing_the_grade(
    session, redis, lms, course, lms_ctx
):
    people = setup_usage(session, lms, course, lms_ctx, mode="comment")
    hw1 = lms.add_line_item("Homework 1", 10, resource_link_id="link-hw1")
    hw2 = lms.add_line_item("Homework 2", 10, resource_link_id="link-hw2")
    lms.add_line_item("Homework 3", 10, resource_link_id="link-hw3")  # nobody opened it
    refresh_line_items(session, course.course_id, lti_services(session, lms_ctx, course.course_id), lms.lineitems_url)
    items = {i.resource_link_id: i for i in session.scalars(select(LmsLineItem))}
    open_assignment(session, course.course_id, people["s0"], "link-hw1")
    open_assignment(session, course.course_id, people["s0"], "link-hw2")
    open_assignment(session, course.course_id, people["s1"], "link-hw1")
    enter_grade(session, item=items["link-hw1"], person_id=people["s1"], score=8, comment="Good", actor_person_id=None)
    session.commit()
    assert passback_course(course.course_id)["posted"] == 1  # s1's grade, before any usage
    graded = len(lms.accepted())

    assert post_usage_nightly() == 1
    run_jobs(redis)
    posts = {(a.line_item, a.body["userId"]): a.body for a in lms.accepted()[graded:]}
    assert sorted(posts) == [(hw1, "s0"), (hw1, "s1"), (hw2, "s0")]
    comment_only = posts[(hw1, "s0")]
    assert "scoreGiven" not in comment_only and "scoreMaximum" not in comment_only
    assert comment_only["gradingProgress"] == "NotReady" and comment_only["activityProgress"] == "InProgress"
    assert comment_only["comment"] == "Workspace usage: 5.5 h, $0.94" == posts[(hw2, "s0")]["comment"]
    assert comment_only["https://canvas.instructure.com/lti/submission"] == {"new_submission": False}
    regraded = posts[(hw1, "s1")]  # the grade entered in the tool is sent again as it was
    assert (
        regraded["scoreGiven"] == 8.0
        and regraded["scoreMaximum"] == 10
        and regraded["gradingProgress"] == "FullyGraded"
    )
    assert regraded["comment"] == "Good\nWorkspace usage: 0.0 h, $0.00"
    assert not any(i["label"] == "Workspace usage" for i in lms.line_items.values())
    s1_grade = session.scalar(select(LmsGrade).where(LmsGrade.person_id == people["s1"]))
    session.refresh(s1_grade)
    assert (s1_grade.score_given, s1_grade.comment) == (8, "Good")  # the tool's grade row is unchanged too

    # unchanged usage is not posted again; new usage is posted only where it changed
    assert post_usage_nightly() == 0
    session.add(
        SpendDaily(
            course_id=course.course_id,
            person_id=people["s1"],
            day=date(2024, 9, 4),
            compute=Decimal("0.50"),
            storage=Decimal(0),
            running_seconds=Decimal(3600),
        )
    )
    session.commit()
    assert post_usage_nightly() == 1
    run_jobs(redis)
    latest = lms.accepted()[graded + 3 :]
    assert [(a.line_item, a.body["userId"], a.body["scoreGiven"], a.body["comment"]) for a in latest] == [
        (hw1, "s1", 8.0, "Good\nWorkspace usage: 1.0 h, $0.50")
    ]


def test_usage_is_not_posted_unless_the_instructor_turned_it_on(session, redis, lms, course, lms_ctx):
    setup_usage(session, lms, course, lms_ctx, enabled=False)
    assert post_usage_nightly() == 0
    run_jobs(redis)
    assert not lms.scores and not any(i["label"] == "Workspace usage" for i in lms.line_items.values())
