"""The term-end warning banner on a student's pages (a Jinja global: every page's layout asks it)."""

from __future__ import annotations

from flask import g

from classroom.db import utcnow
from classroom.roles import StaffLevel
from classroom.services.term_notices import student_notice
from lti_app.runtime import db


def term_notice() -> str | None:
    """The warning for the signed-in student in the last 24 hours of the term, else None (staff: None)."""
    ctx = g.get("ctx")
    if ctx is None or ctx.level is not StaffLevel.STUDENT:
        return None
    return student_notice(db(), ctx.course.id, ctx.person.id, utcnow())
