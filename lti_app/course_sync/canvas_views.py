"""Connecting Canvas REST (OAuth2) for due dates: the consent page opens in its own window (Canvas cannot be
framed); the callback carries no tool token, so the one-time state stored at the start says who asked."""

from __future__ import annotations

from flask import Response, redirect, render_template, request

from classroom.roles import can_configure
from lms_sync.canvas import CanvasConfig, CanvasNotConnected, authorize_url, complete_authorization
from lms_sync.jobs import enqueue_dates
from lti_app.auth import current, requires
from lti_app.course_sync import bp
from lti_app.errors import ToolError
from lti_app.runtime import after_commit, commit, db, runtime, settings


def _config() -> CanvasConfig:
    cfg = CanvasConfig.from_settings(settings())
    if cfg is None:
        raise ToolError(
            "Canvas REST is not configured for this tool (CWC_CANVAS_BASE_URL, CWC_CANVAS_CLIENT_ID and "
            "CWC_CANVAS_CLIENT_SECRET).",
            status=404,
            title="Canvas not configured",
        )
    return cfg


@bp.get("/sync/canvas/connect")
@requires(can_configure)
def canvas_connect() -> Response:
    """Send the instructor to Canvas's consent page."""
    ctx = current()
    url = authorize_url(_config(), runtime().redis, course_id=ctx.course.id, person_id=ctx.person.id)
    return redirect(url, code=302)


@bp.get("/sync/canvas/callback")
def canvas_callback() -> tuple[str, int]:
    """Canvas sends the instructor back here with a code (or an error)."""
    cfg = _config()
    if request.args.get("error"):
        return render_template(
            "sync/canvas_done.html", ok=False, message="Canvas was not connected: the authorisation was declined."
        ), 400
    try:
        course_id = complete_authorization(
            db(),
            settings(),
            cfg,
            runtime().redis,
            state=request.args.get("state", ""),
            code=request.args.get("code", ""),
        )
    except CanvasNotConnected as exc:
        db().rollback()
        return render_template("sync/canvas_done.html", ok=False, message=str(exc)), 400
    redis = runtime().redis
    after_commit(lambda: enqueue_dates(redis, course_id))
    commit()
    return render_template(
        "sync/canvas_done.html",
        ok=True,
        message="Canvas is connected. Due dates will appear "
        "in Cloud Workstation in a moment; you can close this window.",
    ), 200
