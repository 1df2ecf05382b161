"""The workshop end pass (every minute): at the end every workspace stops, the walk-ins without the extension
lose access and their workspaces are archived and removed, and the organiser gets the report; when the extension
is over the rest goes the same way. Each step runs once (`ended_at`, `purged_at`), under the workshop's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.policy import money
from classroom.models import Enrollment, EnrollmentStatus, Workshop, WorkshopParticipant, Workspace
from classroom.notify import notify
from classroom.services.workshops import workshop_figures
from classroom.services.workspaces import Job, stop_workspaces_for_person
from classroom.workshops import plan_end
from provisioning.retire import request_retire


@dataclass
class WorkshopEndResult:
    """What one pass did."""

    ended: list[int] = field(default_factory=list)
    purged: list[int] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def run_workshop_ends(session: Session, now: datetime) -> WorkshopEndResult:
    """End and purge the workshops due at `now` (flushes; the caller commits, then releases the jobs)."""
    result = WorkshopEndResult()
    due = session.scalars(
        select(Workshop)
        .where(Workshop.purged_at.is_(None), Workshop.ends_at <= now)
        .order_by(Workshop.id)
        .with_for_update(skip_locked=True)
    ).all()
    for workshop in due:
        plan = plan_end(workshop.ends_at, workshop.extension_days, workshop.ended_at is not None, False, now)
        if plan.end:
            result.jobs += _end(session, workshop, now)
            result.ended.append(workshop.id)
        if plan.purge:
            result.jobs += _close_out(session, workshop, extension=True, now=now, reason="workshop extension over")
            workshop.purged_at = now
            append_event(session, "workshop.purged", course_id=workshop.course_id, subject=str(workshop.id))
            result.purged.append(workshop.id)
    session.flush()
    return result


def _participants(session: Session, workshop: Workshop, extension: bool | None) -> list[int]:
    query = select(WorkshopParticipant.person_id).where(WorkshopParticipant.workshop_id == workshop.id)
    if extension is not None:
        query = query.where(WorkshopParticipant.extension.is_(extension))
    return list(session.scalars(query))


def _end(session: Session, workshop: Workshop, now: datetime) -> list[Job]:
    """Stop every workspace; close out those without the extension; report to the organiser."""
    jobs: list[Job] = []
    for person_id in _participants(session, workshop, extension=True):
        jobs += stop_workspaces_for_person(session, workshop.course_id, person_id, reason="workshop ended",
                                           actor="workshop-end")  # fmt: skip
    jobs += _close_out(session, workshop, extension=False, now=now, reason="workshop ended")
    workshop.ended_at = now
    _report(session, workshop)
    append_event(session, "workshop.ended", course_id=workshop.course_id, subject=str(workshop.id))
    return jobs


def _close_out(
    session: Session, workshop: Workshop, *, extension: bool | None, now: datetime, reason: str
) -> list[Job]:
    """Stop, archive and remove these participants' workspaces and end their access."""
    people = _participants(session, workshop, extension)
    if not people:
        return []
    jobs: list[Job] = []
    for person_id in people:
        jobs += stop_workspaces_for_person(session, workshop.course_id, person_id, reason=reason, actor="workshop-end")
    rows = session.scalars(
        select(Workspace)
        .where(Workspace.course_id == workshop.course_id, Workspace.person_id.in_(people))
        .order_by(Workspace.id)
        .with_for_update()
    )
    for ws in rows:
        jobs += request_retire(session, ws, actor_person_id=None, actor="workshop-end", reason=reason, after=now)
    session.execute(
        update(Enrollment)
        .where(Enrollment.course_id == workshop.course_id, Enrollment.person_id.in_(people))
        .values(status=EnrollmentStatus.DROPPED)
    )
    return jobs


def _report(session: Session, workshop: Workshop) -> None:
    """The organiser's report, as a notification in their course and an email (the workshop page shows the same
    figures)."""
    f = workshop_figures(session, workshop)
    body = (
        f"{workshop.title} has ended.\n\nParticipants: {f.joined} of {f.max_participants}\n"
        f"Spend: {money(f.spent)} of {money(f.budget)} (average {money(f.average)}, highest {money(f.highest)})\n"
        f"Compute hours: {f.compute_hours.quantize(Decimal('0.1'))}\n"
    )
    if workshop.extension_days:
        body += (
            f"Kept learning: {f.extensions} participants keep their workspace for {workshop.extension_days} days, "
            f"out of the {money(f.allowance)} extension allowance; then their workspaces are archived and removed.\n"
        )
    body += "Every other workspace was stopped and is being archived and removed; the access code no longer works."
    notify(
        session,
        person_id=workshop.organiser_id,
        course_id=workshop.origin_course_id,
        subject=f"[Workshop] {workshop.title}: report",
        body=body,
    )  # fmt: skip  in the course it was made from


def close_workshops() -> dict[str, int]:
    """Every minute: run the workshop end pass (the job; provisioning.jobs keeps the queue plumbing)."""
    from classroom.db import utcnow
    from classroom.jobs.context import current

    with current().session() as session:
        result = run_workshop_ends(session, utcnow())
        session.commit()
    current().release(result.jobs)
    return {"ended": len(result.ended), "purged": len(result.purged), "jobs": len(result.jobs)}
