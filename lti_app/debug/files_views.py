"""The student's files for staff, read-only: browse the home, view text files and rendered notebooks (every staff
level: this is the TAs' grading access), and export a zip of the home or one folder (head TA and instructors,
audited)."""

from __future__ import annotations

from flask import Response, abort, request

from classroom.audit import append_event
from classroom.roles import is_staff
from lti_app.auth import current, requires
from lti_app.debug import bp
from lti_app.debug.common import chosen_workspace, home_files, require_acting, student_in_course
from lti_app.debug.notebook import NotebookError, render_notebook
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from provisioning.runtime.home_files import PathRefused, safe_relpath

NOT_HERE = (
    "This workspace's files cannot be read from here: the tool reads homes of the local runtime only. On EC2 this "
    "needs the workspace agent's file reader, which this version does not have."
)


def _crumbs(rel: str) -> list[tuple[str, str]]:
    parts = rel.split("/") if rel else []
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


@bp.get("/app/students/<int:person_id>/files")
@requires(is_staff)
def files(person_id: int) -> tuple[str, int]:
    """A folder listing, a text file, or a notebook rendered read-only."""
    person = student_in_course(person_id)
    ws = chosen_workspace(person)
    if ws is None:
        abort(404)
    homes = home_files()
    common = dict(person=person, ws=ws, entries=[], text=None, cells=None, rel="", crumbs=[], error="")
    if not homes.available(ws.instance_id):
        return page("debug/files.html", **{**common, "error": NOT_HERE}), 200
    try:
        rel = safe_relpath(request.args.get("path"))
        common |= {"rel": rel, "crumbs": _crumbs(rel)}
        if homes.is_dir(str(ws.instance_id), rel):
            return page("debug/files.html", **{**common, "entries": homes.list_dir(str(ws.instance_id), rel)}), 200
        raw = homes.read_file(str(ws.instance_id), rel)
    except (PathRefused, FileNotFoundError, NotADirectoryError) as exc:
        message = str(exc) if isinstance(exc, PathRefused) else "No such file or folder in the student's home."
        return page("debug/files.html", **{**common, "error": message}), 400 if isinstance(exc, PathRefused) else 404
    if rel.endswith(".ipynb"):
        try:
            return page("debug/files.html", **{**common, "cells": render_notebook(raw)}), 200
        except NotebookError as exc:
            common["error"] = str(exc)
    if b"\x00" in raw[:8192]:
        return page("debug/files.html", **{**common, "error": "A binary file: export it to look at it."}), 200
    return page("debug/files.html", **{**common, "text": raw.decode("utf-8", errors="replace")}), 200


@bp.post("/app/students/<int:person_id>/export")
@requires(is_staff)
def export(person_id: int) -> Response:
    """A zip of the home or one folder, for review; audited."""
    person = student_in_course(person_id)
    require_acting("debug.export", person)
    ws = chosen_workspace(person)
    if ws is None:
        abort(404)
    homes = home_files()
    if not homes.available(ws.instance_id):
        raise ToolError(NOT_HERE, status=409, title="Files not available")
    try:
        rel = safe_relpath(request.form.get("path"))
        if not homes.is_dir(str(ws.instance_id), rel):
            raise PathRefused("Export takes the home or a folder.")
        body, count = homes.zip_folder(str(ws.instance_id), rel)
    except (PathRefused, FileNotFoundError, NotADirectoryError) as exc:
        raise ToolError(str(exc) if isinstance(exc, PathRefused) else "No such folder.", status=400,
                        title="Nothing exported") from None  # fmt: skip
    ctx = current()
    append_event(db(), "debug.export", actor_person_id=ctx.person.id, course_id=ctx.course.id, subject=str(person.id),
                 details={"workspace": ws.id, "path": rel or "~", "files": count, "bytes": len(body)})  # fmt: skip
    commit()
    name = f"ws{ws.id}-{(rel or 'home').replace('/', '-')}.zip"
    return Response(body, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})
