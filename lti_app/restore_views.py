"""The instructor's "Restore a student" page (after term end): who has an archived home, open restores, and the
form (student, 1–60 days, optional top-up). Instructors only (course set-up levels); TAs and students are refused."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, redirect, url_for
from pydantic import Field
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import CoursePolicy, Enrollment, Person, StudentRestore, Workspace, WorkspaceArchive
from classroom.roles import StaffLevel, can_configure
from classroom.services.restores import RestoreError, parse_request, restore_student
from lti_app.auth import current, requires
from lti_app.boundary import FormModel, parse_form
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import release_after_commit

bp = Blueprint("restores", __name__)


class RestoreForm(FormModel):
    """As typed; checked by classroom.services.restores.parse_request."""

    person_id: str = Field(default="", max_length=16)
    days: str = Field(default="7", max_length=16)
    top_up: str = Field(default="0", max_length=32)


def _page(status: int = 200, **extra: object) -> tuple[str, int]:
    ctx = current()
    session = db()
    archived = session.execute(
        select(Person.id, Person.name, WorkspaceArchive.created_at, WorkspaceArchive.size_bytes)
        .join(Workspace, Workspace.id == WorkspaceArchive.workspace_id)
        .join(Person, Person.id == Workspace.person_id)
        .join(Enrollment, (Enrollment.person_id == Person.id) & (Enrollment.course_id == ctx.course.id))
        .where(WorkspaceArchive.course_id == ctx.course.id, Enrollment.level == StaffLevel.STUDENT)
        .where(WorkspaceArchive.purged_at.is_(None))  # purged: nothing left to restore
        .order_by(Person.name, WorkspaceArchive.created_at.desc())
    ).all()
    students = list(dict.fromkeys((pid, name) for pid, name, _at, _size in archived))  # those with an archive
    restores = session.execute(
        select(StudentRestore, Person.name)
        .join(Person, Person.id == StudentRestore.person_id)
        .where(StudentRestore.course_id == ctx.course.id)
        .order_by(StudentRestore.created_at.desc())
    ).all()
    policy = session.get(CoursePolicy, ctx.course.id)
    html = page(
        "term/restore.html",
        archived=archived,
        students=students,
        restores=restores,
        closed=policy is not None and policy.closed_at is not None,
        tz=ZoneInfo(ctx.course.time_zone),
        now=utcnow(),
        **extra,
    )
    return html, status


@bp.get("/app/restore")
@requires(can_configure)
def index() -> tuple[str, int]:
    """Students with an archived home, restores made, and the form."""
    return _page()


@bp.post("/app/restore")
@requires(can_configure)
def restore() -> Response | tuple[str, int]:
    """Restore one student (a second click finds the open restore); 422 with the reason and nothing written."""
    ctx = current()
    form = parse_form(RestoreForm, status=422)
    try:
        made, todo = restore_student(db(), ctx.course, parse_request(form.model_dump()), actor_id=ctx.person.id,
                                     now=utcnow())  # fmt: skip
    except RestoreError as exc:
        db().rollback()
        return _page(422, error=str(exc), form=form)
    release_after_commit(todo)
    commit()
    return redirect(url_for("restores.index", t=g.tool_token, made=made.id), code=303)  # type: ignore[return-value]
