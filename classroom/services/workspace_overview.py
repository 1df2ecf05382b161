"""What staff see per student in a course: live workspaces and spend so far (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.models import SpendDaily, Workspace
from classroom.workspaces.lifecycle import LIVE, intent_note


@dataclass(frozen=True)
class StudentRow:
    """What staff see for one student: live workspaces and spend so far."""

    workspaces: tuple[tuple[int, str, str, str], ...]  # (id, observed state, instance type, intent note)
    spent: Decimal


def student_overview(session: Session, course_id: int) -> dict[int, StudentRow]:
    """Per person in a course: live workspaces and total spend (two queries, whatever the class size)."""
    live: dict[int, list[tuple[int, str, str, str]]] = {}
    for ws in session.scalars(
        select(Workspace).where(Workspace.course_id == course_id, Workspace.state.in_(LIVE)).order_by(Workspace.id)
    ):
        note = intent_note(ws.desired_state, ws.state, ws.stop_attempts)
        live.setdefault(ws.person_id, []).append((ws.id, ws.state.value, ws.instance_type, note))
    spent = dict(
        session.execute(
            select(SpendDaily.person_id, func.sum(SpendDaily.spent))
            .where(SpendDaily.course_id == course_id)
            .group_by(SpendDaily.person_id)
        ).all()
    )
    people = set(live) | set(spent)
    return {p: StudentRow(tuple(live.get(p, [])), Decimal(spent.get(p) or 0)) for p in people}
