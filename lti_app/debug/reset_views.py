"""Workspace reset (head TA, instructors): the confirmation page, the request, its progress, the backups (listed
and restorable), and the course's keep paths (instructors)."""

from __future__ import annotations

from flask import Response, abort, g, redirect, request, url_for
from sqlalchemy import select

from classroom.jobs.queue import enqueue
from classroom.models import Person, Workspace, WorkspaceBackup, WorkspaceReset
from classroom.roles import can_configure, is_staff
from classroom.services.resets import (
    ACTIVE,
    ALWAYS_KEPT,
    RESET_JOB,
    STEPS,
    ResetRefused,
    active_reset,
    keep_paths,
    parse_keep_paths,
    request_reset,
    reset_job_id,
    set_keep_paths,
)
from lti_app.auth import current, requires
from lti_app.debug import bp
from lti_app.debug.common import chosen_workspace, home_files, require_acting, student_in_course, student_workspaces
from lti_app.pages.views import page
from lti_app.runtime import after_commit, commit, db, runtime, settings
from provisioning.home_access import readable

RESTORE_JOB = "provisioning.backup_jobs.restore_backup"


def _confirm(person: Person, *, error: str = "", status: int = 200) -> tuple[str, int]:
    ws = chosen_workspace(person)
    if ws is None:
        abort(404)
    homes = home_files()
    local = homes.available(ws.instance_id)
    files = homes.walk(ws.instance_id) if local else []  # on EC2 the home is measured by the backup itself
    size = sum(p.stat().st_size for _, p in files)
    can_read, why_not = readable(ws, settings())
    return page("debug/reset_confirm.html", person=person, ws=ws, files=len(files), size=size, local=local,
                keep=keep_paths(db(), ws.course_id), always=ALWAYS_KEPT, running=active_reset(db(), ws.id),
                readable=can_read, why_not=why_not, error=error), status  # fmt: skip


@bp.get("/app/students/<int:person_id>/reset")
@requires(is_staff)
def reset_confirm(person_id: int) -> tuple[str, int]:
    """What a reset does and how long it takes, before anything happens."""
    person = student_in_course(person_id)
    require_acting("workspace.reset", person)
    return _confirm(person)


@bp.post("/app/students/<int:person_id>/reset")
@requires(is_staff)
def reset_start(person_id: int) -> Response | tuple[str, int]:
    """Record the reset and queue its job (one at a time; a second click is told so)."""
    person = student_in_course(person_id)
    require_acting("workspace.reset", person)
    ws = chosen_workspace(person)
    if ws is None:
        abort(404)
    try:
        row = request_reset(db(), ws, current().person, request.form.get("reason"))
    except ResetRefused as exc:
        db().rollback()
        return _confirm(person, error=str(exc), status=exc.status)
    reset_id, redis = row.id, runtime().redis
    after_commit(lambda: enqueue(redis, RESET_JOB, reset_id, job_id=reset_job_id(reset_id), retry=None))
    commit()
    return redirect(url_for("debug.reset_progress", reset_id=reset_id, t=g.tool_token), code=303)


@bp.get("/app/resets/<int:reset_id>")
@requires(is_staff)
def reset_progress(reset_id: int) -> str:
    """Where the reset is (the page refreshes itself until it is done or failed)."""
    row = db().get(WorkspaceReset, reset_id)
    if row is None or row.course_id != current().course.id:
        abort(404)
    person = student_in_course(_student_of(row.workspace_id))
    require_acting("workspace.reset", person)
    local = home_files().available(row.old_instance_id)  # EC2: the page tells while the new machine boots
    return page("debug/reset_progress.html", row=row, person=person, steps=STEPS, active=row.state in ACTIVE,
                local=local)  # fmt: skip


def _student_of(workspace_id: int) -> int:
    ws = db().get(Workspace, workspace_id)
    if ws is None:
        abort(404)
    return ws.person_id


@bp.get("/app/students/<int:person_id>/backups")
@requires(is_staff)
def backups(person_id: int) -> str:
    """The student's backups (newest first), each restorable into ~/restored/backup-<id>/."""
    person = student_in_course(person_id)
    require_acting("workspace.backups", person)
    rows = db().scalars(
        select(WorkspaceBackup)
        .where(
            WorkspaceBackup.course_id == current().course.id,
            WorkspaceBackup.workspace_id.in_([w.id for w in student_workspaces(person)]),
        )  # fmt: skip
        .order_by(WorkspaceBackup.id.desc())
    )
    return page("debug/backups.html", person=person, rows=list(rows), queued=request.args.get("queued"))


@bp.post("/app/backups/<int:backup_id>/restore")
@requires(is_staff)
def restore(backup_id: int) -> Response:
    """Queue the restore of a backup into the workspace's ~/restored/backup-<id>/ (nothing is overwritten)."""
    backup = db().get(WorkspaceBackup, backup_id)
    if backup is None or backup.course_id != current().course.id:
        abort(404)
    person = student_in_course(_student_of(backup.workspace_id))
    require_acting("workspace.backup.restore", person)
    staff_id, redis = current().person.id, runtime().redis
    after_commit(lambda: enqueue(redis, RESTORE_JOB, backup_id, staff_id, job_id=f"restore-{backup_id}-{staff_id}"))
    commit()
    return redirect(url_for("debug.backups", person_id=person.id, t=g.tool_token, queued=backup_id), code=303)


@bp.route("/app/course/reset-settings", methods=["GET", "POST"])
@requires(can_configure)
def reset_settings() -> tuple[str, int]:
    """The course's keep paths (what a reset restores)."""
    ctx, error, saved = current(), "", False
    if request.method == "POST":
        try:
            set_keep_paths(db(), ctx.course.id, ctx.person.id, parse_keep_paths(request.form.get("keep_paths", "")))
            commit()
            saved = True
        except ResetRefused as exc:
            db().rollback()
            error = str(exc)
    return page("debug/reset_settings.html", keep=keep_paths(db(), ctx.course.id), always=ALWAYS_KEPT,
                error=error, saved=saved), 400 if error else 200  # fmt: skip
