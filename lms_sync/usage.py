"""Usage passback: per student hours, spend and sessions, as a "Workspace usage" column with a readable comment.

`usage_source` is the one place the figures come from; it reads the budget ledger's daily totals
(spend_daily: compute + storage, running seconds) and counts sessions as starts into `running`.
Point it elsewhere and everything else stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import (
    CoursePolicy,
    Enrollment,
    EnrollmentStatus,
    LineItemKind,
    LmsLineItem,
    SpendDaily,
    StaffLevel,
    Workspace,
    WorkspaceEvent,
)
from classroom.workspaces.lifecycle import WorkspaceState
from lms_sync.grades import enter_grade
from lms_sync.line_items import USAGE_LABEL, USAGE_TAG

USAGE_POINTS = Decimal(100)  # the column's nominal maximum; the score is hours, the comment says everything


@dataclass(frozen=True)
class Usage:
    """One student's figures so far."""

    hours: Decimal = Decimal(0)
    spend: Decimal = Decimal(0)
    sessions: int = 0


def usage_source(session: Session, course_id: int) -> dict[int, Usage]:
    """Per person: running hours and spend from the ledger's daily totals, sessions from workspace starts."""
    totals = session.execute(
        select(
            SpendDaily.person_id,
            func.sum(SpendDaily.running_seconds),
            func.sum(SpendDaily.compute + SpendDaily.storage),
        )
        .where(SpendDaily.course_id == course_id)
        .group_by(SpendDaily.person_id)
    ).all()
    sessions = dict(
        session.execute(
            select(Workspace.person_id, func.count(WorkspaceEvent.id))
            .join(WorkspaceEvent, WorkspaceEvent.workspace_id == Workspace.id)
            .where(Workspace.course_id == course_id, WorkspaceEvent.to_state == WorkspaceState.RUNNING)
            .group_by(Workspace.person_id)
        ).all()
    )
    out = {
        pid: Usage(Decimal(secs or 0) / 3600, Decimal(spent or 0), int(sessions.get(pid, 0)))
        for pid, secs, spent in totals
    }
    for pid, count in sessions.items():
        out.setdefault(pid, Usage(sessions=int(count)))
    return out


def _money(value: Decimal) -> str:
    return "$" + str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def usage_comment(usage: Usage, budget: Decimal | None) -> str:
    """'... 12.5 hours in 9 sessions; $4.18 spent of the $24.00 budget.' (pure; no date, so unchanged usage is
    not posted again)"""
    hours = usage.hours.quantize(Decimal("0.1"), ROUND_HALF_UP)
    sessions = f"{usage.sessions} session{'s' if usage.sessions != 1 else ''}"
    spend = f"{_money(usage.spend)} spent" + (f" of the {_money(budget)} budget" if budget is not None else "")
    return f"Cloud Workstation usage: {hours} hours in {sessions}; {spend}."


def usage_score(usage: Usage) -> Decimal:
    """The score posted: hours to two decimals."""
    return usage.hours.quantize(Decimal("0.01"), ROUND_HALF_UP)


def usage_line_item(session: Session, course_id: int) -> LmsLineItem:
    """The course's "Workspace usage" column (created in the LMS by the passback job on first use)."""
    item = session.scalar(
        select(LmsLineItem).where(LmsLineItem.course_id == course_id, LmsLineItem.kind == LineItemKind.USAGE)
    )
    if item is None:
        item = LmsLineItem(
            course_id=course_id,
            url="",
            label=USAGE_LABEL,
            score_maximum=USAGE_POINTS,
            tag=USAGE_TAG,
            kind=LineItemKind.USAGE,
            resource_link_id="",
        )
        session.add(item)
        session.flush()
    return item


def stage_usage(session: Session, course_id: int) -> int:
    """Turn each active student's usage into a grade on the usage column; returns how many changed."""
    policy = session.get(CoursePolicy, course_id)
    item = usage_line_item(session, course_id)
    figures = usage_source(session, course_id)
    students = session.scalars(
        select(Enrollment.person_id).where(
            Enrollment.course_id == course_id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    ).all()
    changed = 0
    for person_id in students:
        usage = figures.get(person_id, Usage())
        comment = usage_comment(usage, policy.budget_per_student if policy else None)
        if enter_grade(
            session,
            item=item,
            person_id=person_id,
            score=usage_score(usage),
            comment=comment,
            actor_person_id=None,
            audit=False,
        ):
            changed += 1
    if changed:
        append_event(session, "usage.staged", course_id=course_id, details={"students": changed})
    return changed
