"""The welcome message in course settings: a preview of what new students get, and the switch to turn it off."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, request, url_for
from sqlalchemy import func, select

from classroom.audit import append_event
from classroom.models import CoursePolicy, Enrollment
from classroom.roles import StaffLevel, can_configure
from lms_sync.welcome import welcome_message
from lms_sync.welcome_send import welcome_enabled, welcome_facts
from lti_app.auth import current, requires
from lti_app.errors import Forbidden
from lti_app.pages.views import page
from lti_app.runtime import commit, db

bp = Blueprint("welcome", __name__)


@bp.get("/app/welcome")
@requires(can_configure)
def preview() -> str:
    """Show the message a new student gets (addressed to a sample student) and whether it is sent."""
    ctx = current()
    subject, body = welcome_message(welcome_facts(db(), ctx.course), "Emily Chen")
    waiting = db().scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(
            Enrollment.course_id == ctx.course.id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.welcomed_at.is_(None),
        )
    )
    return page(
        "setup/welcome.html",
        subject=subject,
        body=body,
        enabled=welcome_enabled(db(), ctx.course.id),
        waiting=waiting or 0,
        saved=request.args.get("saved") == "1",
    )


@bp.post("/app/welcome")
@requires(can_configure)
def save() -> Response:
    """Turn the welcome message on or off for this course (audited)."""
    ctx = current()
    policy = db().get(CoursePolicy, ctx.course.id)
    if policy is None:
        raise Forbidden("Save the course settings first; then the welcome message can be turned off.", status=409,
                        title="Course not set up yet")  # fmt: skip
    enabled = request.form.get("welcome_emails") == "on"
    if policy.welcome_emails != enabled:
        policy.welcome_emails = enabled
        append_event(db(), "course.welcome_emails", actor_person_id=ctx.person.id, course_id=ctx.course.id,
                     details={"enabled": enabled})  # fmt: skip
    commit()
    return redirect(url_for("welcome.preview", t=g.tool_token, saved=1), code=303)
