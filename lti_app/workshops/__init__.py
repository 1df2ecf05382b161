"""Workshop pages: the organiser's (inside the LMS, owner only) and the walk-ins' public join page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("workshops", __name__)

from lti_app.workshops import join_views, organiser_views  # noqa: E402, F401  (routes on bp)
