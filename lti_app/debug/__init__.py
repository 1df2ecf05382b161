"""Staff tools on one student's workspace: the debug page (status, SSH session, files, export, recordings) and
the workspace reset."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("debug", __name__)

from lti_app.debug import files_views, reset_views, views  # noqa: E402, F401 - the routes register on bp
