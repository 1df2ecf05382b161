"""Next term's page: duplicate a course's set-up into this one (offered from the LMS's course-copy history, or a
manual pick of the courses the instructor teaches). Instructors only (course set-up levels)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, g, redirect, url_for
from pydantic import Field

from classroom.audit import append_event
from classroom.models import CoursePolicy
from classroom.roles import can_configure
from classroom.services.next_term import DuplicateError, duplicate_course, pick_sources, suggested_source
from lti_app.auth import current, requires
from lti_app.boundary import FormModel, parse_form
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key

bp = Blueprint("next_term", __name__)


class DuplicateForm(FormModel):
    """As typed; dates are parsed here, the rest checked by the service."""

    source_id: str = Field(default="", max_length=16)
    term_start: str = Field(default="", max_length=32)
    term_end: str = Field(default="", max_length=32)
    staff: str = Field(default="", max_length=8)
    overwrite: str = Field(default="", max_length=8)


def _term(form: DuplicateForm) -> tuple[date, date]:
    try:
        return date.fromisoformat(form.term_start.strip()), date.fromisoformat(form.term_end.strip())
    except ValueError:
        raise DuplicateError("Give the new term's first and last day (e.g. 2025-01-06 and 2025-03-21).") from None


@bp.app_context_processor
def _offer() -> dict[str, object]:
    """`next_term_offer()` for the set-up wizard: the course this one was copied from, when the tool knows it."""

    def offer():  # type: ignore[no-untyped-def]
        ctx = current()
        if not can_configure(ctx.level) or db().get(CoursePolicy, ctx.course.id) is not None:
            return None
        return suggested_source(db(), ctx.course, ctx.person.id)

    return {"next_term_offer": offer}


def _page(status: int = 200, **extra: object) -> tuple[str, int]:
    ctx = current()
    html = page(
        "term/next_term.html",
        suggested=suggested_source(db(), ctx.course, ctx.person.id),
        sources=pick_sources(db(), ctx.course, ctx.person.id),
        configured=db().get(CoursePolicy, ctx.course.id) is not None,
        **extra,
    )
    return html, status


@bp.get("/app/next-term")
@requires(can_configure)
def index() -> tuple[str, int]:
    """The offer (from the LMS's course-copy history) and the manual pick."""
    return _page()


@bp.post("/app/next-term")
@requires(can_configure)
def duplicate() -> Response | tuple[str, int]:
    """Copy the set-up (422 with the reason and nothing written), then the materials through the port."""
    ctx = current()
    form = parse_form(DuplicateForm, status=422)
    try:
        source_id = int(form.source_id) if form.source_id.isdigit() else 0
        made = duplicate_course(db(), source_id, ctx.course, actor_id=ctx.person.id, term=_term(form),
                                staff=form.staff == "on", overwrite=form.overwrite == "on")  # fmt: skip
    except DuplicateError as exc:
        db().rollback()
        return _page(422, error=str(exc), form=form)
    commit()
    try:  # after the commit: no row lock held across the S3 calls; a retry copies the same objects again
        copied = backend().copy_materials(course_key(made.source_id), course_key(ctx.course.id))
    except CloudError:
        return _page(503, error="The set-up was copied, but the materials could not be copied from storage "
                     "right now. Tick “Replace this course's set-up” and submit again to retry.")  # fmt: skip
    append_event(db(), "course.materials_copied", actor_person_id=ctx.person.id, course_id=ctx.course.id,
                 details={"from": made.source_id, "objects": copied})  # fmt: skip
    commit()
    return redirect(url_for("pages.home", t=g.tool_token, settings_saved=1), code=303)  # type: ignore[return-value]
