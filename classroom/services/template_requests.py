"""Template requests: a student asks for an on-request template, an instructor approves or denies it.

Each step is audited and the other side is notified; the launch decision reads the outcome through
`classroom.services.budgets.request_state`.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import Course, CoursePolicy, RequestStatus, TemplateRequest
from classroom.notify import notify, notify_instructors
from classroom.services.budgets import BudgetError
from classroom.services.request_context import request_context, template_name
from config.catalog import Catalog, load_catalog
from config.prices import RegionPrices

REASON_MAX = 2000  # a template request's reason: what an instructor reads (Text column; a readable bound)
NOTE_MAX = 1000  # an instructor's note on a decision


def ask_for_template(
    session: Session,
    course: Course,
    person_id: int,
    template_id: str,
    reason: str,
    *,
    catalog: Catalog | None = None,
    prices: RegionPrices | None = None,
) -> TemplateRequest:
    """A student asks to use an approved-on-request template; instructors are notified (with the student's spend
    and the projection when `prices` is given)."""
    reason = " ".join(reason.split())
    if len(reason) < 10:
        raise BudgetError("Say in a sentence why you need this workspace (at least 10 characters).")
    if len(reason) > REASON_MAX:
        raise BudgetError(f"Keep the reason to {REASON_MAX:,} characters (this one has {len(reason):,}).")
    policy = session.get(CoursePolicy, course.id)
    if policy is None or policy.templates.get(template_id) != "on_request":
        raise BudgetError("This template cannot be requested in this course.")
    body = _request_body(session, course, person_id, template_id, reason, catalog or load_catalog(), prices)
    row_id = session.scalar(
        insert(TemplateRequest)
        .values(
            course_id=course.id,
            person_id=person_id,
            template_id=template_id,
            reason=reason,
            status=RequestStatus.PENDING,
            created_at=utcnow(),
            note="",
        )
        .on_conflict_do_nothing(
            index_elements=["course_id", "person_id", "template_id"],
            index_where=TemplateRequest.status == RequestStatus.PENDING,
        )
        .returning(TemplateRequest.id)
    )
    if row_id is None:
        raise BudgetError("You already asked for this template; your instructor will answer soon.")
    append_event(
        session,
        "template.requested",
        actor_person_id=person_id,
        course_id=course.id,
        subject=template_id,
        details={"reason": reason[:500]},
    )
    notify_instructors(
        session,
        course.id,
        subject=f"[{course.display_name}] Template request: {template_name(catalog or load_catalog(), template_id)}",
        body=body,
    )
    request = session.get(TemplateRequest, row_id)
    assert request is not None
    return request


def _request_body(
    session: Session,
    course: Course,
    person_id: int,
    template_id: str,
    reason: str,
    catalog: Catalog,
    prices: RegionPrices | None,
) -> str:
    if prices is None:
        return f'A student asks to use {template_name(catalog, template_id)}: "{reason[:500]}".'
    return request_context(session, course, person_id, template_id, catalog=catalog, prices=prices).email_body(reason)


def decide_request(
    session: Session, course: Course, request_id: int, decider_id: int, approve: bool, note: str = ""
) -> TemplateRequest:
    """An instructor approves or denies a pending request; the student is notified."""
    if len(note) > NOTE_MAX:
        raise BudgetError(f"Keep the note to {NOTE_MAX:,} characters (this one has {len(note):,}).")
    request = session.get(TemplateRequest, request_id)
    if request is None or request.course_id != course.id:
        raise BudgetError("No such request in this course.")
    if request.status is not RequestStatus.PENDING:
        raise BudgetError("This request was decided already.")
    request.status = RequestStatus.APPROVED if approve else RequestStatus.DENIED
    request.decided_by, request.decided_at, request.note = decider_id, utcnow(), note
    session.flush()
    verb = "approved" if approve else "denied"
    name = template_name(load_catalog(), request.template_id)
    append_event(
        session,
        f"template.request_{verb}",
        actor_person_id=decider_id,
        course_id=course.id,
        subject=request.template_id,
        details={"student": request.person_id, "note": note[:500]},
    )
    notify(
        session,
        person_id=request.person_id,
        course_id=course.id,
        subject=f"[{course.display_name}] Your request for {name} was {verb}",
        body=f"Your instructor {verb} your request to use {name}." + (f" Note: {note}" if note else ""),
    )
    return request
