"""The owner's staff page: every staff member with the roles the LMS sent, and a level selector (audited)."""

from __future__ import annotations

from flask import Response, g, redirect, url_for

from classroom.roles import StaffLevel, can_configure
from classroom.services.staff import ASSIGNABLE, ASSIGNABLE_LABELS, StaffChangeRefused, set_staff_level, staff_rows
from lti_app.auth import current, requires
from lti_app.boundary import parse_form, parse_query
from lti_app.boundary.forms import StaffLevelForm, StaffPageQuery
from lti_app.errors import ToolError
from lti_app.pages.views import LEVEL_LABELS, bp, page
from lti_app.runtime import commit, db


def _is_owner(level: StaffLevel) -> bool:
    return level is StaffLevel.OWNER


@bp.get("/app/staff")
@requires(can_configure)
def staff() -> str:
    """Staff, their LMS roles at launch and in the roster, and (for the owner) their level."""
    ctx = current()
    return page(
        "pages/staff.html",
        rows=staff_rows(db(), ctx.course.id),
        labels=LEVEL_LABELS,
        choices=[(level, ASSIGNABLE_LABELS[level]) for level in ASSIGNABLE],
        is_owner=_is_owner(ctx.level),
        changed=parse_query(StaffPageQuery).changed,
    )


@bp.post("/app/staff/<int:enrollment_id>/level")
@requires(_is_owner)
def set_level(enrollment_id: int) -> Response:
    """The owner sets one member's staff level; it is pinned and audited."""
    ctx = current()
    form = parse_form(StaffLevelForm, status=400)
    try:
        set_staff_level(db(), ctx.course.id, ctx.person.id, enrollment_id, form.level)
    except StaffChangeRefused as exc:
        db().rollback()
        raise ToolError(str(exc), status=400, title="Level not changed") from None
    commit()
    return redirect(url_for("pages.staff", t=g.tool_token, changed=1), code=303)
