"""Small helpers shared by the sync pages."""

from __future__ import annotations

from datetime import datetime

from flask import g, redirect, url_for
from werkzeug.wrappers import Response

from classroom.db import utcnow
from lms_sync.deadlines import Deadline, upcoming_for
from lti_app.course_sync import bp
from lti_app.runtime import db


def back_to(endpoint: str, **params: object) -> Response:
    """303 to a sync page with a fresh tool token."""
    return redirect(url_for(endpoint, t=g.tool_token, **params), code=303)


@bp.app_template_global()
def sync_deadlines(course_id: int, person_id: int, now: datetime | None = None) -> list[Deadline]:
    """Upcoming deadlines for templates that were not given `deadlines` (the student home includes them)."""
    return upcoming_for(db(), course_id, person_id, now or utcnow())


@bp.app_template_global()
def sync_now() -> datetime:
    """The time deadlines are counted from."""
    return utcnow()
