""" "What is recorded": exactly what the tool keeps about a student's workspace activity, and the latest events."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from classroom.integrity.settings import records_commands
from classroom.models import ActivityEvent, Workspace
from lti_app.auth import current, requires
from lti_app.pages.views import page
from lti_app.runtime import db
from provisioning.activity import collecting
from provisioning.agent.cwc_toolwrap import TOOLS

bp = Blueprint("recorded", __name__)
SHOWN = 100


@bp.get("/app/recorded")
@requires()
def index() -> tuple[str, int]:
    """What this course collects, and my own latest activity events (never anyone else's)."""
    ctx = current()
    mine = select(Workspace.id).where(Workspace.course_id == ctx.course.id, Workspace.person_id == ctx.person.id)
    events = db().scalars(
        select(ActivityEvent).where(ActivityEvent.workspace_id.in_(mine)).order_by(ActivityEvent.at.desc()).limit(SHOWN)
    )
    return page("workspaces/recorded.html", collects=collecting(db(), ctx.course.id), events=list(events),
                records_commands=records_commands(db(), ctx.course.id), wrapped_tools=TOOLS), 200  # fmt: skip
