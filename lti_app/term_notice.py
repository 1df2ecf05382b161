"""The term-end warning banner on a student's pages (a Jinja global: the layout asks it on every page)."""

from __future__ import annotations

import logging

from flask import g
from sqlalchemy.exc import SQLAlchemyError

from classroom.db import utcnow
from classroom.roles import StaffLevel
from classroom.services.term_notices import student_notice
from lti_app.runtime import db

log = logging.getLogger(__name__)


def term_notice() -> str | None:
    """The warning for the signed-in student in the last 24 hours of the term, else None (staff: None).

    A page whose transaction already failed still renders (without the banner): never a 5xx for a banner."""
    ctx = g.get("ctx")
    if ctx is None or ctx.level is not StaffLevel.STUDENT:
        return None
    try:
        return student_notice(db(), ctx.course.id, ctx.person.id, utcnow())
    except SQLAlchemyError:
        log.warning("term-end notice not shown: the request's transaction cannot be read")
        return None
