"""Development only: the time-travel control at /dev/time-travel (see dev/clock.py for what a move does).

Behind dev.guard like /dev/mail; its forms carry a double-submit CSRF value (a SameSite=Strict cookie), since
any site open in the developer's browser could otherwise post to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Blueprint, Response, abort, make_response, render_template, request
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Course, CoursePolicy, Workshop
from dev.clock import CHOICES, end_workshop, move_term_end
from dev.guard import guard_dev_only
from lti_app.runtime import commit, db, settings
from lti_app.workspaces.glue import release_after_commit

bp = guard_dev_only(Blueprint("dev_time_travel", __name__, template_folder="templates"))
COOKIE = "cwc_dev_csrf"


def _mac(nonce: str) -> str:
    return hmac.new(settings().secret_key.encode(), b"dev-time-travel:" + nonce.encode(), hashlib.sha256).hexdigest()


def _page(message: str = "", status: int = 200) -> Response:
    courses = (
        db()
        .execute(
            select(Course, CoursePolicy)
            .join(CoursePolicy, CoursePolicy.course_id == Course.id)
            .where(~Course.context_id.startswith("workshop:"))
            .order_by(Course.id)
        )
        .all()
    )
    workshops = db().scalars(select(Workshop).where(Workshop.purged_at.is_(None)).order_by(Workshop.id)).all()
    nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(16)
    html = render_template("dev_time_travel.html", courses=courses, workshops=workshops, message=message,
                           csrf=_mac(nonce[:64]), now=utcnow())  # fmt: skip
    response = make_response(html, status)
    response.set_cookie(COOKIE, nonce[:64], httponly=True, samesite="Strict", path="/dev")
    return response


def _check_csrf() -> None:
    nonce, sent = request.cookies.get(COOKIE, ""), request.form.get("csrf_token", "")
    if not nonce or not sent or not hmac.compare_digest(sent, _mac(nonce)):
        abort(403)


@bp.get("/dev/time-travel")
def control() -> Response:
    """Every set-up course with its term end, every live workshop, and the moves."""
    return _page()


@bp.post("/dev/time-travel/course/<int:course_id>")
def course_move(course_id: int) -> Response:
    """Move one course's term end ("25h", "11m" or "now" before it) and run the term-end pass."""
    _check_csrf()
    course = db().get(Course, course_id, with_for_update=True)
    when = request.form.get("when", "")
    if course is None or when not in CHOICES:
        return _page("Pick a course and one of the moves.", 400)
    try:
        moved = move_term_end(db(), course, CHOICES[when], utcnow())
    except ValueError as exc:
        db().rollback()
        return _page(str(exc), 409)
    release_after_commit(moved.jobs)
    commit()
    return _page(f"{course.display_name}: {moved.summary}")


@bp.post("/dev/time-travel/workshop/<int:workshop_id>")
def workshop_move(workshop_id: int) -> Response:
    """End a workshop now, or skip to the end of its extension."""
    _check_csrf()
    workshop = db().get(Workshop, workshop_id, with_for_update=True)
    if workshop is None or request.form.get("when") not in ("end", "skip_extension"):
        return _page("Pick a workshop and one of the moves.", 400)
    moved = end_workshop(db(), workshop, skip_extension=request.form["when"] == "skip_extension", now=utcnow())
    release_after_commit(moved.jobs)
    commit()
    return _page(f"{workshop.title}: {moved.summary}")
