"""Course materials (staff): upload to the course's S3 prefix with progress, and list what is there."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, redirect, request, url_for
from werkzeug.utils import secure_filename

from classroom.audit import append_event
from classroom.roles import can_act, is_staff
from lti_app.auth import current, requires
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key
from provisioning.userdata import course_slug

bp = Blueprint("materials", __name__)
MAX_FILE = 15 * 1024 * 1024  # larger files: sync from a staff workspace (read-write mount)


@bp.get("/app/materials")
@requires(is_staff)
def index() -> str:
    """What is in the course materials (students see it read-only in their workspace)."""
    ctx = current()
    try:
        files = sorted(backend().list_materials(course_key(ctx.course.id)))
    except CloudError as exc:
        raise ToolError(str(exc), status=503) from exc
    return page(
        "workspaces/materials.html",
        files=files,
        total=sum(size for _, size in files),
        mount=f"/mnt/{course_slug(ctx.course.label or ctx.course.title, ctx.course.id)}-materials",
    )


@bp.post("/app/materials")
@requires(can_act)
def upload() -> Response:
    """Upload files (instructor and head TA); audited."""
    ctx = current()
    folder = secure_filename(request.form.get("folder", "")) or ""
    stored = []
    for item in request.files.getlist("files"):
        name = secure_filename(item.filename or "")
        if not name:
            continue
        body = item.read(MAX_FILE + 1)
        if len(body) > MAX_FILE:
            raise ToolError(f"{name} is larger than 15 MB; upload it from a staff workspace instead.", status=413)
        path = f"{folder}/{name}" if folder else name
        backend().upload_material(course_key(ctx.course.id), path, body)
        stored.append((path, len(body)))
    if not stored:
        raise ToolError("Choose at least one file to upload.", status=400)
    append_event(
        db(),
        "materials.uploaded",
        actor_person_id=ctx.person.id,
        course_id=ctx.course.id,
        details={"files": [p for p, _ in stored], "bytes": sum(s for _, s in stored)},
    )
    commit()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(uploaded=[{"path": p, "size": s} for p, s in stored])
    return redirect(url_for("materials.index", t=g.tool_token), code=303)
