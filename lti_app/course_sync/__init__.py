"""LMS sync pages: roster sync and CSV import, due dates and Canvas connection, grades and passback status."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("course_sync", __name__)

from lti_app.course_sync import canvas_views, common, grades_views, roster_views  # noqa: E402,F401  (routes on bp)

__all__ = ["bp"]
