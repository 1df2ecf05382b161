"""Course materials (staff): list what is there; the 15 MB form upload is the no-JavaScript fallback (the page's
script sends files straight to S3 through lti_app.workspaces.material_upload_views)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, redirect, request, url_for

from classroom.audit import append_event
from classroom.course_paths import course_slug
from classroom.materials import (
    MAX_FILE_BYTES,
    MaterialNameError,
    clean_file_name,
    clean_folder,
    human_size,
    plan_uploads,
)
from classroom.roles import can_act, is_staff
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import MaterialsForm
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from lti_app.workspaces.material_upload_views import allowance_of
from provisioning.backend import CloudError, MaterialExists
from provisioning.course_cloud import course_key

bp = Blueprint("materials", __name__)


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
        human_size=human_size,
        allowance=allowance_of(ctx.course.id),
        mount=f"/mnt/{course_slug(ctx.course.label or ctx.course.title, ctx.course.id)}-materials",
    )


def _read_uploads(folder: str) -> list[tuple[str, bytes]]:
    """(path, body) of every chosen file, checked whole before anything is stored."""
    files: list[tuple[str, bytes]] = []
    for item in request.files.getlist("files"):
        name = clean_file_name(item.filename or "")
        if not name:
            continue
        body = item.read(MAX_FILE_BYTES + 1)
        if len(body) > MAX_FILE_BYTES:
            raise ToolError(
                f"“{name}” is larger than {MAX_FILE_BYTES // 1048576} MB; nothing was uploaded. "
                "Copy large files from a staff workspace (its materials folder is writable).",
                status=413,
                title="File too large",
            )
        files.append((f"{folder}/{name}" if folder else name, body))
    if not files:
        raise ToolError("Choose at least one file to upload.", status=400)
    return files


def _conflict(paths: list[str]) -> ToolError:
    listed = ", ".join(f"“{p}”" for p in paths[:10])
    return ToolError(
        f"Already in the course materials: {listed}. Nothing was uploaded. Choose “Replace” or “Keep both” "
        "under “If a file already exists” and upload again.",
        status=409,
        title="A file with this name exists",
    )


@bp.post("/app/materials")
@requires(can_act)
def upload() -> Response:
    """Upload files (instructor and head TA); a name already used is never silently replaced; audited."""
    ctx = current()
    form = parse_form(MaterialsForm)
    try:
        files = _read_uploads(clean_folder(form.folder))
        existing = {path for path, _ in backend().list_materials(course_key(ctx.course.id))}
        plan = plan_uploads([p for p, _ in files], existing, form.on_conflict)
    except MaterialNameError as exc:
        raise ToolError(str(exc), status=422, title="Please check the file names") from exc
    except CloudError as exc:
        raise ToolError(str(exc), status=503) from exc
    if plan.conflicts:
        raise _conflict(plan.conflicts)
    stored = []
    for path, (_, body) in zip(plan.paths, files, strict=True):
        try:
            backend().upload_material(course_key(ctx.course.id), path, body, overwrite=plan.overwrite)
        except MaterialExists as exc:
            raise _conflict([path]) from exc
        except CloudError as exc:
            raise ToolError(str(exc), status=503) from exc
        stored.append((path, len(body)))
    append_event(
        db(),
        "materials.uploaded",
        actor_person_id=ctx.person.id,
        course_id=ctx.course.id,
        details={"files": [p for p, _ in stored], "bytes": sum(s for _, s in stored), "on_conflict": form.on_conflict},
    )
    commit()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(uploaded=[{"path": p, "size": s} for p, s in stored])
    return redirect(url_for("materials.index", t=g.tool_token), code=303)
