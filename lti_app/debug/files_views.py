"""The student's files for staff, read-only: browse the home, view text files and rendered notebooks (every staff
level: this is the TAs' grading access), and export a zip of the home or one folder (head TA and instructors,
audited)."""

from __future__ import annotations

from flask import Response, abort, request

from classroom.audit import append_event
from classroom.roles import is_staff
from lti_app.auth import current, requires
from lti_app.debug import bp
from lti_app.debug.common import chosen_workspace, reader_for, require_acting, student_in_course
from lti_app.debug.notebook import NotebookError, render_notebook
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db, settings
from provisioning.home_access import readable
from provisioning.instance_ssh import WorkspaceSshError
from provisioning.runtime.home_files import PathRefused, safe_relpath


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
    common = dict(person=person, ws=ws, entries=[], text=None, cells=None, rel="", crumbs=[], error="")
    can_read, why_not = readable(ws, settings())
    if not can_read:
        return page("debug/files.html", **{**common, "error": why_not}), 200
    try:
        rel = safe_relpath(request.args.get("path"))
        common |= {"rel": rel, "crumbs": _crumbs(rel)}
        found = reader_for(ws, "files").browse(rel)
    except (PathRefused, FileNotFoundError, NotADirectoryError) as exc:
        message = str(exc) if isinstance(exc, PathRefused) else "No such file or folder in the student's home."
        return page("debug/files.html", **{**common, "error": message}), 400 if isinstance(exc, PathRefused) else 404
    except WorkspaceSshError as exc:  # not reachable, or not the pinned machine: nothing was read
        return page("debug/files.html", **{**common, "error": str(exc)}), 200
    if isinstance(found, list):
        return page("debug/files.html", **{**common, "entries": found}), 200
    raw = found
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
    try:
        rel = safe_relpath(request.form.get("path"))
        body, count = reader_for(ws, "export").zip_folder(rel)
    except WorkspaceSshError as exc:  # nothing was read, nothing is audited as exported
        raise ToolError(str(exc), status=409, title="Files not available") from None
    except (PathRefused, FileNotFoundError, NotADirectoryError) as exc:
        raise ToolError(str(exc) if isinstance(exc, PathRefused) else "No such folder.", status=400,
                        title="Nothing exported") from None  # fmt: skip
    ctx = current()
    append_event(db(), "debug.export", actor_person_id=ctx.person.id, course_id=ctx.course.id, subject=str(person.id),
                 details={"workspace": ws.id, "path": rel or "~", "files": count, "bytes": len(body)})  # fmt: skip
    commit()
    name = f"ws{ws.id}-{(rel or 'home').replace('/', '-')}.zip"
    return Response(body, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})
