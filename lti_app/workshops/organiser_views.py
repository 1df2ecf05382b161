"""The organiser's workshop pages, inside the LMS course they are made from: list, create (code shown once), and
one workshop's participants and figures. Course owner only; a workshop of another course is not found."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask import abort
from pydantic import Field
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Person, StaffLevel, Workshop, WorkshopParticipant
from classroom.services.workshops import (
    WorkshopError,
    WorkshopValues,
    approved_templates,
    create_workshop,
    workshop_figures,
)
from classroom.workshops import per_participant
from lti_app.auth import current, requires
from lti_app.boundary import FormModel, parse_form
from lti_app.pages.views import page
from lti_app.runtime import commit, db, settings
from lti_app.workshops import bp

FIELD_MAX = 32


def _owner(level: StaffLevel) -> bool:
    return level is StaffLevel.OWNER


class WorkshopForm(FormModel):
    """The create form, as typed (numbers and the start time are parsed by `_values`)."""

    title: str = Field(default="", max_length=200)
    starts_at: str = Field(default="", max_length=FIELD_MAX)  # datetime-local, in the course's time zone
    hours: str = Field(default="3", max_length=FIELD_MAX)
    max_participants: str = Field(default="30", max_length=FIELD_MAX)
    budget: str = Field(default="150", max_length=FIELD_MAX)
    template_id: str = Field(default="", max_length=64)
    extension_days: str = Field(default="0", max_length=FIELD_MAX)
    extension_daily_price: str = Field(default="0", max_length=FIELD_MAX)
    extension_allowance: str = Field(default="0", max_length=FIELD_MAX)


def _number(value: str, label: str) -> Decimal:
    try:
        number = Decimal(value.strip().lstrip("$").replace(",", "") or "0")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or abs(number) > Decimal(10) ** 9:
        raise WorkshopError(f"{label}: enter a number.")
    return number


def _values(form: WorkshopForm, time_zone: str) -> WorkshopValues:
    """Typed values from the form; the start is read in the course's time zone."""
    try:
        start = datetime.fromisoformat(form.starts_at.strip()).replace(tzinfo=ZoneInfo(time_zone))
        start.astimezone(UTC)  # a date at the edge of datetime's range fails here, not later in arithmetic
    except (ValueError, OverflowError) as exc:
        raise WorkshopError("Start: enter a date and time, e.g. 2026-03-14 09:00.") from exc
    count, days = _number(form.max_participants, "Maximum participants"), _number(form.extension_days, "Extension")
    if count != count.to_integral_value() or days != days.to_integral_value():
        raise WorkshopError("Maximum participants and extension days are whole numbers.")
    return WorkshopValues(
        title=" ".join(form.title.split()),
        starts_at=start,
        hours=_number(form.hours, "Duration"),
        max_participants=int(count),
        budget=_number(form.budget, "Total budget"),
        template_id=form.template_id,
        extension_days=int(days),
        extension_daily_price=_number(form.extension_daily_price, "Extension daily price"),
        extension_allowance=_number(form.extension_allowance, "Extension allowance"),
    )


def _list(status: int = 200, **extra: object) -> tuple[str, int]:
    ctx = current()
    workshops = (
        db()
        .scalars(select(Workshop).where(Workshop.origin_course_id == ctx.course.id).order_by(Workshop.starts_at.desc()))
        .all()
    )
    html = page(
        "workshops/list.html",
        workshops=workshops,
        templates=approved_templates(db(), ctx.course),
        tz=ZoneInfo(ctx.course.time_zone),
        now=utcnow(),
        join_url=settings().url("/workshop/join"),
        **extra,
    )
    return html, status


@bp.get("/app/workshops")
@requires(_owner)
def workshops() -> tuple[str, int]:
    """The course's workshops and the form to make one."""
    return _list()


@bp.post("/app/workshops")
@requires(_owner)
def create() -> tuple[str, int]:
    """Make a workshop; its access code is shown on this page only (only its hash is kept)."""
    ctx = current()
    form = parse_form(WorkshopForm, status=400)
    try:
        workshop, code = create_workshop(db(), ctx.course, ctx.person, _values(form, ctx.course.time_zone), utcnow())
    except WorkshopError as exc:
        db().rollback()
        return _list(exc.status, error=str(exc), form=form)
    commit()
    return _list(201, created=workshop, code=code,
                 share=per_participant(workshop.budget, workshop.max_participants))  # fmt: skip


@bp.get("/app/workshops/<int:workshop_id>")
@requires(_owner)
def detail(workshop_id: int) -> str:
    """One workshop: participants, spend against the budget, extensions (the report's figures, live)."""
    workshop = db().get(Workshop, workshop_id)
    if workshop is None or workshop.origin_course_id != current().course.id:
        abort(404)
    people = (
        db()
        .execute(
            select(WorkshopParticipant, Person)
            .join(Person, Person.id == WorkshopParticipant.person_id)
            .where(WorkshopParticipant.workshop_id == workshop.id)
            .order_by(WorkshopParticipant.joined_at)
        )
        .all()
    )
    return page(
        "workshops/detail.html",
        w=workshop,
        figures=workshop_figures(db(), workshop),
        people=people,
        tz=ZoneInfo(current().course.time_zone),
        share=per_participant(workshop.budget, workshop.max_participants),
    )
