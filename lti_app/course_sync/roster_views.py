"""Roster: sync now (with progress), CSV import with a preview and per-row errors, due dates, usage passback."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, jsonify, request
from sqlalchemy import func, select

from classroom.audit import append_event
from classroom.models import CourseLms, Enrollment, EnrollmentStatus, StaffLevel
from classroom.roles import can_configure
from lms_sync import progress
from lms_sync.canvas import CanvasConfig, connected_instructor
from lms_sync.csv_import import ImportRow, ParsedRoster, RowError, parse_roster
from lms_sync.deadlines import SOURCE_LABELS, all_for_course
from lms_sync.jobs import enqueue_dates, enqueue_roster_sync
from lms_sync.roster_import import import_roster
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import ImportConfirmForm, UsageSettingForm
from lti_app.course_sync import bp
from lti_app.course_sync.common import back_to
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import after_commit, commit, db, runtime, settings

PREVIEW_KEY = "cwc:lms:csv:{}"
PREVIEW_TTL_S = 3600
SHOWN_ERRORS = 200


def _attempt_time(state: dict[str, Any], time_zone: str) -> str:
    """When the latest sync attempt ended, in the course's time zone ("" when never)."""
    try:
        at = datetime.fromtimestamp(float(state["at"]), tz=UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return ""
    return at.astimezone(ZoneInfo(time_zone)).strftime("%d %b %Y, %I:%M %p")


def _roster_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    ctx = current()
    session = db()
    state = progress.read_state(runtime().redis, ctx.course.id)
    counts = dict(
        session.execute(
            select(Enrollment.status, func.count())
            .where(Enrollment.course_id == ctx.course.id, Enrollment.level == StaffLevel.STUDENT)
            .group_by(Enrollment.status)
        ).all()
    )
    return page(
        "sync/roster.html",
        state=state,
        in_progress=progress.IN_PROGRESS,
        attempt_at=_attempt_time(state, ctx.course.time_zone),
        lms=session.get(CourseLms, ctx.course.id),
        active=counts.get(EnrollmentStatus.ACTIVE, 0),
        dropped=counts.get(EnrollmentStatus.DROPPED, 0),
        dates=all_for_course(session, ctx.course.id),
        source_labels=SOURCE_LABELS,
        canvas_configured=CanvasConfig.from_settings(settings()) is not None,
        canvas_connected=connected_instructor(session, ctx.course.id) is not None,
        tz=ZoneInfo(ctx.course.time_zone),
        **extra,
    ), status


@bp.get("/sync/roster")
@requires(can_configure)
def roster() -> tuple[str, int]:
    """The roster page."""
    return _roster_page()


@bp.get("/sync/roster/status")
@requires(can_configure)
def roster_status() -> Response:
    """Sync progress as JSON (the page polls it)."""
    state = progress.read_state(runtime().redis, current().course.id)
    keep = ("state", "pages", "members", "message", "counts", "synced_at", "at")
    return jsonify({k: state.get(k) for k in keep})


@bp.post("/sync/roster/now")
@requires(can_configure)
def sync_now() -> Response:
    """Queue a full roster sync (one per course at a time)."""
    ctx = current()
    lms = db().get(CourseLms, ctx.course.id)
    if lms is None or not lms.nrps_url:
        raise ToolError(
            "The LMS has not offered a roster service for this course. Import a CSV roster instead.",
            status=409,
            title="No roster service",
        )
    append_event(db(), "roster.sync_requested", actor_person_id=ctx.person.id, course_id=ctx.course.id)
    course_id, person_id, redis = ctx.course.id, ctx.person.id, runtime().redis
    after_commit(lambda: enqueue_roster_sync(redis, course_id, full=True, actor_person_id=person_id))
    commit()
    return back_to("course_sync.roster")


def _preview_payload(parsed: ParsedRoster, filename: str) -> dict[str, Any]:
    ctx = current()
    return {
        "course": ctx.course.id,
        "person": ctx.person.id,
        "filename": filename,
        "format": parsed.format,
        "rows": [[r.line, r.email, r.name, r.section] for r in parsed.rows],
        "errors": [[e.line, e.message] for e in parsed.errors],
        "skipped": [[e.line, e.message] for e in parsed.skipped],
    }


@bp.post("/sync/roster/import")
@requires(can_configure)
def import_preview() -> tuple[str, int]:
    """Parse an uploaded roster and show what would happen (nothing is written yet)."""
    upload = request.files.get("roster")
    if upload is None or not upload.filename:
        return _roster_page(400, import_error="Choose a CSV file to import.")
    parsed = parse_roster(upload.read())
    if parsed.file_error:
        return _roster_page(400, import_error=parsed.file_error)
    token = secrets.token_urlsafe(18)
    payload = _preview_payload(parsed, upload.filename[:200])
    runtime().redis.set(PREVIEW_KEY.format(token), json.dumps(payload), ex=PREVIEW_TTL_S)
    return page(
        "sync/import_preview.html",
        token=token,
        parsed=parsed,
        filename=payload["filename"],
        shown_errors=parsed.errors[:SHOWN_ERRORS],
        sample=parsed.rows[:25],
    ), (200 if parsed.ok else 422)


def _load_preview(token: str) -> dict[str, Any]:
    ctx = current()
    raw = runtime().redis.get(PREVIEW_KEY.format(token)) if token else None
    data = json.loads(raw) if raw else None
    if not data or data["course"] != ctx.course.id or data["person"] != ctx.person.id:
        raise ToolError("This preview has expired. Upload the file again.", status=410, title="Preview expired")
    return data  # type: ignore[no-any-return]


@bp.post("/sync/roster/import/confirm")
@requires(can_configure)
def import_confirm() -> tuple[str, int]:
    """Import the previewed rows: all of them, or only the valid ones when the instructor chose so."""
    ctx = current()
    form = parse_form(ImportConfirmForm)
    token = form.token
    data = _load_preview(token)
    has_errors = bool(data["errors"])
    if has_errors and not form.valid_only:
        return _roster_page(
            409,
            import_error=f"Nothing was imported: the file has {len(data['errors'])} row(s) with errors. "
            "Fix the file, or choose to import only the valid rows.",
        )
    rows = [ImportRow(line, email, name, section) for line, email, name, section in data["rows"]]
    if not rows:
        return _roster_page(409, import_error="There are no valid rows to import.")
    result = import_roster(db(), ctx.course, rows, actor_person_id=ctx.person.id, file_format=data["format"])
    runtime().redis.delete(PREVIEW_KEY.format(token))
    commit()
    skipped = [RowError(line, message) for line, message in data["errors"]]
    return _roster_page(import_result=result, import_skipped=len(skipped))


@bp.post("/sync/dates/refresh")
@requires(can_configure)
def refresh_dates() -> Response:
    """Read due dates again from the LMS (and Canvas, when connected)."""
    ctx = current()
    course_id, redis = ctx.course.id, runtime().redis
    append_event(db(), "due_dates.refresh_requested", actor_person_id=ctx.person.id, course_id=course_id)
    after_commit(lambda: enqueue_dates(redis, course_id))
    commit()
    return back_to("course_sync.roster")


@bp.post("/sync/usage")
@requires(can_configure)
def usage_setting() -> Response:
    """Turn nightly usage passback on or off, and choose where it goes (assignment comments or a column)."""
    ctx = current()
    form = parse_form(UsageSettingForm, status=400)
    row = db().get(CourseLms, ctx.course.id)
    if row is None:
        raise ToolError(
            "Launch Cloud Workstation from the course first: the LMS has not offered a gradebook yet.",
            status=409,
            title="No gradebook",
        )
    enabled, mode = form.usage_passback, str(form.usage_mode or row.usage_mode)
    if row.usage_passback != enabled or row.usage_mode != mode:
        row.usage_passback, row.usage_mode = enabled, mode
        append_event(
            db(),
            "usage_passback.changed",
            actor_person_id=ctx.person.id,
            course_id=ctx.course.id,
            details={"enabled": enabled, "mode": mode},
        )
    commit()
    return back_to("course_sync.roster")
