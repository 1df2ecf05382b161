"""Course materials straight from the browser to S3 (JSON for lti_app/static/upload.js): start an upload (name,
folders and the course's storage allowance checked first), list its stored parts to resume, complete (every part
verified), abort, delete, rename. The web workers hand out presigned URLs and never carry the file bytes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, request, url_for

from classroom.audit import append_event
from classroom.materials import (
    DEFAULT_ALLOWANCE_BYTES,
    MaterialNameError,
    allowance_refusal,
    clean_path,
    human_size,
    parse_allowance_gb,
    plan_uploads,
)
from classroom.models import CoursePolicy
from classroom.roles import can_act, can_configure
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import AllowanceForm, MaterialPathForm, MaterialRenameForm, UploadRefForm, UploadStartForm
from lti_app.errors import ToolError
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from provisioning.aws_materials import PART_BYTES, material_key
from provisioning.backend import CloudError
from provisioning.course_cloud import course_key

bp = Blueprint("material_uploads", __name__)


@contextmanager
def _answers() -> Iterator[None]:
    """Map name and storage errors to the page's messages (JSON, shown as they are)."""
    try:
        yield
    except MaterialNameError as exc:
        raise ToolError(str(exc), status=422, title="Please check the file name") from exc
    except CloudError as exc:
        raise ToolError(str(exc), status=503, title="The materials storage did not answer") from exc


def _path(raw: str) -> str:
    path = clean_path(raw)
    if not path:
        raise ToolError("This file has no usable name; rename it and try again.", status=422)
    return path


def _key(raw: str) -> str:
    return material_key(course_key(current().course.id), _path(raw))


def allowance_of(course_id: int) -> int:
    """The bytes a course may keep in its materials (its setting, else the default)."""
    policy = db().get(CoursePolicy, course_id)
    return policy.materials_allowance_bytes if policy is not None else DEFAULT_ALLOWANCE_BYTES


def _allowance() -> int:
    return allowance_of(current().course.id)


def _listing() -> dict[str, int]:
    return dict(backend().list_materials(course_key(current().course.id)))


def _audit(action: str, **details: Any) -> None:
    ctx = current()
    append_event(db(), f"materials.{action}", actor_person_id=ctx.person.id, course_id=ctx.course.id, details=details)
    commit()


def _refuse_if_over(listing: dict[str, int], path: str, size: int) -> None:
    refusal = allowance_refusal(sum(listing.values()), size, listing.get(path, 0), _allowance())
    if refusal:
        raise ToolError(refusal, status=413, title="Not enough storage left")


@bp.post("/app/materials/uploads")
@requires(can_act)
def start() -> Response:
    """Check the name, folders and allowance, then answer the upload id and one URL per part."""
    form = parse_form(UploadStartForm)
    with _answers():
        listing = _listing()
        plan = plan_uploads([_path(form.path)], set(listing), form.on_conflict)
        if plan.conflicts:
            raise ToolError(
                f"“{plan.conflicts[0]}” is already in the course materials. Nothing was uploaded. Choose "
                "“Replace” or “Keep both” under “If a file already exists” and upload again.",
                status=409,
                title="A file with this name exists",
            )
        path = plan.paths[0]
        _refuse_if_over(listing, path, form.size)
        uploads = backend().material_uploads()
        uploads.allow_browser_uploads([request.host_url.rstrip("/")])  # the page PUTs the parts itself
        started = uploads.start(course_key(current().course.id), path, form.size)
        urls = [uploads.part_url(started.key, started.upload_id, n) for n in range(1, started.parts + 1)]
    _audit("upload_started", path=path, bytes=form.size, on_conflict=form.on_conflict)
    return jsonify(path=path, upload_id=started.upload_id, parts=started.parts, part_bytes=PART_BYTES, urls=urls)


@bp.post("/app/materials/uploads/parts")
@requires(can_act)
def parts() -> Response:
    """The parts S3 already has (a resumed upload skips them) and fresh URLs for the others."""
    form = parse_form(UploadRefForm)
    with _answers():
        uploads = backend().material_uploads()
        key = _key(form.path)
        stored = uploads.stored_parts(key, form.upload_id)
        urls = {n: uploads.part_url(key, form.upload_id, n) for n in range(1, form.parts + 1) if n not in stored}
    return jsonify(stored=sorted(stored), urls=urls)


@bp.post("/app/materials/uploads/complete")
@requires(can_act)
def complete() -> Response:
    """Assemble the parts (all must be stored), then check the real size against the allowance."""
    form = parse_form(UploadRefForm)
    path = _path(form.path)
    with _answers():
        uploads = backend().material_uploads()
        uploads.complete(_key(path), form.upload_id, form.parts)
        listing = _listing()
        size = listing.get(path, 0)
        if sum(listing.values()) > _allowance():  # the browser sent more than it announced
            uploads.delete(course_key(current().course.id), path)
            _refuse_if_over({p: s for p, s in listing.items() if p != path}, path, size)
    _audit("uploaded", files=[path], bytes=size)
    return jsonify(path=path, size=size)


@bp.post("/app/materials/uploads/abort")
@requires(can_act)
def abort() -> Response:
    """Give up an upload; its stored parts are removed."""
    form = parse_form(UploadRefForm)
    with _answers():
        backend().material_uploads().abort(_key(form.path), form.upload_id)
    _audit("upload_aborted", path=_path(form.path))
    return jsonify(aborted=True)


@bp.post("/app/materials/delete")
@requires(can_act)
def delete() -> Response:
    """Delete one material (audited)."""
    form = parse_form(MaterialPathForm)
    path = _path(form.path)
    with _answers():
        if path not in _listing():
            raise ToolError(f"“{path}” is not in the course materials.", status=404, title="No such file")
        backend().material_uploads().delete(course_key(current().course.id), path)
    _audit("deleted", path=path)
    return jsonify(deleted=path)


@bp.post("/app/materials/rename")
@requires(can_act)
def rename() -> Response:
    """Rename or move one material; never over an existing file (audited)."""
    form = parse_form(MaterialRenameForm)
    old, new = _path(form.path), _path(form.new_path)
    with _answers():
        listing = _listing()
        if old not in listing:
            raise ToolError(f"“{old}” is not in the course materials.", status=404, title="No such file")
        if new in listing:
            raise ToolError(f"“{new}” already exists; choose another name.", status=409, title="Name taken")
        backend().material_uploads().rename(course_key(current().course.id), old, new)
    _audit("renamed", path=old, new_path=new)
    return jsonify(path=new)


@bp.post("/app/materials/allowance")
@requires(can_configure)
def set_allowance() -> Response:
    """Set the course's materials storage allowance (instructor; audited); files already stored stay."""
    form = parse_form(AllowanceForm)
    with _answers():
        allowance = parse_allowance_gb(form.allowance_gb)
    policy = db().get(CoursePolicy, current().course.id)
    if policy is None:
        raise ToolError("Set up the course first; the allowance is part of its settings.", status=409)
    before = policy.materials_allowance_bytes
    policy.materials_allowance_bytes = allowance
    _audit("allowance_changed", before=human_size(before), after=human_size(allowance), bytes=allowance)
    return redirect(url_for("materials.index", t=g.tool_token), code=303)  # type: ignore[return-value]
