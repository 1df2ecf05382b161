"""Usage passback: hours, spend and sessions per student from the ledger, posted nightly as "Workspace usage"."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import CourseLms, CoursePolicy, Person, SpendDaily, Workspace, WorkspaceEvent
from classroom.workspaces.lifecycle import WorkspaceState
from lms_sync.context import lti_services
from lms_sync.jobs import post_usage_nightly
from lms_sync.roster_sync import sync_roster
from tests.lms_sync.conftest import run_jobs


def setup_usage(session, lms, course, lms_ctx, *, enabled=True):
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


def test_usage_is_not_posted_unless_the_instructor_turned_it_on(session, redis, lms, course, lms_ctx):
    setup_usage(session, lms, course, lms_ctx, enabled=False)
    assert post_usage_nightly() == 0
    run_jobs(redis)
    assert not lms.scores and not any(i["label"] == "Workspace usage" for i in lms.line_items.values())
