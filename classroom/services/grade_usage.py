"""Fetch each student's usage and grade for the grade correlation export (four statements whatever the class size)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.budget.grade_usage import GradeUsage
from classroom.models import Course, LineItemKind, LmsGrade, LmsLineItem, Workspace, WorkspaceEvent
from classroom.services.reports import course_report
from classroom.workspaces.lifecycle import WorkspaceState


def grade_usage_rows(session: Session, course: Course) -> list[GradeUsage] | None:
    """Every student of the cost report with their starts and assignment scores; None when not set up."""
    report = course_report(session, course)
    if report is None:
        return None
    sessions = dict(
        session.execute(
            select(Workspace.person_id, func.count(WorkspaceEvent.id))
            .join(WorkspaceEvent, WorkspaceEvent.workspace_id == Workspace.id)
            .where(Workspace.course_id == course.id, WorkspaceEvent.to_state == WorkspaceState.RUNNING)
            .group_by(Workspace.person_id)
        ).all()
    )
    grades = {
        p: (Decimal(pts), Decimal(mx), int(n))
        for p, pts, mx, n in session.execute(
            select(LmsGrade.person_id, func.sum(LmsGrade.score_given), func.sum(LmsGrade.score_maximum), func.count())
            .join(LmsLineItem, LmsLineItem.id == LmsGrade.line_item_id)
            .where(
                LmsGrade.course_id == course.id,
                LmsGrade.score_given.is_not(None),
                LmsLineItem.kind == LineItemKind.ASSIGNMENT,
            )
            .group_by(LmsGrade.person_id)
        ).all()
    }
    return [
        GradeUsage(
            r.person_id,
            r.name,
            r.email,
            r.running_seconds,
            r.spent,
            int(sessions.get(r.person_id, 0)),
            *grades.get(r.person_id, (Decimal(0), Decimal(0), 0)),
        )  # fmt: skip
        for r in report.rows
    ]
