"""Home pages per role, staff list with head-TA promotion, and the deep-linking picker."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy import select, update

from classroom.db import utcnow
from classroom.jobs.liveness import enforcement_status
from classroom.models import Enrollment, EnrollmentStatus, Notification, Person
from classroom.notify import unread
from classroom.roles import StaffLevel, can_act, can_configure, is_staff
from classroom.services.launches import promote_head_ta
from classroom.services.workspace_overview import student_overview
from classroom.services.workspaces import workspaces_of
from lti_app.auth import csrf_token, current, requires
from lti_app.runtime import commit, db, runtime, settings

bp = Blueprint("pages", __name__)

LEVEL_LABELS = {
    StaffLevel.OWNER: "Instructor (course owner)",
    StaffLevel.INSTRUCTOR: "Instructor",
    StaffLevel.HEAD_TA: "Head TA (can act on student workspaces)",
    StaffLevel.TA: "Teaching assistant (read-only)",
    StaffLevel.STUDENT: "Student",
}


def page(template_name: str, **context: object) -> str:
    """Render with the signed-in context, a renewed tool token and its CSRF value."""
    ctx = current()
    return render_template(
        template_name,
        ctx=ctx,
        t=g.tool_token,
        csrf=csrf_token(g.tool_token),
        level_label=LEVEL_LABELS[ctx.level],
        can_act=can_act(ctx.level),
        can_configure=can_configure(ctx.level),
        notifications=unread(db(), ctx.person.id, ctx.course.id, limit=5),
        settings_saved=request.args.get("settings_saved") == "1",
        **context,
    )


def _members(course_id: int) -> list[tuple[Enrollment, Person]]:
    rows = (
        db()
        .execute(
            select(Enrollment, Person)
            .join(Person, Person.id == Enrollment.person_id)
            .where(Enrollment.course_id == course_id)
            .order_by(Enrollment.level, Person.family_name, Person.name)
        )
        .all()
    )
    return [(e, p) for e, p in rows]


@bp.get("/app/home")
@requires()
def home() -> str:
    """The role's home page."""
    ctx = current()
    if ctx.level is StaffLevel.STUDENT:
        return page("pages/student.html", workspaces=workspaces_of(db(), ctx.course.id, ctx.person.id))
    members = _members(ctx.course.id)
    staff = [(e, p) for e, p in members if is_staff(e.level)]
    query = " ".join(request.args.get("q", "").split())[:100]
    students = [(e, p) for e, p in members if e.level is StaffLevel.STUDENT and matches(p, query)]
    active_students = sum(1 for e, _ in students if e.status is EnrollmentStatus.ACTIVE)
    template = "pages/instructor.html" if can_configure(ctx.level) else "pages/ta.html"
    return page(
        template,
        staff=staff,
        students=students,
        active_students=active_students,
        labels=LEVEL_LABELS,
        overview=student_overview(db(), ctx.course.id),
        enforcement=enforcement_status(runtime().redis, utcnow()),
        lease_minutes=settings().lease_s // 60,
        query=query,
    )


def matches(person: Person, query: str) -> bool:
    """Search among the students: every word of the query in the name or the email (case-insensitive)."""
    text = f"{person.display_name} {person.email or ''}".casefold()
    return all(word in text for word in query.casefold().split())


@bp.get("/app/students/<int:person_id>")
@requires(is_staff)
def student(person_id: int) -> str:
    """One student's page for staff: enrollment, spend, workspaces with Start/Stop (instructor and head TA)."""
    ctx = current()
    found = next(((e, p) for e, p in _members(ctx.course.id) if p.id == person_id), None)
    if found is None or found[0].level is not StaffLevel.STUDENT:
        abort(404)
    row = student_overview(db(), ctx.course.id).get(person_id)
    workspaces = workspaces_of(db(), ctx.course.id, person_id)
    return page("pages/student_detail.html", enrollment=found[0], person=found[1], row=row, workspaces=workspaces)


@bp.post("/app/notifications/read")
@requires()
def mark_read() -> Response:
    """Mark the signed-in person's notifications in this course as read."""
    ctx = current()
    db().execute(
        update(Notification)
        .where(
            Notification.person_id == ctx.person.id,
            Notification.course_id == ctx.course.id,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
    commit()
    return redirect(url_for("pages.home", t=g.tool_token), code=303)


@bp.post("/app/staff/<int:enrollment_id>/head-ta")
@requires(lambda level: level is StaffLevel.OWNER)
def make_head_ta(enrollment_id: int) -> Response:
    """Owner promotes a TA to head TA (audited)."""
    ctx = current()
    promote_head_ta(db(), ctx.course.id, ctx.person.id, enrollment_id)
    commit()
    return redirect(url_for("pages.home", t=g.tool_token), code=303)
