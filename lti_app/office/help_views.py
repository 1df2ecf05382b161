"""Help requests: the student asks (from their workspace page), staff see the queue, claim and resolve."""

from __future__ import annotations

from flask import Response, g, redirect, request, url_for
from sqlalchemy import select

from classroom.models import Workspace
from classroom.roles import StaffLevel, is_staff
from classroom.services.help_requests import (
    ask_for_help,
    claim_help,
    help_queue,
    median_resolution,
    requests_of,
    resolve_help,
    waited,
)
from classroom.services.office_stats import office_stats
from classroom.ta_text import OfficeInputError
from classroom.ta_time import span
from lti_app.auth import current, requires
from lti_app.boundary import parse_form, parse_query
from lti_app.office import bp
from lti_app.office.forms import AskForm, AskQuery, ResolveForm
from lti_app.pages.views import page
from lti_app.runtime import commit, db


def _is_student(level: StaffLevel) -> bool:
    return level is StaffLevel.STUDENT


def _own_workspace(ws_id: int | None) -> Workspace | None:
    """The student's own workspace in this course, or None (someone else's id is ignored, never followed)."""
    if ws_id is None:
        return None
    ctx = current()
    return db().scalar(
        select(Workspace).where(
            Workspace.id == ws_id, Workspace.course_id == ctx.course.id, Workspace.person_id == ctx.person.id
        )
    )


def _student_page(form: AskForm | None, error: str = "", status: int = 200) -> tuple[str, int]:
    ctx = current()
    ws = _own_workspace(form.workspace if form else parse_query(AskQuery).ws)
    mine = requests_of(db(), ctx.course.id, ctx.person.id)
    flags = {"created": request.args.get("asked"), "already": request.args.get("already")}
    return page("office/help_student.html", requests=mine, ws=ws, form=form, error=error, span=span, waited=waited,
                **flags), status  # fmt: skip


@bp.get("/app/help/mine")
@requires(_is_student)
def mine() -> tuple[str, int]:
    """The student's help requests and the form to ask (from the workspace page: `ws` names the workspace)."""
    return _student_page(None)


@bp.post("/app/help")
@requires(_is_student)
def ask() -> Response | tuple[str, int]:
    """Ask for help; a second click (or a second request while one is open) shows the open one."""
    ctx, form = current(), parse_form(AskForm)
    ws = _own_workspace(form.workspace)
    try:
        req, created = ask_for_help(db(), ctx.course.id, ctx.person.id, message=form.message, file_path=form.file_path,
                                    line=form.line, workspace_id=ws.id if ws else None)  # fmt: skip
    except OfficeInputError as exc:
        db().rollback()
        return _student_page(form, str(exc), 422)
    commit()
    flag = {"asked": req.id} if created else {"already": req.id}
    return redirect(url_for("office.mine", t=g.tool_token, **flag), code=303)


@bp.get("/app/help")
@requires(is_staff)
def queue() -> str:
    """Staff's queue: open and claimed requests oldest first, then the latest resolved with their times."""
    rows, stats = help_queue(db(), current().course.id), office_stats(db(), current().course.id)
    return page("office/help_queue.html", rows=rows, median=median_resolution(rows), span=span, waited=waited,
                done=request.args.get("done", ""), stats=stats)  # fmt: skip


@bp.post("/app/help/<int:request_id>/claim")
@requires(is_staff)
def claim(request_id: int) -> Response:
    """Claim a request: of two staff clicking at once, one wins; the other is told who (409)."""
    ctx = current()
    claim_help(db(), ctx.course.id, request_id, ctx.person.id)
    commit()
    return redirect(url_for("office.queue", t=g.tool_token, done="claimed") + f"#help-{request_id}", code=303)


@bp.post("/app/help/<int:request_id>/resolve")
@requires(is_staff)
def resolve(request_id: int) -> Response | tuple[str, int]:
    """Resolve with a note; the student is told in the tool and by email."""
    ctx, form = current(), parse_form(ResolveForm)
    try:
        resolve_help(db(), ctx.course.id, request_id, ctx.person.id, form.note)
    except OfficeInputError as exc:
        if getattr(exc, "status", 400) != 400:
            raise
        db().rollback()
        rows, stats = help_queue(db(), ctx.course.id), office_stats(db(), ctx.course.id)
        return page("office/help_queue.html", rows=rows, median=median_resolution(rows), span=span, waited=waited,
                    done="", error=str(exc), error_id=request_id, note=form.note, stats=stats), 422  # fmt: skip
    commit()
    return redirect(url_for("office.queue", t=g.tool_token, done="resolved") + f"#help-{request_id}", code=303)
