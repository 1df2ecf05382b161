"""Sign in as a persona: the Demo LMS's front page, sign-in and sign-out (first-party cookie, CSRF-checked)."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from dev.demo_lms.blueprint import bp, page
from dev.demo_lms.models import DemoCourse, DemoMember
from dev.demo_lms.seed import ensure_seeded
from dev.demo_lms.session import (
    DemoSession,
    check_csrf,
    csrf_token,
    new_session,
    read_session,
    signed_in_member,
    write_session,
)
from dev.demo_lms.tools import latest_tool
from lti_app.runtime import commit, db

KIND_LABELS = {"instructor": "Instructor", "ta": "Teaching assistant", "student": "Student"}


def course_members(course: DemoCourse) -> list[DemoMember]:
    """Everyone in the course, staff first, in seed order."""
    return list(
        db().scalars(
            select(DemoMember).where(DemoMember.course_id == course.id).order_by(DemoMember.position, DemoMember.id)
        )
    )


def render_with_session(
    template: str, session: DemoSession | None = None, status: int = 200, **context: object
) -> Response:
    """Render a page carrying a CSRF token, setting the cookie when the browser has none yet."""
    session = session or read_session() or new_session()
    response = make_response(
        render_template(template, csrf=csrf_token(session), kind_labels=KIND_LABELS, **context), status
    )
    if read_session() != session:
        write_session(response, session)
    return response


@bp.get("/")
@page
def index() -> Response:
    """List the personas ("Sign in as…")."""
    course = ensure_seeded(db())
    commit()
    members = course_members(course)
    return render_with_session(
        "demo_lms/index.html",
        course=course,
        me=signed_in_member(course),
        staff=[m for m in members if m.is_staff],
        students=[m for m in members if not m.is_staff],
        tool=latest_tool(db()),
    )


@bp.post("/sign-in")
def sign_in() -> Response:
    """Sign in as the chosen persona and go to the course page."""
    check_csrf()
    course = ensure_seeded(db())
    user_id = request.form.get("persona", "")
    member = db().scalar(select(DemoMember).where(DemoMember.course_id == course.id, DemoMember.user_id == user_id))
    if member is None:
        abort(400, "Choose a person from the list.")
    commit()
    response = redirect(url_for("demo_lms.course"), code=303)
    write_session(response, new_session(member.user_id))
    return response


@bp.post("/sign-out")
def sign_out() -> Response:
    """Forget the persona (a new browser id, so old forms stop working)."""
    check_csrf()
    response = redirect(url_for("demo_lms.index"), code=303)
    write_session(response, new_session())
    return response
