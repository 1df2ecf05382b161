"""A walk-in joins a workshop with its access code: a person and enrollment in the workshop's course, and their
workspace requested at once through the same Start a student's click uses (policy and budget checked).

Flush, never commit: on any refusal the caller rolls back, so a refused join leaves nothing behind. The workshop
row is locked for the join, so a burst of joins cannot pass the participant cap.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import (
    Course,
    Deployment,
    DeploymentStatus,
    Enrollment,
    Person,
    StaffLevel,
    Workshop,
    WorkshopParticipant,
)
from classroom.services.opening import Link, open_workspace
from classroom.services.workshops import WorkshopError, choose_extension
from classroom.services.workspaces import Job
from classroom.workshops import Phase, code_hash, phase
from config.catalog import Catalog
from config.prices import RegionPrices


@dataclass
class Joined:
    """The new participant, their workspace id and the jobs to release after the commit."""

    participant: WorkshopParticipant
    workspace_id: int
    jobs: list[Job] = field(default_factory=list)


def find_workshop(session: Session, typed_code: str, *, lock: bool = False) -> Workshop | None:
    """The workshop whose code this is (compared by hash), or None."""
    query = select(Workshop).where(Workshop.code_hash == code_hash(typed_code))
    return session.scalar(query.with_for_update() if lock else query)


def check_open(workshop: Workshop, now: datetime) -> None:
    """Refuse a code outside its workshop's joining window (it expires at the end)."""
    at = phase(workshop.starts_at, workshop.ends_at, workshop.extension_days, now)
    if workshop.ended_at is not None or at in (Phase.EXTENSION, Phase.OVER):
        raise WorkshopError("This workshop has ended: its access code no longer works.", 410)
    if at is Phase.UPCOMING:
        raise WorkshopError("This workshop is not open yet: joining opens an hour before it starts.", 403)


def join_workshop(  # noqa: PLR0913
    session: Session,
    typed_code: str,
    display_name: str,
    email: str,
    *,
    extension: bool,
    catalog: Catalog,
    prices: RegionPrices,
    region: str,
    now: datetime,
) -> Joined:
    """Join with a code: check it, the window and the cap; make the participant; request their workspace."""
    workshop = find_workshop(session, typed_code, lock=True)
    if workshop is None:
        raise WorkshopError("That access code is not recognised. Check it with the organiser.", 403)
    check_open(workshop, now)
    joined = session.scalar(
        select(func.count(WorkshopParticipant.id)).where(WorkshopParticipant.workshop_id == workshop.id)
    )
    if (joined or 0) >= workshop.max_participants:
        raise WorkshopError(f"This workshop is full ({workshop.max_participants} participants).", 409)
    course = session.get(Course, workshop.course_id)
    template = catalog.get(workshop.template_id)
    if course is None or template is None:
        raise WorkshopError("This workshop's template is no longer available. Tell the organiser.", 409)
    deployment = session.get(Deployment, course.deployment_id)
    if deployment is None or deployment.status is not DeploymentStatus.APPROVED:
        raise WorkshopError("This workshop's installation of Cloud Workstation is not approved any more.", 403)
    person = Person(
        platform_id=course.platform_id, sub=f"workshop:{workshop.id}:{secrets.token_hex(8)}", name=display_name,
        email=email,
    )  # fmt: skip
    session.add(person)
    session.flush()
    session.add(Enrollment(course_id=course.id, person_id=person.id, level=StaffLevel.STUDENT, lti_roles=[]))
    participant = WorkshopParticipant(workshop_id=workshop.id, person_id=person.id, display_name=display_name,
                                      email=email, joined_at=now)  # fmt: skip
    session.add(participant)
    session.flush()
    if extension and workshop.extension_days:  # the box ticked for a workshop that offers none: joined without
        choose_extension(session, workshop, participant)
    opened = open_workspace(
        session, course, person.id, Link("course", workshop.title), template,
        catalog=catalog, prices=prices, region=region, now=now,
    )  # fmt: skip
    if opened.ws is None:
        assert opened.decision is not None
        raise WorkshopError(opened.decision.message or "Your workspace cannot start within the workshop's budget.", 409)
    append_event(
        session, "workshop.joined", actor_person_id=person.id, course_id=course.id, subject=str(person.id),
        details={"workshop": workshop.id, "name": display_name, "extension": participant.extension},
    )  # fmt: skip
    return Joined(participant, opened.ws.id, opened.jobs)
