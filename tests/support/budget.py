"""Build courses with a policy and students with spend for budget tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from classroom.models import Course, CoursePolicy, Workspace, WorkspaceEvent
from classroom.workspaces.lifecycle import WorkspaceState

APPROVED_CS229 = {
    "ml-cpu-student": "approved",
    "ml-final-project": "on_request",
    "gpu-ml-workstation": "blocked",
    "ubuntu-basic": "approved",
}


def make_policy(session: Session, course: Course, **overrides: object) -> CoursePolicy:
    values: dict[str, object] = dict(
        course_id=course.id,
        budget_per_student=Decimal(24),
        total_budget=Decimal(1200),
        budget_source="University IT",
        templates=dict(APPROVED_CS229),
        default_template="ml-cpu-student",
        max_concurrent=1,
        max_daily_cost=Decimal(5),
        idle_stop_minutes=240,
        integrity={},
        term_end_actions={},
    )
    values.update(overrides)
    policy = CoursePolicy(**values)
    session.add(policy)
    session.flush()
    return policy


def make_running(
    session: Session,
    course_id: int,
    person_id: int,
    since: datetime,
    *,
    last_active: datetime | None = None,
    instance_type: str = "t3.medium",
    link: str = "hw",
) -> Workspace:
    ws = Workspace(
        course_id=course_id,
        person_id=person_id,
        link_key=link,
        template_id="ml-cpu-student",
        instance_type=instance_type,
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.RUNNING,
        instance_id=f"i-{course_id}-{person_id}-{link}",
        created_at=since,
        state_changed_at=since,
        metered_until=since,
        last_activity_at=last_active or since,
    )
    session.add(ws)
    session.flush()
    session.add(WorkspaceEvent(workspace_id=ws.id, at=since, from_state=None, to_state=WorkspaceState.RUNNING))
    session.flush()
    return ws


def ensure_policies(session: Session, **overrides: object) -> None:
    """Give every course without a policy the CS229 one (courses made by launches in web tests)."""
    from sqlalchemy import select

    for course in session.scalars(select(Course).where(~Course.id.in_(select(CoursePolicy.course_id)))):
        make_policy(session, course, **overrides)
    session.commit()


SETUP_FORM = {
    "term_start": "2024-08-26",
    # a term that ends in 100 days: a new disk commits its storage until term end, so a term years long would
    # (rightly) refuse every launch on a $24 budget
    "term_end": (date.today() + timedelta(days=100)).isoformat(),
    "time_zone": "America/Los_Angeles",
    "auto_close": "on",
    "expected_students": "50",
    "budget_per_student": "24.00",
    "total_budget": "1200.00",
    "budget_source": "IT",
    "template_ml-cpu-student": "approved",
    "template_ml-final-project": "on_request",
    "template_gpu-ml-workstation": "blocked",
    "template_ubuntu-basic": "approved",
    "default_template": "ml-cpu-student",
    "max_concurrent": "1",
    "max_daily_cost": "5",
    "idle_stop_minutes": "240",
}  # the seed's CS 229 set-up, as the wizard posts it
