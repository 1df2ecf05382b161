"""Office hours for staff and students: the dashboard, help requests and messages (issue 17 items 1, 2 and 4).

Every route checks the role with `requires`; the course always comes from the tool token, and rows are looked
up within it, so a row of another course is "not found". Refusals of a service (OfficeInputError) roll back and
answer a 4xx page; forms that can be typed into are shown again with what was typed.
"""

from __future__ import annotations

from flask import Blueprint, g, render_template

from classroom.ta_text import OfficeInputError
from lti_app.runtime import db

bp = Blueprint("office", __name__)


@bp.errorhandler(OfficeInputError)
def _refused(exc: OfficeInputError) -> tuple[str, int]:
    db().rollback()
    titles = {404: "Not found", 409: "Someone got there first"}
    status = int(getattr(exc, "status", 400))
    values = {"title": titles.get(status, "Please check the form"), "message": str(exc), "status": status}
    if getattr(g, "ctx", None) is None:
        return render_template("error.html", **values), status
    from lti_app.pages.views import page

    return page("error.html", **values), status


from lti_app.office import dashboard_views, help_views, message_views  # noqa: E402,F401  (routes on bp)
